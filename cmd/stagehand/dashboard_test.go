package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

const (
	testClientID     = "Iv23liServeTest"
	testClientSecret = "serve-test-client-secret"
)

// fetch GETs url with c and returns the status, the Location and the body.
func fetch(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	status, loc, body := fetchOrZero(c, url)
	if status == 0 {
		t.Fatalf("GET %s: no answer", url)
	}
	return status, loc, body
}

// withProgram records the program of Codertocat/Hello-World in the state
// database the server will open, as the App's installation would.
func (h *harness) withProgram(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(h.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	store, err := state.OpenSQLite(t.Context(), filepath.Join(h.dataDir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	err = store.Update(t.Context(), func(tx bot.Tx) error {
		_, err := tx.EnsureProgram(t.Context(), 1, bot.Repository{ID: h.gh.RepoID("Codertocat", "Hello-World"), Owner: "Codertocat", Name: "Hello-World"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// signInArgs configure sign-in with GitHub against the harness's stand-in,
// where alice may read Codertocat/Hello-World and mallory may not.
func (h *harness) signInArgs(t *testing.T) []string {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(testClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.gh.SetOAuthApp(testClientID, testClientSecret, h.url("/auth/callback"))
	h.gh.SetPermission("Codertocat", "Hello-World", "alice", "read")
	h.gh.AddUser("mallory")
	return []string{"--public-url", "http://" + h.addr, "--github-client-id", testClientID,
		"--github-client-secret-file", secretFile, "--github-web-url", h.gh.URL()}
}

// startServe runs serve with the harness's arguments and more, until the
// test ends, and returns its log.
func (h *harness) startServe(t *testing.T, more ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(h.args(), more...), func(string) string { return "" }, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs)
		}
	})
	h.waitReady(t)
	return logs
}

// TestServeWithoutSignInServesNoDashboard: without the App's client id and
// secret, / and /api/v1/ show nothing and say how to turn the dashboard on,
// as the log does at start; --dashboard public serves it, with a warning.
func TestServeWithoutSignInServesNoDashboard(t *testing.T) {
	t.Run("not configured", func(t *testing.T) {
		h := newHarness(t)
		h.withProgram(t)
		logs := h.startServe(t)
		for _, path := range []string{"/", "/programs/Codertocat/Hello-World", "/api/v1/programs", "/auth/login"} {
			status, _, body := fetch(t, noRedirects, h.url(path))
			if status != http.StatusNotFound || strings.Contains(body, "Hello-World") ||
				!strings.Contains(body, "--github-client-id and --github-client-secret-file") {
				t.Errorf("GET %s: %d\n%s\nwant 404 saying how to turn the dashboard on, and nothing of the program", path, status, body)
			}
		}
		for _, want := range []string{"serves no dashboard", "--github-client-id", "http://localhost:8080/auth/callback", "--dashboard public"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the log at start does not say %q", want)
			}
		}
		if status, _, _ := fetch(t, noRedirects, h.url("/healthz")); status != http.StatusOK {
			t.Errorf("/healthz: %d", status)
		}
	})
	t.Run("public", func(t *testing.T) {
		h := newHarness(t)
		h.withProgram(t)
		logs := h.startServe(t, "--dashboard", "public")
		if status, _, body := fetch(t, noRedirects, h.url("/")); status != http.StatusOK || !strings.Contains(body, "Codertocat/Hello-World") {
			t.Errorf("GET /: %d, want the program list with Codertocat/Hello-World\n%s", status, body)
		}
		if status, _, body := fetch(t, noRedirects, h.url("/api/v1/programs")); status != http.StatusOK || !strings.Contains(body, "Hello-World") {
			t.Errorf("GET /api/v1/programs: %d\n%s", status, body)
		}
		if !strings.Contains(logs.String(), "the dashboard is public") {
			t.Errorf("no warning at start:\n%s", logs)
		}
	})
	t.Run("off", func(t *testing.T) {
		h := newHarness(t)
		h.withProgram(t)
		h.startServe(t, append(h.signInArgs(t), "--dashboard", "off")...)
		if status, _, body := fetch(t, noRedirects, h.url("/api/v1/programs")); status != http.StatusNotFound || strings.Contains(body, "Hello-World") {
			t.Errorf("GET /api/v1/programs with --dashboard off: %d\n%s", status, body)
		}
	})
}

// TestServeSignInWithGitHub: with the client id and secret, serve sends
// visitors to sign in with GitHub; after it, alice sees the program she can
// read; mallory does not; /metrics can move off the public port.
func TestServeSignInWithGitHub(t *testing.T) {
	h := newHarness(t)
	h.withProgram(t)
	metricsAddr := freeAddr(t)
	logs := h.startServe(t, append(h.signInArgs(t), "--metrics-listen", metricsAddr)...)

	status, loc, _ := fetch(t, noRedirects, h.url("/programs/Codertocat/Hello-World"))
	if status != http.StatusSeeOther || loc != h.url("/auth/login?next=%2Fprograms%2FCodertocat%2FHello-World") {
		t.Errorf("a page without signing in: %d to %q, want to be sent to sign in", status, loc)
	}
	if status, _, _ := fetch(t, noRedirects, h.url("/api/v1/programs")); status != http.StatusUnauthorized {
		t.Errorf("the API without signing in: %d, want 401", status)
	}
	for _, who := range []struct {
		login string
		sees  bool
	}{{"alice", true}, {"mallory", false}} {
		h.gh.SignInOnWeb(who.login)
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		status, _, body := fetch(t, browser, h.url("/programs/Codertocat/Hello-World"))
		if sees := status == http.StatusOK; sees != who.sees || !strings.Contains(body, "Signed in as") && who.sees {
			t.Errorf("%s signed in, on the program's page: %d, want it shown: %v\n%s", who.login, status, who.sees, body)
		}
		u, _ := url.Parse(h.url("/"))
		if cookies := jar.Cookies(u); len(cookies) != 1 || cookies[0].Name != "stagehand-session" {
			t.Errorf("%s's cookies: %v, want the session's only", who.login, cookies)
		}
	}
	if !strings.Contains(logs.String(), "callback_url="+h.url("/auth/callback")) {
		t.Errorf("the log at start does not name the callback URL")
	}
	if _, err := os.Stat(filepath.Join(h.dataDir, "session-key")); err != nil {
		t.Errorf("no session key made in the data dir: %v", err)
	}

	// /metrics is on --metrics-listen only; webhooks, health stay put.
	if status, _, _ := fetch(t, noRedirects, h.url("/metrics")); status == http.StatusOK {
		t.Errorf("/metrics on the public port: %d, want it moved", status)
	}
	if status, _, body := fetch(t, noRedirects, "http://"+metricsAddr+"/metrics"); status != http.StatusOK || !strings.Contains(body, "stagehand_poison_queue_messages") {
		t.Errorf("/metrics on --metrics-listen: %d", status)
	}
	h.gh.AssertNoErrors(t)
}
