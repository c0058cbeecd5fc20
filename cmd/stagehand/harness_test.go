package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/state"
)

const (
	testAppID  = 4242
	testSecret = "s3cret for tests"
	pushSHA    = "6113728f27ae82c7b1a177c8d03f9e96e0adf246" // after of push/branch-created.json
)

const stageOnlyConfig = `version: 1
build: {run: make, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh stage}
  production: {deploy: ./deploy.sh production}
pipelines:
  full-stack: {branch: master, trigger: on-git-changes}
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {}
`

// harness is a GitHub stand-in, a key file and a data directory for one
// server under test.
type harness struct {
	gh      *githubtest.Server
	keyFile string
	dataDir string
	addr    string
	gitURL  string // --github-git-url; empty: the default
	// sandbox is --step-sandbox; empty: testSandboxMode().
	sandbox string
	// secret signs deliveries; empty: testSecret, which args passes.
	secret string
	// databaseURL is the server's --database-url; empty: SQLite in dataDir.
	databaseURL string
	// extra are more serve flags, after the others.
	extra []string
}

// testSandboxMode is the --step-sandbox of tests that do not choose: bwrap
// where bubblewrap is installed or STAGEHAND_TEST_SANDBOX=1 demands it
// (CI), none on a machine without it.
func testSandboxMode() string {
	if _, err := exec.LookPath("bwrap"); err != nil && os.Getenv("STAGEHAND_TEST_SANDBOX") != "1" {
		return "none"
	}
	return "bwrap"
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	gh := githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(testAppID, &key.PublicKey)
	gh.AddInstallation(1, "Codertocat")
	gh.AddRepo(1, "Codertocat", "Hello-World")
	gh.SetFile("Codertocat", "Hello-World", pushSHA, ".github/stagehand.yml", []byte(stageOnlyConfig))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return &harness{gh: gh, keyFile: keyFile, dataDir: filepath.Join(dir, "data"), addr: freeAddr(t)}
}

func (h *harness) args() []string {
	args := []string{"serve", "--listen", h.addr, "--data-dir", h.dataDir,
		"--github-app-id", fmt.Sprint(testAppID), "--github-private-key-file", h.keyFile,
		"--github-webhook-secret", testSecret, "--github-api-url", h.gh.URL(), "--log-level", "debug"}
	if h.gitURL != "" {
		args = append(args, "--github-git-url", h.gitURL)
	}
	sandbox := h.sandbox
	if sandbox == "" {
		sandbox = testSandboxMode()
	}
	args = append(args, "--step-sandbox", sandbox)
	return append(args, h.extra...)
}

func (h *harness) url(path string) string { return "http://" + h.addr + path }

// send posts a signed delivery and returns the status code.
func (h *harness) send(t *testing.T, event, guid string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest("POST", h.url("/webhooks"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	secret := h.secret
	if secret == "" {
		secret = testSecret
	}
	req.Header.Set("X-Hub-Signature-256", githubtest.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /webhooks: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// get returns the status and body of a GET, or 0 when the server does not answer.
func (h *harness) get(path string) (int, string) {
	resp, err := http.Get(h.url(path))
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady waits for /readyz; the deadline is generous because a loaded
// machine (CI runs the packages side by side, under -race) can take tens of
// seconds to start the embedded broker, migrate and probe the sandbox.
func (h *harness) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, 90*time.Second, "the server to be ready", func() bool {
		code, _ := h.get("/readyz")
		return code == http.StatusOK
	})
}

// executions reads the state database the server writes.
func (h *harness) executions(t *testing.T) []bot.Execution {
	t.Helper()
	ctx := context.Background()
	var store bot.Store
	var err error
	if h.databaseURL != "" {
		store, err = state.OpenPostgres(ctx, h.databaseURL)
	} else {
		store, err = state.OpenSQLite(ctx, filepath.Join(h.dataDir, "stagehand.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out []bot.Execution
	err = store.View(ctx, func(tx bot.Tx) error {
		progs, err := tx.Programs(ctx)
		for _, p := range progs {
			es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID})
			if err != nil {
				return err
			}
			out = append(out, es...)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) processed(t *testing.T, guid string) bool {
	t.Helper()
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(h.dataDir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var done bool
	err = store.View(ctx, func(tx bot.Tx) error {
		var err error
		done, err = tx.DeliveryProcessed(ctx, guid)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func (h *harness) contentsCalls() int {
	n := 0
	for _, c := range h.gh.Calls() {
		if strings.Contains(c.Path, "/contents/") {
			n++
		}
	}
	return n
}

// localRepo makes the repository Codertocat/Hello-World with one commit of
// files under a new directory, points the harness's server at it
// (--github-git-url file://...) and gives the stand-in its
// .github/stagehand.yml at that commit.
func (h *harness) localRepo(t *testing.T, files map[string]string) (sha string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "Codertocat", "Hello-World")
	writeFiles(t, dir, files)
	git := gitIn(t, dir)
	git("init", "-q", "-b", "master")
	git("add", "-A")
	git("commit", "-q", "-m", "sample")
	sha = git("rev-parse", "HEAD")
	h.gh.SetFile("Codertocat", "Hello-World", sha, ".github/stagehand.yml", []byte(files[".github/stagehand.yml"]))
	h.gitURL = "file://" + root + "/"
	return sha
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a server's logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFiles writes files (path relative to dir: content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gitIn returns a function that runs git in dir with a test identity and
// returns its trimmed output; a failure ends the test.
func gitIn(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
}
