package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// scaleClients is how many HTTP clients post deliveries at once.
const scaleClients = 16

// scaleCheckRun is the name of the check run a push's execution gets.
const scaleCheckRun = "stagehand/stage-only"

// BenchmarkScaleOut measures real `stagehand serve` processes (the binary,
// as in TestMultipleReplicas) end to end: b.N signed push deliveries
// (push/branch-created.json shaped as in replPush: each a new commit on
// main of one of 30 sample repositories whose .github/stagehand.yml has a
// stage-only pipeline triggered on git changes, so each push queues a
// stage-only execution), spread round-robin over the programs and over the
// replicas, scaleClients at once. The builds, deploys and tests are trivial
// shell commands.
//
// Reported: deliveries/s (b.N / time from the first request until the last
// 202), and the p50 and p99 push-to-first-check-run latency in ms: from
// just before the delivery's request is sent until the GitHub stand-in
// receives the POST /repos/{owner}/{repo}/check-runs that creates the
// stagehand/stage-only check run of the pushed commit. The arrival time is
// githubtest's Call.Time (time.Now in this process, the same clock as the
// send time), so the figure is exact to the request's arrival, with no
// polling error; the stand-in's CheckRun.StartedAt is whole seconds (and
// set from the request body), so it is not used. With several pushes per
// program a push's execution may be superseded (rule C: a newer push takes
// the queued slot and the older execution ends skipped) before the reporter
// first reports it; its first check run is then created completed,
// "skipped", and that counts as its first check run: it is the commit's
// first word on GitHub. first-check-skipped says how many of the b.N were
// so (the others' first check run shows the execution queued or running).
//
//   - embedded-1: one serve, embedded SQLite and NATS (no URLs).
//   - postgres-nats-1, postgres-nats-3: one and three replicas on one fresh
//     PostgreSQL schema (STAGEHAND_TEST_POSTGRES_URL) and one external NATS
//     (STAGEHAND_TEST_NATS_URL, a prefix of their own).
//   - single-…: the same setups, but one push at a time: each delivery is
//     sent once the previous one's check run exists and a pause of up to a
//     second has passed (a push nothing else is queued behind; the
//     executions of earlier pushes may still run). deliveries/s is not
//     meaningful there.
//
// Every call of the benchmark function (including the b.N = 1 probe) sets
// up fresh servers, repositories and state. Performance is measured here,
// never asserted; see BENCHMARKS.md.
func BenchmarkScaleOut(b *testing.B) {
	b.Run("embedded-1", func(b *testing.B) { benchScaleOut(b, 1, false, false) })
	b.Run("postgres-nats-1", func(b *testing.B) { benchScaleOut(b, 1, true, false) })
	b.Run("postgres-nats-3", func(b *testing.B) { benchScaleOut(b, 3, true, false) })
	b.Run("single-embedded-1", func(b *testing.B) { benchScaleOut(b, 1, false, true) })
	b.Run("single-postgres-nats-1", func(b *testing.B) { benchScaleOut(b, 1, true, true) })
	b.Run("single-postgres-nats-3", func(b *testing.B) { benchScaleOut(b, 3, true, true) })
}

// scaleHasCheckRun reports whether commit sha of repo has its stage-only
// check run on the stand-in.
func scaleHasCheckRun(gh *githubtest.Server, repo, sha string) bool {
	for _, cr := range gh.CheckRuns(replOwner, repo) {
		if cr.Name == scaleCheckRun && cr.HeadSHA == sha {
			return true
		}
	}
	return false
}

