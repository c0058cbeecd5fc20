package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/state"
)

// The figures of TestMultipleReplicas.
const (
	replPrograms   = 30  // sample repositories acme/app00..app29
	replCommits    = 4   // commits pushed per program
	replDeliveries = 300 // webhook deliveries in all
	replReplicas   = 3
	replKillAt     = replDeliveries / 3 // replica #2 is SIGKILLed from here (see the loop)
	replOwner      = "acme"
	replInst       = 7
)

// replScript is each sample repository's run.sh: builds make a small
// artifact, every deploy appends one line to the program's deploys.log.
const replScript = `set -eu
case "$1" in
build)
  mkdir -p dist
  echo "$STAGEHAND_COMMIT $(od -An -N8 -tx1 /dev/urandom)" > dist/app.txt ;;
deploy)
  SLEEP
  echo "deploy $STAGEHAND_ENVIRONMENT $STAGEHAND_PIPELINE #$STAGEHAND_EXECUTION $STAGEHAND_COMMIT" >> RECORD/deploys.log ;;
test)
  test -n "$STAGEHAND_ARTIFACTS" ;;
esac
`

func replConfig(fullStack bool) string {
	c := `version: 1
build: {run: bash run.sh build, artifacts: [dist/**]}
environments:
  stage:
    deploy: bash run.sh deploy
    tests:
      - {name: smoke, run: bash run.sh test}
  production: {deploy: bash run.sh deploy}
pipelines:
  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {approval: true}
`
	if fullStack {
		c += "  full-stack: {branch: main, trigger: manual}\n"
	}
	return c
}

// replProgram is one sample repository.
type replProgram struct {
	repo      string
	fullStack bool
	record    string   // directory of deploys.log
	commits   []string // shas, oldest first
	pushed    int      // commits pushed so far
}

// replica is one `stagehand serve` process of the set.
type replica struct {
	name    string
	dataDir string
	addr    string
	mu      sync.Mutex
	cmd     *exec.Cmd
	logs    []string // one file per start
}

// replicaSet is a GitHub stand-in and several servers sharing one
// PostgreSQL database and one NATS.
type replicaSet struct {
	gh       *githubtest.Server
	apiURL   string // --github-api-url; empty: the stand-in's
	keyFile  string
	gitURL   string
	dbURL    string
	natsURL  string
	prefix   string
	replicas []*replica
	logDir   string
	extra    []string // more flags for every replica
}

// args are a replica's flags; without a database URL (and NATS URL) the
// server runs on its embedded database (and broker).
func (rs *replicaSet) args(r *replica) []string {
	api := rs.apiURL
	if api == "" {
		api = rs.gh.URL()
	}
	args := []string{"serve", "--listen", r.addr, "--data-dir", r.dataDir,
		"--github-app-id", fmt.Sprint(testAppID), "--github-private-key-file", rs.keyFile,
		"--github-webhook-secret", testSecret, "--github-api-url", api,
		"--github-git-url", rs.gitURL,
		"--public-url", "http://" + r.addr, "--log-level", "info",
		// The sample scripts append to the test's deploys.log, outside
		// their workspace.
		"--step-sandbox", "none"}
	if rs.dbURL != "" {
		args = append(args, "--database-url", rs.dbURL)
	}
	if rs.natsURL != "" {
		args = append(args, "--nats-url", rs.natsURL, "--nats-prefix", rs.prefix)
	}
	return append(args, rs.extra...)
}

func (rs *replicaSet) start(t *testing.T, r *replica) {
	t.Helper()
	logs := filepath.Join(rs.logDir, fmt.Sprintf("%s.%d.log", r.name, len(r.logs)+1))
	f, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), rs.args(r)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.logs = append(r.logs, logs)
	r.mu.Unlock()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
}

