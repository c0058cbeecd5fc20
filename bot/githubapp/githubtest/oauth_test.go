package githubtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// noFollow stops at the first redirect, as a test reads where it points.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// clock is a settable clock for the stand-in.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func oauthServer(t *testing.T, c *clock) *githubtest.Server {
	s := githubtest.New(t, githubtest.WithClock(c.now))
	s.SetOAuthApp("Iv1.app", "shh", "https://stagehand.test/auth/callback")
	s.AddRepo(1, "acme", "app")
	s.SetPermission("acme", "app", "alice", "read")
	s.AddUser("mallory")
	return s
}

// authorizeAt opens the authorize page with query q and returns the status
// and where it redirects.
func authorizeAt(t *testing.T, s *githubtest.Server, q url.Values) (int, *url.URL, string) {
	t.Helper()
	resp, err := noFollow.Get(s.URL() + "login/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc, string(body)
}

func TestOAuthWebFlow(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)}
	s := oauthServer(t, c)
	q := url.Values{"client_id": {"Iv1.app"}, "state": {"xyz"}, "redirect_uri": {"https://stagehand.test/auth/callback"}}

	// Nobody signed in on the web: GitHub's sign-in page, no code.
	if status, loc, body := authorizeAt(t, s, q); status != http.StatusOK || loc.String() != "" || !strings.Contains(body, "Sign in to GitHub") {
		t.Errorf("authorize with nobody signed in: %d to %q, want GitHub's sign-in page", status, loc)
	}
	// A callback elsewhere goes back to the registered one with an error.
	bad := url.Values{"client_id": {"Iv1.app"}, "state": {"xyz"}, "redirect_uri": {"https://evil.test/auth/callback"}}
	if _, loc, _ := authorizeAt(t, s, bad); loc.Host != "stagehand.test" || loc.Query().Get("error") != "redirect_uri_mismatch" {
		t.Errorf("authorize to another host: redirect to %q, want the registered callback with redirect_uri_mismatch", loc)
	}

	// The login hint picks the person; the code comes back with the state.
	hinted := url.Values{"client_id": {"Iv1.app"}, "state": {"xyz"}, "login": {"mallory"}}
	status, loc, _ := authorizeAt(t, s, hinted)
	if status != http.StatusFound || loc.Query().Get("state") != "xyz" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize with a login hint: %d to %q, want the callback with a code and the state", status, loc)
	}

	// The token endpoint answers JSON when asked to; errors with status 200.
	exchange := func(code string) map[string]any {
		t.Helper()
		form := url.Values{"client_id": {"Iv1.app"}, "client_secret": {"shh"}, "code": {code}}
		req, _ := http.NewRequest("POST", s.URL()+"login/oauth/access_token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("access_token: %s, %v", resp.Status, err)
		}
		return m
	}
	got := exchange(loc.Query().Get("code"))
	tok, _ := got["access_token"].(string)
	if !strings.HasPrefix(tok, "ghu_") || got["expires_in"] != float64(28800) || got["token_type"] != "bearer" {
		t.Errorf("access_token answer %v, want a ghu_ token for 28800 seconds", got)
	}
	if status, body := do(t, "GET", s.URL()+"user", "Bearer "+tok, ""); status != http.StatusOK || !strings.Contains(string(body), `"login":"mallory"`) {
		t.Errorf("GET /user: %d %s, want mallory", status, body)
	}
	// mallory reads no repository of installation 1: GitHub's 404.
	if status, _ := do(t, "GET", s.URL()+"user/installations/1/repositories", "Bearer "+tok, ""); status != http.StatusNotFound {
		t.Errorf("mallory lists installation 1: %d, want 404", status)
	}
	if status, _ := do(t, "GET", s.URL()+"repos/acme/app", "Bearer "+tok, ""); status != http.StatusNotFound {
		t.Errorf("mallory reads acme/app: %d, want 404", status)
	}

	// Codes last ten minutes; tokens eight hours.
	s.SignInOnWeb("alice")
	_, late, _ := authorizeAt(t, s, q)
	c.add(10 * time.Minute)
	if got := exchange(late.Query().Get("code")); got["error"] != "bad_verification_code" {
		t.Errorf("a code after ten minutes: %v, want bad_verification_code", got)
	}
	c.add(8*time.Hour - 10*time.Minute)
	if s.UserTokenLive(tok) {
		t.Error("the user access token is live after eight hours")
	}
	if status, _ := do(t, "GET", s.URL()+"user", "Bearer "+tok, ""); status != http.StatusUnauthorized {
		t.Errorf("GET /user with an expired token: %d, want 401", status)
	}
	s.AssertNoErrors(t)
}