func benchScaleOut(b *testing.B, replicas int, external, single bool) {
	var dbURL, natsURL, prefix string
	if external {
		if os.Getenv("STAGEHAND_TEST_POSTGRES_URL") == "" || os.Getenv("STAGEHAND_TEST_NATS_URL") == "" {
			b.Skip("needs STAGEHAND_TEST_POSTGRES_URL and STAGEHAND_TEST_NATS_URL (a PostgreSQL server and a NATS server with JetStream)")
		}
		dbURL = freshSchema(b)
		natsURL = os.Getenv("STAGEHAND_TEST_NATS_URL")
		prefix = "shbench" + loadRandomHex(b)
		b.Cleanup(func() { replCleanNATS(b, natsURL, prefix) })
	}

	gh := githubtest.New(b)
	pemBytes, key := githubtest.GenerateAppKey(b)
	gh.SetAppKey(testAppID, &key.PublicKey)
	gh.AddInstallation(replInst, replOwner)
	dir := b.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(dir, "git")
	perProg := (b.N + replPrograms - 1) / replPrograms
	progs := scaleRepos(b, gh, root, perProg)

	// The deliveries, made before the clock starts: delivery i is the next
	// commit of program i%30, sent to replica i%replicas.
	run := loadRandomHex(b)
	bodies := make([][]byte, b.N)
	shas := make([]string, b.N)
	for i := range b.N {
		bodies[i], shas[i] = scalePush(b, progs[i%len(progs)], i%len(progs))
	}

	rs := &replicaSet{gh: gh, keyFile: keyFile, gitURL: "file://" + root + "/", dbURL: dbURL, natsURL: natsURL,
		prefix: prefix, logDir: filepath.Join(dir, "logs")}
	if err := os.MkdirAll(rs.logDir, 0o755); err != nil {
		b.Fatal(err)
	}
	bin := binary(b)
	for i := range replicas {
		r := &replica{name: fmt.Sprintf("replica%d", i+1), dataDir: filepath.Join(dir, fmt.Sprintf("data%d", i+1)), addr: freeAddr(b)}
		rs.replicas = append(rs.replicas, r)
		scaleStart(b, rs, r, bin)
		if i == 0 {
			// The first one migrates the schema alone.
			waitFor(b, 60*time.Second, r.name+" to be ready", r.ready)
		}
	}
	for _, r := range rs.replicas {
		waitFor(b, 60*time.Second, r.name+" to be ready", r.ready)
	}
	b.Cleanup(func() {
		if b.Failed() {
			b.Logf("warnings and errors in the replicas' logs:\n%s", rs.warnSummary())
		}
	})

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: scaleClients, MaxIdleConnsPerHost: scaleClients, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()

	sent := make([]time.Time, b.N)
	var next atomic.Int64
	var failures atomic.Int64
	clients := scaleClients
	if single {
		clients = 1
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				r := rs.replicas[i%len(rs.replicas)]
				sent[i] = time.Now()
				code, err := r.post(client, "push", fmt.Sprintf("bench-%s-%06d", run, i), bodies[i])
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("answered %d, want 202", code)
				}
				if err != nil {
					b.Errorf("delivery %d to %s: %v", i, r.name, err)
					failures.Add(1)
				}
				// One at a time: the next push once this one's check run
				// exists (its creation time is read from the stand-in's
				// calls below, so this poll adds nothing to the figure).
				for deadline := time.Now().Add(time.Minute); single && err == nil &&
					!scaleHasCheckRun(gh, progs[i%len(progs)].repo, shas[i]) && time.Now().Before(deadline); {
					time.Sleep(2 * time.Millisecond)
				}
				if single {
					// A pause of up to a second, at random, so that pushes do
					// not keep one phase against a reporter that polls.
					time.Sleep(rand.N(time.Second))
				}
			}
		})
	}
	wg.Wait()
	accepted := time.Since(start)
	b.StopTimer()
	if failures.Load() > 0 {
		return
	}

	// Wait for a stage-only check run on every pushed commit.
	want := map[string]bool{}
	for _, s := range shas {
		want[s] = true
	}
	have := func() int {
		n := 0
		for _, p := range progs {
			for _, cr := range gh.CheckRuns(replOwner, p.repo) {
				if cr.Name == scaleCheckRun && want[cr.HeadSHA] {
					n++
					want[cr.HeadSHA] = false
				}
			}
		}
		return n
	}
	got := 0
	deadline := time.Now().Add(5 * time.Minute)
	for got < b.N && time.Now().Before(deadline) {
		got += have()
		if got < b.N {
			time.Sleep(100 * time.Millisecond)
		}
	}
	allChecks := time.Since(start)
	if got < b.N {
		b.Errorf("after 5m, %d of %d pushed commits have a %s check run", got, b.N, scaleCheckRun)
	}

	// When each commit's first stage-only check run was created, and whether
	// it was created completed "skipped" (rule C: a newer push to the
	// program superseded the execution before the reporter got to it).
	first := map[string]time.Time{}
	skipped := map[string]bool{}
	for _, c := range gh.Calls() {
		if c.Method != http.MethodPost || c.Status != http.StatusCreated || !strings.HasSuffix(c.Path, "/check-runs") {
			continue
		}
		var body struct {
			Name       string `json:"name"`
			HeadSHA    string `json:"head_sha"`
			Conclusion string `json:"conclusion"`
		}
		if json.Unmarshal(c.Body, &body) != nil || body.Name != scaleCheckRun {
			continue
		}
		if t, ok := first[body.HeadSHA]; !ok || c.Time.Before(t) {
			first[body.HeadSHA] = c.Time
			skipped[body.HeadSHA] = body.Conclusion == "skipped"
		}
	}
	nSkipped := 0
	for _, s := range skipped {
		if s {
			nSkipped++
		}
	}
	latencies := make([]time.Duration, 0, b.N)
	for i, s := range shas {
		if t, ok := first[s]; ok {
			latencies = append(latencies, t.Sub(sent[i]))
		}
	}
	slices.Sort(latencies)
	// In a burst, the GitHub writes (the reporter's check runs and
	// deployments) from the first push until the 99th-percentile commit's
	// first check run, the mean time per write, and the stand-in's own mean
	// time to answer one: the reporter sends an installation's writes one
	// at a time, so that percentile cannot come sooner than these writes,
	// one after the other, allow; the rest of each write's turn is the
	// client's, the network's and the reporter's.
	var writes int
	var lastWrite time.Time
	var answering time.Duration // the stand-in's time to answer those writes
	if len(first) > 0 && !single {
		times := slices.SortedFunc(maps.Values(first), time.Time.Compare)
		until := times[(len(times)*99+99)/100-1]
		for _, c := range gh.Calls() {
			if c.Method != http.MethodGet && !c.Time.Before(start) && !c.Time.After(until) {
				writes++
				lastWrite = c.Time
				if !c.Answered.IsZero() {
					answering += c.Answered.Sub(c.Time)
				}
			}
		}
	}
	if writes > 0 {
		b.ReportMetric(float64(writes), "github-writes-to-p99")
		b.ReportMetric(float64(lastWrite.Sub(start).Milliseconds())/float64(writes), "ms-per-github-write")
		b.ReportMetric(float64(answering.Microseconds())/1000/float64(writes), "stand-in-ms-per-write")
	}
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "deliveries/s")
	b.ReportMetric(loadPercentileMillis(latencies, 0.50), "p50-first-check-ms")
	b.ReportMetric(loadPercentileMillis(latencies, 0.99), "p99-first-check-ms")
	b.ReportMetric(float64(nSkipped), "first-check-skipped")
	if b.N > 1 {
		b.Logf("%d replicas: %d deliveries accepted in %v; %d of %d commits with a check run %v after the first request; %d of them created completed (skipped: superseded)",
			replicas, b.N, accepted.Round(time.Millisecond), len(latencies), b.N, allChecks.Round(time.Millisecond), nSkipped)
	}
}

