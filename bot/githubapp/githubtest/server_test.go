package githubtest_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

const appID = 42

var keys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	_, a := githubtest.GenerateAppKey(nil)
	_, b := githubtest.GenerateAppKey(nil)
	return [2]*rsa.PrivateKey{a, b}
})

// newServer starts a stand-in with app 42, installation 1 on acme/app and
// installation 2 on other/lib.
func newServer(t *testing.T, opts ...githubtest.Option) *githubtest.Server {
	t.Helper()
	s := githubtest.New(t, opts...)
	s.SetAppKey(appID, &keys()[0].PublicKey)
	s.AddInstallation(1, "acme")
	s.AddRepo(1, "acme", "app")
	s.AddInstallation(2, "other")
	s.AddRepo(2, "other", "lib")
	return s
}

func appJWT(t *testing.T, key *rsa.PrivateKey, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	var signKey any = key
	if method == jwt.SigningMethodHS256 {
		signKey = []byte("secret")
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(signKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validJWT(t *testing.T) string {
	now := time.Now()
	return appJWT(t, keys()[0], jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": strconv.Itoa(appID), "iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(2 * time.Minute).Unix(),
	})
}

func do(t *testing.T, method, url, auth, body string) (int, []byte) {
	t.Helper()
	status, data, _ := doHeader(t, method, url, auth, body)
	return status, data
}

// doHeader is do that also returns the answer's headers.
func doHeader(t *testing.T, method, url, auth, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header
}

func installationToken(t *testing.T, s *githubtest.Server, id int) string {
	t.Helper()
	status, body := do(t, "POST", s.URL()+"app/installations/"+strconv.Itoa(id)+"/access_tokens", "Bearer "+validJWT(t), "{}")
	if status != http.StatusCreated {
		t.Fatalf("access token: %d %s", status, body)
	}
	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func TestAppJWT(t *testing.T) {
	now := time.Now()
	claims := func(iss any, iat, exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "iat": iat.Unix(), "exp": exp.Unix()}
	}
	good := claims("42", now.Add(-30*time.Second), now.Add(2*time.Minute))
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"valid, iss as string", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, good), 201},
		{"valid, iss as number", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, claims(42, now, now.Add(9*time.Minute))), 201},
		{"wrong key", "Bearer " + appJWT(t, keys()[1], jwt.SigningMethodRS256, good), 401},
		{"HS256", "Bearer " + appJWT(t, nil, jwt.SigningMethodHS256, good), 401},
		{"unknown app", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, claims("43", now, now.Add(time.Minute))), 401},
		{"expired", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, claims("42", now.Add(-5*time.Minute), now.Add(-time.Minute))), 401},
		{"exp over 10 minutes", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, claims("42", now, now.Add(11*time.Minute))), 401},
		{"iat in the future", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, claims("42", now.Add(5*time.Minute), now.Add(6*time.Minute))), 401},
		{"fractional exp", "Bearer " + appJWT(t, keys()[0], jwt.SigningMethodRS256, jwt.MapClaims{"iss": "42", "iat": now.Unix(), "exp": float64(now.Unix()) + 60.5}), 401},
		{"token scheme", "token " + appJWT(t, keys()[0], jwt.SigningMethodRS256, good), 401},
		{"garbage", "Bearer abc.def.ghi", 401},
		{"none", "", 401},
	}
	s := newServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, "POST", s.URL()+"app/installations/1/access_tokens", tt.auth, "")
			if status != tt.status {
				t.Errorf("status %d (%s), want %d", status, body, tt.status)
			}
		})
	}
	s.AssertNoErrors(t)
}

func TestNoAppKeyIsAnError(t *testing.T) {
	s := githubtest.New(t)
	s.AddRepo(1, "acme", "app")
	status, _ := do(t, "POST", s.URL()+"app/installations/1/access_tokens", "Bearer "+validJWT(t), "")
	if status != 401 || len(s.Errors()) != 1 || !strings.Contains(s.Errors()[0].Error(), "SetAppKey") {
		t.Errorf("status %d, errors %v; want 401 and one error naming SetAppKey", status, s.Errors())
	}
}

