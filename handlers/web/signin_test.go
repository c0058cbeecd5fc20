package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

const (
	testClientID     = "Iv23liDashboardTest"
	testClientSecret = "dashboard-test-secret"
)

var testSessionKey = []byte("0123456789abcdef0123456789abcdef")

// signInFixture is the dashboard fixture (acme/app with five executions,
// acme/other without) behind sign-in, with GitHub's stand-in playing the
// App's user authorization. On GitHub:
//
//	alice   write on acme/app          sees acme/app and its variables
//	carol   read on acme/app           sees acme/app, not its variables
//	bob     read on acme/other         sees acme/other only
//	mallory no role anywhere           sees nothing
type signInFixture struct {
	*dashFixture
	t      *testing.T
	gh     *githubtest.Server
	clock  *testClock
	signIn *SignIn
	srv    *httptest.Server
}

func newSignInFixture(t *testing.T, opts ...func(*Dashboard)) *signInFixture {
	t.Helper()
	f := &signInFixture{dashFixture: newDashFixture(t), t: t, clock: &testClock{}}
	gh := githubtest.New(t, githubtest.WithClock(f.clock.Now))
	gh.AddInstallation(7, "acme")
	gh.AddRepo(7, "acme", "app")
	gh.AddRepo(7, "acme", "other")
	gh.SetPermission("acme", "app", "alice", "write")
	gh.SetPermission("acme", "app", "carol", "read")
	gh.SetPermission("acme", "other", "bob", "read")
	gh.AddUser("mallory")
	f.gh = gh

	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	callback := f.srv.URL + "/auth/callback"
	gh.SetOAuthApp(testClientID, testClientSecret, callback)
	ua, err := githubapp.NewUserAuth(githubapp.UserAuthOptions{ClientID: testClientID, ClientSecret: testClientSecret,
		WebURL: gh.URL(), APIURL: gh.URL(), RedirectURL: callback})
	if err != nil {
		t.Fatal(err)
	}
	f.signIn, err = NewSignIn(SignInOptions{Store: f.store, Flow: ua, GitHub: ua, Revoker: ua, SessionKey: testSessionKey,
		PublicURL: f.srv.URL, Clock: f.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d := *f.dash
	d.Public, d.Guard, d.Identify = false, f.signIn.Require, f.signIn.Identify
	for _, o := range opts {
		o(&d)
	}
	d.Register(mux)
	f.signIn.Register(mux)
	t.Cleanup(func() { gh.AssertNoErrors(t) })
	return f
}

// browser is a cookie jar and two clients on it: one follows redirects
// (through GitHub's pages), one stops at the first answer.
type browser struct {
	f              *signInFixture
	jar            *cookiejar.Jar
	follow, single *http.Client
}

func (f *signInFixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, jar: jar, follow: &http.Client{Jar: jar},
		single: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs login in on GitHub's web pages and in Stagehand, starting
// from the program list.
func (f *signInFixture) signInAs(login string) *browser {
	f.t.Helper()
	f.gh.SignInOnWeb(login)
	b := f.browser()
	status, _, body := b.get("/")
	if status != http.StatusOK || !strings.Contains(body, `<b id="viewer">`+login+`</b>`) {
		f.t.Fatalf("signing in as %s: %d\n%s", login, status, text(body))
	}
	return b
}

// do sends a request with the jar, following redirects or not.
func (b *browser) do(c *http.Client, method, path string, header http.Header) (int, http.Header, string) {
	b.f.t.Helper()
	req, err := http.NewRequest(method, b.f.srv.URL+path, nil)
	if err != nil {
		b.f.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// get follows redirects; first does not.
func (b *browser) get(path string) (int, http.Header, string) {
	return b.do(b.follow, "GET", path, nil)
}
func (b *browser) first(path string) (int, http.Header, string) {
	return b.do(b.single, "GET", path, nil)
}

// cookie is the value of the jar's cookie name for the dashboard.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.f.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// apiPrograms lists the programs the API shows b.
func (b *browser) apiPrograms() []string {
	b.f.t.Helper()
	status, _, body := b.get("/api/v1/programs")
	var out APIPrograms
	if err := json.Unmarshal([]byte(body), &out); err != nil || status != http.StatusOK {
		b.f.t.Fatalf("GET /api/v1/programs: %d %v\n%s", status, err, body)
	}
	names := []string{}
	for _, p := range out.Programs {
		names = append(names, p.FullName)
	}
	return names
}

// calls counts the stand-in's calls that match.
func (f *signInFixture) calls(match func(githubtest.Call) bool) int {
	n := 0
	for _, c := range f.gh.Calls() {
		if match(c) {
			n++
		}
	}
	return n
}

// listingCalls counts the stand-in's listings of an installation's
// repositories for a user.
func (f *signInFixture) listingCalls() int {
	return f.calls(func(c githubtest.Call) bool {
		return c.Operation == "GET /user/installations/{installation_id}/repositories"
	})
}

// tokenCalls counts the calls of GitHub's access_token endpoint.
func (f *signInFixture) tokenCalls() int {
	return f.calls(func(c githubtest.Call) bool { return c.Path == "/login/oauth/access_token" })
}

func TestSignInShowsOnlyReadablePrograms(t *testing.T) {
	f := newSignInFixture(t)
	for _, tt := range []struct {
		login string
		want  []string
	}{
		{"alice", []string{"acme/app"}},
		{"carol", []string{"acme/app"}},
		{"bob", []string{"acme/other"}},
		{"mallory", []string{}},
	} {
		b := f.signInAs(tt.login)
		_, _, page := b.get("/")
		for _, p := range []string{"acme/app", "acme/other"} {
			if shown, want := strings.Contains(text(page), p), slices.Contains(tt.want, p); shown != want {
				t.Errorf("%s's program list shows %s: %v, want %v", tt.login, p, shown, want)
			}
		}
		if diff := cmp.Diff(tt.want, b.apiPrograms()); diff != "" {
			t.Errorf("%s's GET /api/v1/programs (-want +got):\n%s", tt.login, diff)
		}
	}
	_, _, page := f.signInAs("mallory").get("/")
	mustContain(t, "mallory's program list", text(page), "No program whose repository you can read on GitHub")
}

// TestUnreadableProgramIsNotFound: for a person who cannot read acme/app,
// every page and API answer about it, an execution number guessed and a
// log download included, is the 404 of a program that does not exist, word
// for word; the person who can read it gets them.
func TestUnreadableProgramIsNotFound(t *testing.T) {
	f := newSignInFixture(t)
	bob, alice := f.signInAs("bob"), f.signInAs("alice")
	paths := []string{
		"/programs/%s",
		"/programs/%s/environments",
		"/programs/%s/executions/1",
		"/programs/%s/executions/4",
		"/programs/%s/executions/99",
		"/programs/%s/executions/1/logs/build",
		"/programs/%s/environments/production/deployments",
		"/programs/%s/audit",
		"/programs/%s/environments/stage/deployments?cursor=YjEuMQ",
		"/api/v1/programs/%s",
		"/api/v1/programs/%s/environments/production/deployments",
		"/api/v1/programs/%s/environments/stage/deployments?limit=1",
		"/api/v1/programs/%s/executions",
		"/api/v1/programs/%s/executions/1",
		"/api/v1/programs/%s/executions/2",
	}
	for _, p := range paths {
		existing, missing := strings.ReplaceAll(p, "%s", "acme/app"), strings.ReplaceAll(p, "%s", "acme/nope")
		status, h, body := bob.get(existing)
		wantStatus, wantH, wantBody := bob.get(missing)
		if status != http.StatusNotFound || wantStatus != http.StatusNotFound {
			t.Errorf("bob: GET %s %d and GET %s %d, want 404 for both", existing, status, missing, wantStatus)
		}
		if h.Get("Content-Type") != wantH.Get("Content-Type") || strings.ReplaceAll(body, "acme/app", "acme/nope") != wantBody {
			t.Errorf("bob: GET %s tells more than GET %s:\n%s\n---\n%s", existing, missing, text(body), text(wantBody))
		}
		mustNotContain(t, "bob's GET "+existing, body, commitOne, commitFour, "alice", "LOG_LEVEL")
		if status, _, _ := alice.get(existing); status == http.StatusNotFound && !strings.Contains(p, "/99") {
			t.Errorf("alice: GET %s is 404, want it shown", existing)
		}
	}
	// What the 404 names: only the programs bob may read.
	_, _, body := bob.get("/programs/acme/app")
	mustContain(t, "bob's 404", text(body), "Stagehand has no program acme/app that you can read. You see the programs whose repository you can read on GitHub: acme/other.")
}

func TestVariablesOnlyForWriters(t *testing.T) {
	f := newSignInFixture(t)
	type env struct {
		Name            string        `json:"name"`
		Variables       []APIVariable `json:"variables"`
		VariablesHidden bool          `json:"variables_hidden"`
	}
	for _, tt := range []struct {
		login  string
		hidden bool
	}{{"alice", false}, {"carol", true}} {
		b := f.signInAs(tt.login)
		_, _, page := b.get("/programs/acme/app/environments")
		if shown := strings.Contains(page, "eu-west-1"); shown == tt.hidden {
			t.Errorf("%s sees the variables' values on the environments page: %v, want %v", tt.login, shown, !tt.hidden)
		}
		if tt.hidden {
			mustContain(t, tt.login+"'s environments page", text(page), "Shown to people who can write to the repository.")
		}
		var out struct {
			Environments []env `json:"environments"`
		}
		_, _, body := b.get("/api/v1/programs/acme/app")
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Environments {
			if e.VariablesHidden != tt.hidden || (len(e.Variables) == 0) != tt.hidden && e.Name == "stage" {
				t.Errorf("%s: API environment %s: %d variables, hidden %v; want hidden %v", tt.login, e.Name, len(e.Variables), e.VariablesHidden, tt.hidden)
			}
		}
	}
}

func TestSignOutRevokes(t *testing.T) {
	f := newSignInFixture(t)
	b := f.signInAs("alice")
	stolen := b.cookie("stagehand-session")
	if stolen == "" || f.gh.LiveUserTokens("alice") != 1 {
		t.Fatalf("after signing in: cookie %q, %d live tokens of alice on GitHub; want a cookie and one token", stolen, f.gh.LiveUserTokens("alice"))
	}
	// A form on another site cannot sign alice out.
	status, _, _ := b.do(b.single, "POST", "/auth/logout", http.Header{"Origin": {"https://evil.example"}})
	if status != http.StatusForbidden || f.gh.LiveUserTokens("alice") != 1 {
		t.Errorf("sign-out from another site: %d, want 403 and alice still signed in", status)
	}

	status, h, _ := b.do(b.single, "POST", "/auth/logout", http.Header{"Origin": {f.srv.URL}})
	if status != http.StatusSeeOther || h.Get("Location") != "/auth/signed-out" {
		t.Errorf("sign-out: %d to %q, want 303 to /auth/signed-out", status, h.Get("Location"))
	}
	if n := f.gh.LiveUserTokens("alice"); n != 0 {
		t.Errorf("after signing out, GitHub takes %d of alice's tokens, want 0: the token is revoked", n)
	}
	if b.cookie("stagehand-session") != "" {
		t.Error("the session cookie is still in the browser")
	}
	_, _, page := b.get("/auth/signed-out")
	mustContain(t, "signed-out page", text(page), "You are signed out of Stagehand", "Sign in with GitHub")

	// The old cookie signs nobody in: the session is gone on the server.
	replay := f.browser()
	u, _ := url.Parse(f.srv.URL)
	replay.jar.SetCookies(u, []*http.Cookie{{Name: "stagehand-session", Value: stolen}})
	if status, h, _ := replay.first("/programs/acme/app"); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), f.srv.URL+"/auth/login?") {
		t.Errorf("the cookie after sign-out: %d to %q, want to be sent to sign in", status, h.Get("Location"))
	}
	replay.jar.SetCookies(u, []*http.Cookie{{Name: "stagehand-session", Value: stolen}})
	if status, _, _ := replay.first("/api/v1/programs"); status != http.StatusUnauthorized {
		t.Errorf("the API with the cookie after sign-out: %d, want 401", status)
	}
}

func TestExpiredSession(t *testing.T) {
	f := newSignInFixture(t)
	b := f.signInAs("alice")
	f.clock.Advance(SessionLifetime - time.Second)
	if status, _, _ := b.first("/programs/acme/app"); status != http.StatusOK {
		t.Errorf("a second before the session ends: %d, want 200", status)
	}
	f.clock.Advance(time.Second)
	status, h, _ := b.first("/programs/acme/app")
	if status != http.StatusSeeOther || h.Get("Location") != f.srv.URL+"/auth/login?next=%2Fprograms%2Facme%2Fapp" {
		t.Errorf("when the session ends: %d to %q, want to be sent to sign in, back to the page", status, h.Get("Location"))
	}
	if status, _, _ := b.first("/api/v1/programs/acme/app"); status != http.StatusUnauthorized {
		t.Errorf("the API when the session ends: %d, want 401", status)
	}
	var left int
	_ = f.store.Update(t.Context(), func(tx bot.Tx) (err error) {
		left, err = tx.DeleteExpiredSessions(t.Context(), f.clock.Now().Add(time.Hour))
		return err
	})
	if left != 0 {
		t.Errorf("%d sessions left in the store, want the expired one deleted when it was used", left)
	}
}

func TestTamperedCookie(t *testing.T) {
	f := newSignInFixture(t)
	good := f.signInAs("alice").cookie("stagehand-session")
	otherKey, err := newSealer([]byte("another key of 32 bytes or more!"), "dashboard cookies v1")
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 'A' ^ 'B'
	u, _ := url.Parse(f.srv.URL)
	for name, value := range map[string]string{
		"a byte changed":                   string(flipped),
		"cut short":                        good[:len(good)-4],
		"sealed with another key":          otherKey.sealString([]byte("secret"), "stagehand-session"),
		"sealed as the login cookie":       f.signIn.cookies.sealString([]byte("secret"), "stagehand-login"),
		"a session id instead of a secret": sessionID("x"),
		"not base64":                       "%%%",
	} {
		b := f.browser()
		b.jar.SetCookies(u, []*http.Cookie{{Name: "stagehand-session", Value: value}})
		if status, _, _ := b.first("/programs/acme/app"); status != http.StatusSeeOther {
			t.Errorf("%s: GET a page %d, want 303 to sign in", name, status)
		}
		b.jar.SetCookies(u, []*http.Cookie{{Name: "stagehand-session", Value: value}})
		if status, _, _ := b.first("/api/v1/programs/acme/app"); status != http.StatusUnauthorized {
			t.Errorf("%s: GET the API %d, want 401", name, status)
		}
	}
}

// startSignIn opens /auth/login and returns GitHub's authorize URL and
// the state in it.
func (b *browser) startSignIn(next string) (authorize *url.URL, state string) {
	b.f.t.Helper()
	status, h, _ := b.first("/auth/login?next=" + url.QueryEscape(next))
	loc, err := url.Parse(h.Get("Location"))
	if status != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), b.f.gh.URL()+"login/oauth/authorize?") {
		b.f.t.Fatalf("GET /auth/login: %d to %q, want GitHub's authorize page", status, h.Get("Location"))
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("client_id") != testClientID || q.Get("redirect_uri") != b.f.srv.URL+"/auth/callback" {
		b.f.t.Errorf("authorize URL %s: want the client id, the callback, and a PKCE S256 challenge", loc)
	}
	return loc, q.Get("state")
}

// authorizeAt visits GitHub's authorize page and returns the callback path
// it sends the browser to.
func (b *browser) authorizeAt(u *url.URL) string {
	b.f.t.Helper()
	resp, err := b.single.Get(u.String())
	if err != nil {
		b.f.t.Fatal(err)
	}
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || cb.Query().Get("code") == "" {
		b.f.t.Fatalf("authorize page: %s to %q, want the callback with a code", resp.Status, resp.Header.Get("Location"))
	}
	return cb.RequestURI()
}

// TestForgedState: a callback whose state is not the one this browser's
// sign-in sent is refused before its code is used, and signs nobody in.
func TestForgedState(t *testing.T) {
	f := newSignInFixture(t)
	f.gh.SignInOnWeb("mallory")
	attacker := f.browser()
	authz, _ := attacker.startSignIn("/")
	planted := attacker.authorizeAt(authz) // mallory's code, for the victim's browser

	f.gh.SignInOnWeb("alice")
	victim := f.browser()
	victim.startSignIn("/")
	before := f.tokenCalls()
	status, _, body := victim.first(planted)
	if status != http.StatusBadRequest || !strings.Contains(text(body), "does not belong to the sign-in this browser started") {
		t.Errorf("callback with another sign-in's state: %d\n%s", status, text(body))
	}
	if f.tokenCalls() != before {
		t.Error("the forged callback's code was sent to GitHub")
	}
	if victim.cookie("stagehand-session") != "" {
		t.Error("the forged callback signed the victim in")
	}
	// Without the login cookie at all (another browser, or over ten minutes).
	if status, _, _ := f.browser().first(planted); status != http.StatusBadRequest {
		t.Errorf("callback in a browser that started no sign-in: %d, want 400", status)
	}
	_, state := victim.startSignIn("/")
	f.clock.Advance(loginLifetime)
	if status, _, _ := victim.first("/auth/callback?code=x&state=" + state); status != http.StatusBadRequest {
		t.Errorf("callback after ten minutes: %d, want 400", status)
	}
}

// TestReplayedCode: a code seen once (in a log, a Referer) signs nobody in
// again, even in a browser whose own sign-in state it is sent with.
func TestReplayedCode(t *testing.T) {
	f := newSignInFixture(t)
	f.gh.SignInOnWeb("alice")
	b := f.browser()
	authz, _ := b.startSignIn("/")
	cb := b.authorizeAt(authz)
	if status, _, _ := b.first(cb); status != http.StatusSeeOther || b.cookie("stagehand-session") == "" {
		t.Fatalf("the first callback: %d, want alice signed in", status)
	}
	code, _ := url.ParseQuery(strings.SplitN(cb, "?", 2)[1])

	thief := f.browser()
	_, state := thief.startSignIn("/")
	status, _, body := thief.first("/auth/callback?" + url.Values{"code": {code.Get("code")}, "state": {state}}.Encode())
	if status != http.StatusBadRequest || !strings.Contains(text(body), "GitHub refused the sign-in code") {
		t.Errorf("the code again: %d\n%s", status, text(body))
	}
	if thief.cookie("stagehand-session") != "" {
		t.Error("the replayed code signed someone in")
	}
}

// TestOpenRedirect: the return path can only be a path of the dashboard.
func TestOpenRedirect(t *testing.T) {
	f := newSignInFixture(t)
	f.gh.SignInOnWeb("alice")
	for _, tt := range []struct{ next, want string }{
		{"/programs/acme/app?x=1", "/programs/acme/app?x=1"},
		{"/", "/"},
		{"//evil.example/x", "/"},
		{"https://evil.example/", "/"},
		{`/\evil.example`, "/"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"}, // a path here, not a host
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/ok\r\nSet-Cookie: x=y", "/"},
		{"", "/"},
	} {
		b := f.browser()
		authz, _ := b.startSignIn(tt.next)
		status, h, _ := b.first(b.authorizeAt(authz))
		if status != http.StatusSeeOther || h.Get("Location") != tt.want {
			t.Errorf("next %q: %d to %q, want %q", tt.next, status, h.Get("Location"), tt.want)
		}
	}
}

// TestBearerToken: a script reads the API with a GitHub token, which sees
// what the token may read on GitHub.
func TestBearerToken(t *testing.T) {
	f := newSignInFixture(t)
	get := func(token, path string) (int, string) {
		b := f.browser()
		status, _, body := b.do(b.single, "GET", path, http.Header{"Authorization": {"Bearer " + token}})
		return status, body
	}
	alice, bob := f.gh.NewPersonalAccessToken("alice"), f.gh.NewPersonalAccessToken("bob")
	narrowed := f.gh.NewPersonalAccessToken("alice", "acme/other")
	for _, tt := range []struct {
		name, token, path string
		status            int
	}{
		{"alice's token, her program", alice, "/api/v1/programs/acme/app/executions/1", 200},
		{"alice's token, a log", alice, "/programs/acme/app/executions/1/logs/build", 200},
		{"bob's token, alice's program", bob, "/api/v1/programs/acme/app", 404},
		{"bob's token, a log of it", bob, "/programs/acme/app/executions/1/logs/build", 404},
		{"alice's token narrowed to another repository", narrowed, "/api/v1/programs/acme/app", 404},
		{"a token GitHub does not know", "ghp_madeup", "/api/v1/programs", 401},
	} {
		if status, body := get(tt.token, tt.path); status != tt.status {
			t.Errorf("%s: GET %s %d, want %d\n%s", tt.name, tt.path, status, tt.status, body)
		}
	}
	_, body := get(alice, "/api/v1/programs")
	mustContain(t, "alice's token's program list", body, `"full_name": "acme/app"`)
	mustNotContain(t, "alice's token's program list", body, "acme/other")

	b := f.browser()
	status, h, body := b.first("/api/v1/programs")
	if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="stagehand"` || !strings.Contains(body, "Authorization: Bearer") {
		t.Errorf("the API without a token: %d %q\n%s", status, h.Get("WWW-Authenticate"), body)
	}
}

// TestAccessIsAskedOncePerTTL: one listing per installation and minute;
// a role taken away on GitHub shows within it.
func TestAccessIsAskedOncePerTTL(t *testing.T) {
	f := newSignInFixture(t)
	b := f.signInAs("alice")
	before := f.listingCalls()
	for _, p := range []string{"/", "/programs/acme/app", "/programs/acme/app/executions/1", "/api/v1/programs/acme/app"} {
		if status, _, _ := b.get(p); status != http.StatusOK {
			t.Errorf("GET %s: %d", p, status)
		}
	}
	if n := f.listingCalls() - before; n != 0 {
		t.Errorf("%d listings within the minute after signing in, want 0 (cached)", n)
	}
	f.gh.SetPermission("acme", "app", "alice", "none")
	f.clock.Advance(DefaultAccessTTL)
	if status, _, _ := b.get("/programs/acme/app"); status != http.StatusNotFound {
		t.Errorf("a minute after alice lost acme/app on GitHub: %d, want 404", status)
	}
	if n := f.listingCalls() - before; n != 1 {
		t.Errorf("%d listings after the minute, want 1", n)
	}
}

// TestTokenRefreshAndRevocation: a user access token that expires (eight
// hours) is renewed with the refresh token; one the person revoked on
// GitHub ends the session.
func TestTokenRefreshAndRevocation(t *testing.T) {
	f := newSignInFixture(t)
	b := f.signInAs("alice")
	f.clock.Advance(8 * time.Hour)
	if status, _, _ := b.get("/programs/acme/app"); status != http.StatusOK {
		t.Errorf("after eight hours: %d, want 200 with a renewed token", status)
	}
	refreshes := f.calls(func(c githubtest.Call) bool {
		return c.Path == "/login/oauth/access_token" && strings.Contains(string(c.Body), "grant_type=refresh_token")
	})
	if refreshes != 1 || f.gh.LiveUserTokens("alice") != 1 {
		t.Errorf("%d refreshes, %d live tokens; want one refresh, one live token", refreshes, f.gh.LiveUserTokens("alice"))
	}

	f.gh.RevokeUserTokens("alice") // alice takes back the App's authorization
	f.clock.Advance(DefaultAccessTTL)
	status, _, body := b.first("/programs/acme/app")
	if status != http.StatusUnauthorized || !strings.Contains(text(body), "sign in again") {
		t.Errorf("after alice revoked the App on GitHub: %d\n%s", status, text(body))
	}
	if status, _, _ := b.first("/programs/acme/app"); status != http.StatusSeeOther {
		t.Errorf("then: %d, want 303 to sign in (the session ended)", status)
	}
}

func TestSignInCookies(t *testing.T) {
	f := newSignInFixture(t)
	f.gh.SignInOnWeb("alice")
	b := f.browser()
	authz, _ := b.startSignIn("/")
	resp, err := b.single.Get(f.srv.URL + b.authorizeAt(authz))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "stagehand-session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.Secure || session.SameSite != http.SameSiteLaxMode || session.Path != "/" ||
		session.MaxAge != int(SessionLifetime/time.Second) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, for the session's lifetime, not Secure on http", session)
	}
	// The session in the store holds no token in clear, under the hash of
	// the cookie's secret.
	secret, err := f.signIn.cookies.openString(session.Value, "stagehand-session")
	if err != nil {
		t.Fatal(err)
	}
	var sess bot.Session
	_ = f.store.View(t.Context(), func(tx bot.Tx) (err error) {
		sess, err = tx.Session(t.Context(), sessionID(string(secret)))
		return err
	})
	if sess.Login != "alice" || strings.Contains(string(sess.Tokens), "ghu_") || strings.Contains(string(sess.Tokens), "ghr_") {
		t.Errorf("stored session %q with tokens %q: want alice's, sealed", sess.Login, sess.Tokens)
	}

	// On https the cookies are Secure and __Host-.
	secure, err := NewSignIn(SignInOptions{Store: f.store, Flow: f.signIn.flow, GitHub: f.signIn.github, Revoker: f.signIn.revoker,
		SessionKey: testSessionKey, PublicURL: "https://stagehand.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	secure.serveLogin(rec, httptest.NewRequest("GET", "/auth/login", nil))
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != "__Host-stagehand-login" || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode {
		t.Errorf("https login cookie %+v: want __Host-stagehand-login, Secure, HttpOnly, SameSite=Lax", c)
	}
	if secure.CallbackURL() != "https://stagehand.example.com/auth/callback" {
		t.Errorf("CallbackURL = %q", secure.CallbackURL())
	}
	if _, err := NewSignIn(SignInOptions{Store: f.store, Flow: f.signIn.flow, GitHub: f.signIn.github, Revoker: f.signIn.revoker,
		SessionKey: []byte("short"), PublicURL: f.srv.URL}); err == nil {
		t.Error("NewSignIn with a 5-byte session key: no error")
	}
}

// TestDashboardWithoutViewerShowsNothing: a dashboard that is not public
// and has no Guard (a wiring mistake) fails closed.
func TestDashboardWithoutViewerShowsNothing(t *testing.T) {
	f := newDashFixture(t)
	d := *f.dash
	d.Public = false
	mux := http.NewServeMux()
	d.Register(mux)
	for _, path := range []string{"/programs/acme/app", "/api/v1/programs/acme/app/executions/1"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/programs", nil))
	mustNotContain(t, "GET /api/v1/programs", rec.Body.String(), "acme")
}

// BenchmarkAccessCacheHit is the cost of a permission check answered from
// the access cache (every page asks once per program it shows).
func BenchmarkAccessCacheHit(b *testing.B) {
	s := &SignIn{clock: bot.SystemClock{}, cache: newAccessCache(time.Hour, maxAccessEntries)}
	v := &viewer{login: "alice", key: "session:x", signIn: s}
	p := bot.Program{ID: 1, InstallationID: 7, GitHubID: 42, Owner: "acme", Repo: "app"}
	repos := map[string]Permission{}
	for i := range 500 {
		repos["id:"+string(rune('0'+i%10))+time.Duration(i).String()] = ReadAccess
	}
	repos["id:42"] = WriteAccess
	s.cache.put(accessKey{v.key, "installation:7"}, accessEntry{at: time.Now(), repos: repos})
	b.ReportAllocs()
	for b.Loop() {
		if perm, err := v.permission(b.Context(), p); perm != WriteAccess || err != nil {
			b.Fatal(perm, err)
		}
	}
}