// scaleRepos makes the 30 sample repositories of replRepos, each with
// commits new commits on main (trivial scripts, no sleeps, no full-stack
// pipeline), registered with their configuration in the stand-in.
func scaleRepos(tb testing.TB, gh *githubtest.Server, root string, commits int) []*replProgram {
	tb.Helper()
	cfg := replConfig(false)
	var progs []*replProgram
	for i := range replPrograms {
		p := &replProgram{repo: fmt.Sprintf("app%02d", i)}
		dir := filepath.Join(root, replOwner, p.repo)
		p.record = filepath.Join(root, "record", p.repo)
		files := map[string]string{
			".github/stagehand.yml": cfg,
			"run.sh":                strings.NewReplacer("RECORD", p.record, "SLEEP", ":").Replace(replScript),
		}
		for name, content := range files {
			f := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				tb.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.MkdirAll(p.record, 0o755); err != nil {
			tb.Fatal(err)
		}
		// One shell for all the commits: the first with the files, the
		// others empty; each prints its sha.
		script := fmt.Sprintf(`set -eu
git init -q -b main
git add -A
git commit -q -m v0
git rev-parse HEAD
for i in $(seq 1 %d); do git commit -q --allow-empty -m "v$i"; git rev-parse HEAD; done
`, commits-1)
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			tb.Fatalf("making %s: %v\n%s", p.repo, err, out)
		}
		p.commits = strings.Fields(string(out))
		if len(p.commits) != commits {
			tb.Fatalf("making %s: %d commits, want %d:\n%s", p.repo, len(p.commits), commits, out)
		}
		gh.AddRepo(replInst, replOwner, p.repo)
		for _, sha := range p.commits {
			gh.SetFile(replOwner, p.repo, sha, ".github/stagehand.yml", []byte(cfg))
		}
		gh.SetPermission(replOwner, p.repo, "alice", "write")
		progs = append(progs, p)
	}
	return progs
}

// scalePush is the push of prog's next commit to main, and that commit.
func scalePush(tb testing.TB, prog *replProgram, idx int) ([]byte, string) {
	tb.Helper()
	sha := prog.commits[prog.pushed]
	return replPush(tb, prog, idx), sha
}

// scaleStart is replicaSet.start for a testing.TB, without the database and
// NATS flags when the set has no URLs (embedded SQLite and NATS).
func scaleStart(tb testing.TB, rs *replicaSet, r *replica, bin string) {
	tb.Helper()
	args := []string{"serve", "--listen", r.addr, "--data-dir", r.dataDir,
		"--github-app-id", fmt.Sprint(testAppID), "--github-private-key-file", rs.keyFile,
		"--github-webhook-secret", testSecret, "--github-api-url", rs.gh.URL(),
		"--github-git-url", rs.gitURL, "--public-url", "http://" + r.addr, "--log-level", "info",
		"--step-sandbox", "none"} // the sample scripts append to the test's deploys.log
	if rs.dbURL != "" {
		args = append(args, "--database-url", rs.dbURL, "--nats-url", rs.natsURL, "--nats-prefix", rs.prefix)
	}
	logs := filepath.Join(rs.logDir, r.name+".log")
	f, err := os.Create(logs)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r.cmd = cmd
	r.logs = append(r.logs, logs)
	tb.Cleanup(func() {
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