func TestAccessToken(t *testing.T) {
	now := time.Now()
	s := newServer(t, githubtest.WithClock(func() time.Time { return now }))
	status, body := do(t, "POST", s.URL()+"app/installations/1/access_tokens", "Bearer "+validJWT(t), "")
	var got struct {
		Token       string            `json:"token"`
		ExpiresAt   string            `json:"expires_at"`
		Selection   string            `json:"repository_selection"`
		Permissions map[string]string `json:"permissions"`
	}
	if err := json.Unmarshal(body, &got); err != nil || status != 201 {
		t.Fatalf("status %d, body %s, err %v", status, body, err)
	}
	if !strings.HasPrefix(got.Token, "ghs_") {
		t.Errorf("token %q does not look like an installation token", got.Token)
	}
	want := now.Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	if diff := cmp.Diff(want, got.ExpiresAt); diff != "" {
		t.Errorf("expires_at (-want +got):\n%s", diff)
	}
	if got.Selection != "all" || got.Permissions["checks"] != "write" {
		t.Errorf("selection %q permissions %v", got.Selection, got.Permissions)
	}
	if status, _ := do(t, "POST", s.URL()+"app/installations/99/access_tokens", "Bearer "+validJWT(t), ""); status != 404 {
		t.Errorf("unknown installation: status %d, want 404", status)
	}
	s.AssertNoErrors(t)
}

func TestContents(t *testing.T) {
	s := newServer(t)
	big := bytes.Repeat([]byte("0123456789"), 30) // several lines of base64
	s.SetFile("acme", "app", "main", ".github/stagehand.yml", []byte("version: 1\n"))
	s.SetFile("acme", "app", "abc123", ".github/stagehand.yml", big)
	s.SetFile("acme", "app", "abc123", ".github/workflows/x.yml", []byte("x"))
	tok1 := installationToken(t, s, 1)
	tok2 := installationToken(t, s, 2)
	contents := s.URL() + "repos/acme/app/contents/"

	tests := []struct {
		name, url, auth string
		status          int
		want            []byte // decoded content for files
	}{
		{"default branch", contents + ".github/stagehand.yml", "token " + tok1, 200, []byte("version: 1\n")},
		{"at sha, Bearer", contents + ".github/stagehand.yml?ref=abc123", "Bearer " + tok1, 200, big},
		{"owner case-insensitive", s.URL() + "repos/ACME/App/contents/.github/stagehand.yml", "token " + tok1, 200, []byte("version: 1\n")},
		{"directory", contents + ".github?ref=abc123", "token " + tok1, 200, nil},
		{"missing file", contents + "nope.yml", "token " + tok1, 404, nil},
		{"unknown ref", contents + ".github/stagehand.yml?ref=zzz", "token " + tok1, 404, nil},
		{"no auth", contents + ".github/stagehand.yml", "", 401, nil},
		{"unknown token", contents + ".github/stagehand.yml", "token ghs_nope", 401, nil},
		{"JWT is not a token", contents + ".github/stagehand.yml", "Bearer " + validJWT(t), 401, nil},
		{"other installation's token", contents + ".github/stagehand.yml", "token " + tok2, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, "GET", tt.url, tt.auth, "")
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			if tt.want == nil {
				return
			}
			var file struct{ Content, Encoding string }
			if err := json.Unmarshal(body, &file); err != nil {
				t.Fatal(err)
			}
			got, err := base64.StdEncoding.DecodeString(file.Content) // ignores GitHub's line breaks
			if err != nil || file.Encoding != "base64" {
				t.Fatalf("encoding %q, decode error %v", file.Encoding, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
		})
	}
	s.AssertNoErrors(t) // every answer above passed the response schemas
}

func TestRepoInstallationAndRateLimit(t *testing.T) {
	s := newServer(t)
	status, body := do(t, "GET", s.URL()+"repos/other/lib/installation", "Bearer "+validJWT(t), "")
	var inst struct {
		ID    int64 `json:"id"`
		AppID int64 `json:"app_id"`
	}
	if err := json.Unmarshal(body, &inst); err != nil || status != 200 {
		t.Fatalf("status %d body %s err %v", status, body, err)
	}
	if diff := cmp.Diff(struct{ ID, AppID int64 }{2, appID}, struct{ ID, AppID int64 }{inst.ID, inst.AppID}); diff != "" {
		t.Errorf("installation (-want +got):\n%s", diff)
	}
	if status, _ := do(t, "GET", s.URL()+"repos/nobody/none/installation", "Bearer "+validJWT(t), ""); status != 404 {
		t.Errorf("unknown repo: %d, want 404", status)
	}
	if status, _ := do(t, "GET", s.URL()+"rate_limit", "", ""); status != 200 {
		t.Errorf("rate_limit: %d", status)
	}
	if status, _ := do(t, "GET", s.URL()+"rate_limit", "token "+installationToken(t, s, 1), ""); status != 200 {
		t.Errorf("rate_limit with token: %d", status)
	}
	s.AssertNoErrors(t)
}