func (rs *replicaSet) kill(t *testing.T, r *replica) {
	t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The cleanup registered by start waits for the process.
	for i := 0; i < 100; i++ {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *replica) ready() bool {
	resp, err := http.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// post sends a signed delivery to r: the status, or an error when the
// replica does not answer.
func (r *replica) post(client *http.Client, event, guid string, body []byte) (int, error) {
	req, err := http.NewRequest("POST", "http://"+r.addr+"/webhooks", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-Hub-Signature-256", githubtest.Sign([]byte(testSecret), body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// dumpLogs shows the tail and the warnings of every replica's logs.
func (rs *replicaSet) dumpLogs(t *testing.T) {
	for _, r := range rs.replicas {
		for _, p := range r.logs {
			b, _ := os.ReadFile(p)
			var warn []string
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			for sc.Scan() {
				l := sc.Text()
				if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") || strings.Contains(l, "panic") {
					warn = append(warn, l)
				}
			}
			if len(warn) > 60 {
				warn = append(warn[:30], append([]string{"…"}, warn[len(warn)-30:]...)...)
			}
			t.Logf("%s (%d bytes) warnings and errors:\n%s", p, len(b), strings.Join(warn, "\n"))
		}
	}
}

// warnSummary counts the warnings and errors of every replica's logs by
// message.
func (rs *replicaSet) warnSummary() string {
	counts := map[string]int{}
	for _, r := range rs.replicas {
		for _, p := range r.logs {
			b, _ := os.ReadFile(p)
			for _, l := range strings.Split(string(b), "\n") {
				lvl := ""
				switch {
				case strings.Contains(l, "level=WARN"):
					lvl = "WARN"
				case strings.Contains(l, "level=ERROR"):
					lvl = "ERROR"
				case strings.Contains(l, "panic:"):
					lvl = "PANIC"
				default:
					continue
				}
				msg := l
				if i := strings.Index(l, "msg="); i >= 0 {
					msg = l[i+4:]
					if strings.HasPrefix(msg, `"`) {
						if j := strings.Index(msg[1:], `"`); j >= 0 {
							msg = msg[1 : j+1]
						}
					} else if j := strings.IndexByte(msg, ' '); j >= 0 {
						msg = msg[:j]
					}
				}
				counts[filepath.Base(p)+" "+lvl+" "+msg]++
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%5d %s", counts[k], k))
	}
	return strings.Join(out, "\n")
}

func replSkip(t *testing.T) {
	t.Helper()
	if os.Getenv("STAGEHAND_TEST_POSTGRES_URL") == "" || os.Getenv("STAGEHAND_TEST_NATS_URL") == "" {
		t.Skip("needs STAGEHAND_TEST_POSTGRES_URL and STAGEHAND_TEST_NATS_URL; .ci/run sets them to the PostgreSQL and NATS servers of the machine")
	}
	if testing.Short() {
		t.Skip("runs three real servers for minutes; skipped with -short")
	}
}

// replRepos makes the sample repositories under root/acme and registers
// them, with every commit's configuration, in the stand-in.
func replRepos(t *testing.T, gh *githubtest.Server, root string) []*replProgram {
	t.Helper()
	return replReposN(t, gh, root, replPrograms)
}

// replReposN is replRepos with n repositories.
func replReposN(t *testing.T, gh *githubtest.Server, root string, n int) []*replProgram {
	t.Helper()
	var progs []*replProgram
	for i := 0; i < n; i++ {
		p := &replProgram{repo: fmt.Sprintf("app%02d", i), fullStack: i%3 == 0}
		dir := filepath.Join(root, replOwner, p.repo)
		p.record = filepath.Join(root, "record", p.repo)
		if err := os.MkdirAll(p.record, 0o755); err != nil {
			t.Fatal(err)
		}
		sleep := ""
		if i < 3 {
			sleep = "sleep 1" // a few slow deploys
		}
		cfg := replConfig(p.fullStack)
		files := map[string]string{
			".github/stagehand.yml": cfg,
			"run.sh":                strings.NewReplacer("RECORD", p.record, "SLEEP", sleep).Replace(replScript),
		}
		writeFiles(t, dir, files)
		git := gitIn(t, dir)
		git("init", "-q", "-b", "main")
		gh.AddRepo(replInst, replOwner, p.repo)
		for c := 0; c < replCommits; c++ {
			if err := os.WriteFile(filepath.Join(dir, "version.txt"), []byte(fmt.Sprintf("%s v%d\n", p.repo, c)), 0o644); err != nil {
				t.Fatal(err)
			}
			git("add", "-A")
			git("commit", "-q", "-m", fmt.Sprintf("v%d", c))
			sha := git("rev-parse", "HEAD")
			p.commits = append(p.commits, sha)
			gh.SetFile(replOwner, p.repo, sha, ".github/stagehand.yml", []byte(cfg))
		}
		gh.SetPermission(replOwner, p.repo, "alice", "write")
		gh.SetPermission(replOwner, p.repo, "bob", "admin")
		progs = append(progs, p)
	}
	return progs
}

func replSetRepo(p map[string]any, repo string, id int) {
	r := p["repository"].(map[string]any)
	r["name"], r["full_name"], r["id"], r["default_branch"] = repo, replOwner+"/"+repo, 900000+id, "main"
	owner := r["owner"].(map[string]any)
	owner["login"] = replOwner
	if _, ok := owner["name"]; ok {
		owner["name"] = replOwner
	}
	p["installation"] = map[string]any{"id": replInst, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNw=="}
}

func replPayload(t testing.TB, name string) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload(name), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func replPush(t testing.TB, prog *replProgram, idx int) []byte {
	t.Helper()
	p := replPayload(t, "push/branch-created.json")
	sha := prog.commits[prog.pushed]
	before := "0000000000000000000000000000000000000000"
	if prog.pushed > 0 {
		before = prog.commits[prog.pushed-1]
	}
	p["ref"], p["after"], p["before"], p["created"] = "refs/heads/main", sha, before, prog.pushed == 0
	p["head_commit"].(map[string]any)["id"] = sha
	p["commits"] = []any{}
	p["compare"] = "https://github.com/" + replOwner + "/" + prog.repo + "/compare/" + before[:12] + "..." + sha[:12]
	p["sender"].(map[string]any)["login"] = "alice"
	replSetRepo(p, prog.repo, idx)
	prog.pushed++
	return mustJSON(t, p)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func replComment(t *testing.T, gh *githubtest.Server, prog *replProgram, idx int, user, body string) []byte {
	t.Helper()
	p := commentOn(t, gh, replOwner, prog.repo, user, body)
	replSetRepo(p, prog.repo, idx)
	b, _ := json.Marshal(p)
	return b
}

func replClick(t *testing.T, prog *replProgram, idx int, cr githubtest.CheckRun, identifier, user string) []byte {
	t.Helper()
	p := replPayload(t, "check_run/requested_action.json")
	run := p["check_run"].(map[string]any)
	run["external_id"], run["id"], run["head_sha"], run["name"] = cr.ExternalID, cr.ID, cr.HeadSHA, cr.Name
	run["app"].(map[string]any)["id"] = testAppID
	p["requested_action"] = map[string]any{"identifier": identifier}
	p["sender"].(map[string]any)["login"] = user
	replSetRepo(p, prog.repo, idx)
	b, _ := json.Marshal(p)
	return b
}

// replAll reads every program and execution of the shared database.
func replAll(t *testing.T, store bot.Store) (map[int64]bot.Program, []bot.Execution) {
	t.Helper()
	ctx := context.Background()
	progs := map[int64]bot.Program{}
	var out []bot.Execution
	err := store.View(ctx, func(tx bot.Tx) error {
		ps, err := tx.Programs(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			progs[p.ID] = p
			es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID})
			if err != nil {
				return err
			}
			out = append(out, es...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return progs, out
}

func replTerminal(s bot.ExecutionState) bool {
	switch s {
	case bot.ExecutionSucceeded, bot.ExecutionFailed, bot.ExecutionCancelled, bot.ExecutionSkipped:
		return true
	}
	return false
}

// replCleanNATS deletes the streams (and object and key-value buckets) of
// the run's prefix.
func replCleanNATS(t testing.TB, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleaning NATS: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	up := strings.ToUpper(prefix)
	var names []string
	l := js.StreamNames(ctx)
	for n := range l.Name() {
		if strings.Contains(strings.ToUpper(n), up) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Logf("deleting NATS stream %s: %v", n, err)
		}
	}
	t.Logf("deleted %d NATS streams of prefix %s: %v", len(names), prefix, names)
}

// TestMultipleReplicas runs three real servers on one PostgreSQL and one
// NATS and sends them 300 deliveries for 30 programs round-robin, with one
// replica SIGKILLed and restarted on the way. Every accepted delivery is
// handled exactly once, rule B holds across replicas, every execution
// ends, no deploy runs twice and the check runs end right.
func TestMultipleReplicas(t *testing.T) {
	replSkip(t)
	dbURL := freshSchema(t)
	natsURL := os.Getenv("STAGEHAND_TEST_NATS_URL")
	began := time.Now()
	ctx := context.Background()

	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	prefix := "shtest" + hex.EncodeToString(rnd)
	t.Cleanup(func() { replCleanNATS(t, natsURL, prefix) })
	seed := time.Now().UnixNano()
	if s := os.Getenv("STAGEHAND_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0x5eed))
	t.Logf("NATS prefix %s, seed %d (STAGEHAND_TEST_SEED replays the same choices)", prefix, seed)

	gh := githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(testAppID, &key.PublicKey)
	gh.AddInstallation(replInst, replOwner)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "git")
	progs := replRepos(t, gh, root)
	rs := &replicaSet{gh: gh, keyFile: keyFile, gitURL: "file://" + root + "/", dbURL: dbURL, natsURL: natsURL, prefix: prefix, logDir: filepath.Join(dir, "logs")}
	if err := os.MkdirAll(rs.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	binary(t)
	for i := 0; i < replReplicas; i++ {
		r := &replica{name: fmt.Sprintf("replica%d", i+1), dataDir: filepath.Join(dir, fmt.Sprintf("data%d", i+1)), addr: freeAddr(t)}
		rs.replicas = append(rs.replicas, r)
		rs.start(t, r)
		if i == 0 {
			// The first one migrates the schema alone.
			waitFor(t, 60*time.Second, r.name+" to be ready", r.ready)
		}
	}
	for _, r := range rs.replicas {
		waitFor(t, 60*time.Second, r.name+" to be ready", r.ready)
	}
	t.Cleanup(func() {
		if t.Failed() {
			rs.dumpLogs(t)
		}
		t.Logf("warnings and errors in the replicas' logs:\n%s", rs.warnSummary())
	})
	store, err := state.OpenPostgres(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t.Logf("3 replicas ready after %v", time.Since(began).Round(time.Millisecond))

	// The plan: the first push of every program, then the other pushes,
	// comments and clicks in a random order.
	type planned struct {
		kind string // push, comment, click
		prog int
	}
	var plan []planned
	for i := range progs {
		plan = append(plan, planned{"push", i})
	}
	var rest []planned
	for c := 1; c < replCommits; c++ {
		for i := range progs {
			rest = append(rest, planned{"push", i})
		}
	}
	nOthers := replDeliveries - len(plan) - len(rest)
	for i := 0; i < nOthers; i++ {
		kind := "comment"
		if i%5 < 2 {
			kind = "click"
		}
		rest = append(rest, planned{kind, rng.IntN(len(progs))})
	}
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	plan = append(plan, rest...)

	client := &http.Client{Timeout: 30 * time.Second}
	var (
		mu          sync.Mutex
		accepted    = map[string]string{} // guid → event
		counts      = map[string]int{}    // what was sent
		connErrors  = map[string]int{}    // per replica
		redelivered int
		badStatus   []string
		wg          sync.WaitGroup
		sem         = make(chan struct{}, 8)
	)
	deliver := func(i int, event, guid string, body []byte) {
		defer wg.Done()
		defer func() { <-sem }()
		target := rs.replicas[i%replReplicas]
		deadline := time.Now().Add(60 * time.Second)
		for attempt := 0; ; attempt++ {
			code, err := target.post(client, event, guid, body)
			if err == nil {
				mu.Lock()
				if code == http.StatusAccepted {
					accepted[guid] = event
				} else {
					badStatus = append(badStatus, fmt.Sprintf("%s %s to %s: %d", event, guid, target.name, code))
				}
				mu.Unlock()
				return
			}
			// Like GitHub's redelivery: the same delivery, to another replica.
			mu.Lock()
			connErrors[target.name]++
			redelivered++
			mu.Unlock()
			if time.Now().After(deadline) {
				mu.Lock()
				badStatus = append(badStatus, fmt.Sprintf("%s %s: no replica answered: %v", event, guid, err))
				mu.Unlock()
				return
			}
			target = rs.replicas[(i+attempt+1)%replReplicas]
			if attempt%replReplicas == replReplicas-1 {
				time.Sleep(200 * time.Millisecond)
			}
		}
	}

	comments := []string{"/stagehand promote", "/stagehand promote", "/stagehand approve", "/stagehand approve", "/stagehand status"}
	victim := rs.replicas[1]
	var killedAt, restartedAt time.Time
	killIndex := -1
	var killedSteps []string
	sendStart := time.Now()
	for i, pl := range plan {
		// From a third of the way, replica #2 is SIGKILLed as soon as it
		// runs a step (a workspace of its own exists), or 25 deliveries
		// later at the latest; it is restarted 60 deliveries after that.
		killNow := func() bool {
			if killIndex >= 0 || i < replKillAt {
				return false
			}
			if i >= replKillAt+25 {
				return true
			}
			ents, _ := os.ReadDir(filepath.Join(victim.dataDir, "workspaces"))
			for _, e := range ents {
				killedSteps = append(killedSteps, e.Name())
			}
			return len(ents) > 0
		}
		if killNow() {
			_, exs := replAll(t, store)
			active := map[bot.ExecutionState]int{}
			for _, ex := range exs {
				if !replTerminal(ex.State) {
					active[ex.State]++
				}
			}
			rs.kill(t, victim)
			killedAt, killIndex = time.Now(), i
			t.Logf("delivery %d: SIGKILLed %s running steps %v (execution id-step-attempt); %d executions, active %v", i, victim.name, killedSteps, len(exs), active)
		}
		if killIndex >= 0 && i == killIndex+60 {
			rs.start(t, victim)
			restartedAt = time.Now()
			t.Logf("delivery %d: restarted %s on %s (down %v)", i, victim.name, victim.dataDir, restartedAt.Sub(killedAt).Round(time.Millisecond))
		}
		prog := progs[pl.prog]
		guid := fmt.Sprintf("repl-%s-%04d", pl.kind, i)
		var event string
		var body []byte
		kind := pl.kind
		if kind == "click" {
			// A button of the program's check runs: mostly the newest
			// ones showing buttons, sometimes a stale one.
			runs := gh.CheckRuns(replOwner, prog.repo)
			var withButtons []githubtest.CheckRun
			for _, cr := range runs {
				if len(cr.Actions) > 0 && cr.ExternalID != "" {
					withButtons = append(withButtons, cr)
				}
			}
			switch {
			case len(withButtons) > 0 && rng.IntN(5) > 0:
				cr := withButtons[len(withButtons)-1-rng.IntN(min(2, len(withButtons)))]
				var ids []string
				for _, a := range cr.Actions {
					if a.Identifier == githubapp.ActionReject || a.Identifier == githubapp.ActionDismiss {
						if rng.IntN(8) != 0 {
							continue
						}
					}
					ids = append(ids, a.Identifier)
				}
				if len(ids) == 0 {
					ids = []string{cr.Actions[0].Identifier}
				}
				event, body = "check_run", replClick(t, prog, pl.prog, cr, ids[rng.IntN(len(ids))], "bob")
			case len(runs) > 0:
				cr := runs[rng.IntN(len(runs))]
				ids := []string{githubapp.ActionPromote, githubapp.ActionConfirm, githubapp.ActionApprove}
				event, body = "check_run", replClick(t, prog, pl.prog, cr, ids[rng.IntN(len(ids))], "alice")
				kind = "stale-click"
			default:
				kind = "comment"
			}
		}
		switch kind {
		case "push":
			if prog.pushed >= len(prog.commits) {
				t.Fatalf("plan pushes %s more than %d times", prog.repo, replCommits)
			}
			event, body = "push", replPush(t, prog, pl.prog)
		case "comment":
			c := comments[rng.IntN(len(comments))]
			if prog.fullStack && rng.IntN(4) == 0 {
				c = "/stagehand run full-stack"
			}
			user := "alice"
			if strings.Contains(c, "approve") {
				user = "bob"
			}
			event, body = "issue_comment", replComment(t, gh, prog, pl.prog, user, c)
		}
		counts[kind]++
		sem <- struct{}{}
		wg.Add(1)
		go deliver(i, event, guid, body)
		pause := time.Now().Add(time.Duration(100+rng.IntN(100)) * time.Millisecond)
		for time.Now().Before(pause) {
			if killIndex < 0 && i >= replKillAt {
				if ents, _ := os.ReadDir(filepath.Join(victim.dataDir, "workspaces")); len(ents) > 0 {
					break // kill before the next delivery
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Wait()
	sendTook := time.Since(sendStart)
	waitFor(t, 60*time.Second, victim.name+" to be ready again", victim.ready)
	t.Logf("sent %d deliveries in %v: %v; accepted %d distinct; connection errors %v, redelivered %d",
		len(plan), sendTook.Round(time.Millisecond), counts, len(accepted), connErrors, redelivered)
	for _, b := range badStatus {
		t.Errorf("delivery not accepted: %s", b)
	}
	if killIndex < 0 || restartedAt.IsZero() {
		t.Fatalf("replica #2 was not killed and restarted")
	}
	if connErrors[victim.name] == 0 {
		t.Errorf("no delivery met the killed replica: the kill was not exercised")
	}

	// Every accepted delivery is processed.
	pg, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	// processedGUIDs counts the processed deliveries. The table also holds
	// the command keys of clicks and comments ("<guid>/click",
	// "<guid>/command-N", event "command"): each must belong to an accepted
	// delivery, and they are not deliveries themselves.
	processedGUIDs := func() map[string]int {
		rows, err := pg.Query(ctx, "SELECT guid, event FROM processed_deliveries")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var g, event string
			if err := rows.Scan(&g, &event); err != nil {
				t.Fatal(err)
			}
			if event == "command" {
				// Keys name what GitHub signs: the comment, the check
				// run clicked or the suite.
				if kind, _, _ := strings.Cut(g, "/"); kind != "comment" && kind != "click" && kind != "suite" {
					t.Errorf("command key %s is not keyed by a comment, a click or a suite", g)
				}
				continue
			}
			out[g]++
		}
		return out
	}
	waitStart := time.Now()
	lastLog := time.Now()
	waitFor(t, 2*time.Minute, "every accepted delivery to be processed", func() bool {
		done := processedGUIDs()
		n := 0
		for g := range accepted {
			if done[g] > 0 {
				n++
			}
		}
		if time.Since(lastLog) > 10*time.Second {
			t.Logf("processed %d of %d accepted deliveries", n, len(accepted))
			lastLog = time.Now()
		}
		return n == len(accepted)
	})
	t.Logf("every accepted delivery processed %v after the last was sent", time.Since(waitStart).Round(time.Millisecond))

	// Drain: approve whatever waits until every execution is over.
	parse := func(b []byte) (*bot.Config, bot.Diagnostics) {
		return config.ParseRepoConfig(config.RepoConfigPath, b)
	}
	engine := &bot.Engine{Store: store, Clock: bot.SystemClock{}, Jobs: noJobs{}, Logger: slog.New(slog.DiscardHandler),
		ParseConfig: parse, Policy: recordedPolicy{store: store, parse: parse}}
	drainStart := time.Now()
	approvals := 0
	lastLog = time.Time{}
	for {
		_, exs := replAll(t, store)
		active := map[bot.ExecutionState]int{}
		var waiting []bot.Execution
		for _, ex := range exs {
			if !replTerminal(ex.State) {
				active[ex.State]++
			}
			if ex.State == bot.ExecutionWaiting {
				waiting = append(waiting, ex)
			}
		}
		if len(active) == 0 {
			break
		}
		if time.Since(drainStart) > 4*time.Minute {
			var left []string
			for _, ex := range exs {
				if !replTerminal(ex.State) {
					left = append(left, fmt.Sprintf("program %d %s: %s %q (started %v)", ex.ProgramID, ex, ex.State, ex.Message, ex.StartedAt))
				}
			}
			t.Fatalf("after 4m of draining, executions still active:\n%s", strings.Join(left, "\n"))
		}
		if time.Since(lastLog) > 10*time.Second {
			t.Logf("draining: %d executions, active %v, %d approvals so far", len(exs), active, approvals)
			lastLog = time.Now()
		}
		for _, ex := range waiting {
			var steps []bot.Step
			_ = store.View(ctx, func(tx bot.Tx) error {
				var err error
				steps, err = tx.Steps(ctx, ex.ID)
				return err
			})
			atApproval := false
			for _, s := range steps {
				if s.Name == bot.StepApproval && s.State == bot.StepWaiting {
					atApproval = true
				}
			}
			if !atApproval {
				continue
			}
			approve := engine.Approve
			if ex.Rollback != "" {
				approve = engine.ApproveRollback
			}
			_, err := approve(ctx, bot.Internal("bob"), ex.ProgramID, ex.Number)
			var re *bot.RuleError
			switch {
			case err == nil:
				approvals++
			case errors.As(err, &re):
				t.Logf("approving %s of program %d: %v", ex, ex.ProgramID, err)
			default:
				t.Fatalf("approving %s of program %d: %v", ex, ex.ProgramID, err)
			}
		}
		time.Sleep(time.Second)
	}
	t.Logf("drained in %v with %d approvals", time.Since(drainStart).Round(time.Millisecond), approvals)

	// The reporter catches up.
	waitFor(t, 90*time.Second, "the reporter to bring every execution to GitHub", func() bool {
		_, exs := replAll(t, store)
		for _, ex := range exs {
			if ex.ReportedVersion < ex.Version {
				return false
			}
		}
		return true
	})
	progByID, exs := replAll(t, store)

	// (1) Exactly once: processed deliveries are the accepted ones, and
	// no delivery created two executions of a pipeline.
	done := processedGUIDs()
	for g, n := range done {
		if _, ok := accepted[g]; !ok {
			t.Errorf("processed delivery %s was never accepted", g)
		}
		if n != 1 {
			t.Errorf("delivery %s recorded %d times", g, n)
		}
	}
	if len(done) != len(accepted) {
		t.Errorf("processed deliveries = %d, accepted = %d", len(done), len(accepted))
	}
	perDelivery := map[string]int{}
	pushExecs := 0
	for _, ex := range exs {
		if ex.DeliveryID == "" {
			continue
		}
		perDelivery[ex.DeliveryID+" "+string(ex.Pipeline)]++
		if strings.HasPrefix(ex.DeliveryID, "repl-push-") {
			pushExecs++
		}
	}
	for k, n := range perDelivery {
		if n > 1 {
			t.Errorf("delivery/pipeline %s created %d executions", k, n)
		}
	}
	if pushExecs > counts["push"] {
		t.Errorf("%d executions from %d pushes", pushExecs, counts["push"])
	}

	// (2) Rule B, (3) every execution over, figures.
	byProg := map[int64][]bot.Execution{}
	states := map[string]int{}
	for _, ex := range exs {
		byProg[ex.ProgramID] = append(byProg[ex.ProgramID], ex)
		states[string(ex.Pipeline)+" "+string(ex.State)]++
		if !replTerminal(ex.State) {
			t.Errorf("%s of %s is still %s", ex, progByID[ex.ProgramID].FullName(), ex.State)
		}
		if ex.State == bot.ExecutionFailed {
			t.Logf("failed: %s of %s: %s", ex, progByID[ex.ProgramID].FullName(), ex.Message)
		}
	}
	overlaps := 0
	for pid, list := range byProg {
		for i, a := range list {
			for _, b := range list[i+1:] {
				if a.StartedAt.IsZero() || b.StartedAt.IsZero() {
					continue
				}
				if !(a.Pipeline == b.Pipeline || a.Pipeline == bot.FullStack || b.Pipeline == bot.FullStack) {
					continue
				}
				if a.StartedAt.Before(b.FinishedAt) && b.StartedAt.Before(a.FinishedAt) {
					overlaps++
					t.Errorf("rule B: %s of %s ran %s–%s, %s ran %s–%s", a, progByID[pid].FullName(),
						a.StartedAt.Format("15:04:05.000"), a.FinishedAt.Format("15:04:05.000"), b,
						b.StartedAt.Format("15:04:05.000"), b.FinishedAt.Format("15:04:05.000"))
				}
			}
		}
	}

	// (4) No deploy ran twice; succeeded executions deployed.
	deploys := 0
	for _, p := range progs {
		prog, ok := func() (bot.Program, bool) {
			for _, pr := range progByID {
				if pr.Repo == p.repo {
					return pr, true
				}
			}
			return bot.Program{}, false
		}()
		seen := map[string]int{}
		for _, l := range lines(t, p.record, "deploys.log") {
			f := strings.Fields(l)
			if len(f) != 5 {
				t.Errorf("%s: bad deploy line %q", p.repo, l)
				continue
			}
			deploys++
			seen[f[1]+" "+f[3]]++
			if seen[f[1]+" "+f[3]] == 2 {
				t.Errorf("%s: %s deployed %s twice", p.repo, f[3], f[1])
			}
		}
		if !ok {
			continue
		}
		for _, ex := range byProg[prog.ID] {
			if ex.State != bot.ExecutionSucceeded {
				continue
			}
			var envs []string
			switch ex.Pipeline {
			case bot.StageOnly:
				envs = []string{"stage"}
			case bot.ProdOnly:
				envs = []string{"production"}
			case bot.FullStack:
				envs = []string{"stage", "production"}
			}
			for _, env := range envs {
				if seen[fmt.Sprintf("%s #%d", env, ex.Number)] != 1 {
					t.Errorf("%s: succeeded %s deployed %s %d times", p.repo, ex, env, seen[fmt.Sprintf("%s #%d", env, ex.Number)])
				}
			}
		}
	}

	// (5) Check runs end right.
	want := map[bot.ExecutionState]string{
		bot.ExecutionSucceeded: "success", bot.ExecutionFailed: "failure",
		bot.ExecutionCancelled: "cancelled", bot.ExecutionSkipped: "skipped",
	}
	checkRuns := 0
	runsOf := map[string][]githubtest.CheckRun{}
	for _, ex := range exs {
		prog := progByID[ex.ProgramID]
		runs, ok := runsOf[prog.Repo]
		if !ok {
			runs = gh.CheckRuns(prog.Owner, prog.Repo)
			runsOf[prog.Repo] = runs
			checkRuns += len(runs)
		}
		var newest *githubtest.CheckRun
		for i := range runs {
			if runs[i].Name == "stagehand/"+string(ex.Pipeline) && runs[i].ExternalID == strconv.FormatInt(ex.ID, 10) {
				newest = &runs[i]
			}
		}
		switch {
		case newest == nil:
			t.Errorf("%s of %s (%s): no check run", ex, prog.FullName(), ex.State)
		case newest.Status != "completed" || newest.Conclusion != want[ex.State]:
			t.Errorf("%s of %s is %s; its newest check run is %s/%s (%q), want completed/%s",
				ex, prog.FullName(), ex.State, newest.Status, newest.Conclusion, newest.Output.Title, want[ex.State])
		}
	}

	// The steps the kill interrupted ended somewhere definite.
	for _, w := range killedSteps {
		id, _ := strconv.ParseInt(strings.SplitN(w, "-", 2)[0], 10, 64)
		for _, ex := range exs {
			if ex.ID == id {
				t.Logf("interrupted by the kill: step %s of %s of %s, which ended %s %q", w, ex, progByID[ex.ProgramID].FullName(), ex.State, ex.Message)
			}
		}
	}

	// (6) The stand-in saw only valid requests.
	gh.AssertNoErrors(t)

	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fig []string
	for _, k := range keys {
		fig = append(fig, fmt.Sprintf("%s=%d", k, states[k]))
	}
	t.Logf("figures: %d programs, %d deliveries sent (%v), %d accepted and processed, %d connection errors redelivered; %d executions (%s); %d deploys; %d check runs; %d drain approvals; rule B overlaps %d; total %v",
		len(progByID), len(plan), counts, len(done), redelivered, len(exs), strings.Join(fig, " "), deploys, checkRuns, approvals, overlaps, time.Since(began).Round(time.Millisecond))
}