func TestUnexpectedRequestsAreErrors(t *testing.T) {
	s := newServer(t)
	tok := installationToken(t, s, 1)
	tests := []struct {
		name, method, path, body string
		status                   int
		wantErr                  string
	}{
		{"unknown endpoint", "GET", "gists", "", 404, "no operation"},
		{"not implemented yet", "GET", "repos/acme/app/commits/abc/pulls", "", 404, "does not implement"},
		{"bad body", "POST", "repos/acme/app/check-runs", `{"head_sha":"abc"}`, 422, "name"},
		{"bad token body", "POST", "app/installations/1/access_tokens", `{"repositories":"app"}`, 422, "repositories"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Errors())
			status, body := do(t, tt.method, s.URL()+tt.path, "token "+tok, tt.body)
			if status != tt.status {
				t.Errorf("status %d (%s), want %d", status, body, tt.status)
			}
			errs := s.Errors()[before:]
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
				t.Errorf("errors %v, want one containing %q", errs, tt.wantErr)
			}
		})
	}
}

func TestCallsAreRecorded(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s := githubtest.New(t, githubtest.WithClock(func() time.Time { return now }))
	do(t, "GET", s.URL()+"rate_limit?x=1", "", "")
	want := []githubtest.Call{{
		Method: "GET", Path: "/rate_limit", Query: map[string][]string{"x": {"1"}}, Body: []byte{},
		Status: 200, Time: now, Answered: now, Operation: "GET /rate_limit",
	}}
	if diff := cmp.Diff(want, s.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
}

func TestFailNext(t *testing.T) {
	s := newServer(t)
	s.FailNext("/rate_limit", 2, http.StatusServiceUnavailable, http.Header{"retry-after": {"1"}})
	var got []int
	for range 3 {
		req, _ := http.NewRequest("GET", s.URL()+"rate_limit", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, resp.StatusCode)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
		}
	}
	if diff := cmp.Diff([]int{503, 503, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	s.AssertNoErrors(t)
}

func TestHold(t *testing.T) {
	s := newServer(t)
	release := s.Hold("/rate_limit")
	done := make(chan int)
	go func() {
		resp, err := http.Get(s.URL() + "rate_limit")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitHeld(ctx, "/rate", 1); err != nil {
		t.Fatal(err)
	}
	// Other paths pass while the hold is on.
	if status, _ := do(t, "GET", s.URL()+"repos/acme/app/installation", "Bearer "+validJWT(t), ""); status != 200 {
		t.Errorf("unheld request: %d", status)
	}
	select {
	case status := <-done:
		t.Fatalf("held request finished before release with %d", status)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	release() // idempotent
	select {
	case status := <-done:
		if status != 200 {
			t.Errorf("released request: %d, want 200", status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still held after release")
	}
	// A held request whose client gives up is recorded without a status.
	release = s.Hold("/rate_limit")
	defer release()
	reqCtx, reqCancel := context.WithCancel(context.Background())
	go func() {
		_ = s.WaitHeld(ctx, "/rate_limit", 1)
		reqCancel()
	}()
	req, _ := http.NewRequestWithContext(reqCtx, "GET", s.URL()+"rate_limit", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("cancelled request succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		calls := s.Calls()
		if last := calls[len(calls)-1]; last.Path == "/rate_limit" && last.Status == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("abandoned held request not recorded with status 0: %+v", s.Calls())
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	s := githubtest.New(nil)
	s.Hold("/")
	go func() {
		if resp, err := http.Get(s.URL() + "rate_limit"); err == nil {
			resp.Body.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitHeld(ctx, "/", 1); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close blocked on a held request")
	}
}
