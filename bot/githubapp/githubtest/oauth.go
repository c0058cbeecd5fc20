package githubtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The App's user authorization, as GitHub serves it (written from
// docs.github.com, "Generating a user access token for a GitHub App" and
// "Refreshing user access tokens"; these web endpoints are not in the REST
// description, so nothing checks them against a schema):
//
//   - GET  login/oauth/authorize: the web page a person is sent to. GitHub
//     asks a person who has not authorized the App yet; the stand-in
//     authorizes at once whoever its web pages see signed in (SignInOnWeb,
//     or the login hint) and redirects to the callback with a code and the
//     state. Nobody signed in: GitHub's sign-in page.
//   - POST login/oauth/access_token: the code (once, within ten minutes,
//     with the PKCE verifier when a challenge was sent) or a refresh token
//     (once) for a user access token (ghu_, eight hours) and a refresh token
//     (ghr_, six months). Like GitHub it answers errors with status 200 and
//     an "error" field; form-encoded unless the request accepts JSON.
//   - DELETE applications/{client_id}/token: revokes one token (basic
//     authentication with the client id and secret).

type oauthApp struct {
	clientID string
	secret   string
	callback *url.URL
}

type authCode struct {
	login, clientID, redirectURI, challenge string
	expires                                 time.Time
	used                                    bool
}

// userToken is a user access token of the App (ghu_), or a personal access
// token (ghp_, clientID empty) that sees the repositories in repos (nil:
// every repository its user sees).
type userToken struct {
	login    string
	clientID string
	expires  time.Time // zero: does not expire (personal access tokens)
	refresh  string    // the refresh token issued with it
	repos    map[string]bool
}

type refreshToken struct {
	login, clientID string
	expires         time.Time
	used            bool
}

// GitHub's lifetimes of what the web flow hands out.
const (
	codeTTL         = 10 * time.Minute
	refreshTokenTTL = 15897600 * time.Second // six months
)

// SetOAuthApp gives the App its client id and secret (its settings page's
// "Client ID" and "Client secrets") and its callback URL: the authorize page
// redirects only to that URL or a path under it, on the same host and port.
func (s *Server) SetOAuthApp(clientID, clientSecret, callbackURL string) {
	u, err := url.Parse(callbackURL)
	if err != nil || u.Host == "" {
		panic(fmt.Sprintf("githubtest: SetOAuthApp: callback URL %q is not absolute", callbackURL))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthApps[clientID] = &oauthApp{clientID: clientID, secret: clientSecret, callback: u}
}

// AddUser makes login a known GitHub user, with no role on any repository.
func (s *Server) AddUser(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(login)] = login
}

// SignInOnWeb makes the stand-in's web pages see login signed in, as a
// browser that has a GitHub session: the authorize page then authorizes at
// once. "" signs out: the authorize page shows GitHub's sign-in page. The
// user must be known (AddUser, SetPermission).
func (s *Server) SignInOnWeb(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[strings.ToLower(login)]; login != "" && !ok {
		panic(fmt.Sprintf("githubtest: SignInOnWeb(%q) before AddUser", login))
	}
	s.webUser = login
}

// NewPersonalAccessToken issues a personal access token (ghp_) of a known
// user. Without repos it sees what the user sees (a classic token with the
// repo scope); with repos ("owner/repo") only those, as a fine-grained token
// given a few repositories.
func (s *Server) NewPersonalAccessToken(login string, repos ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.users[strings.ToLower(login)]
	if !ok {
		panic(fmt.Sprintf("githubtest: NewPersonalAccessToken(%q) before AddUser", login))
	}
	tok := &userToken{login: name}
	if len(repos) > 0 {
		tok.repos = map[string]bool{}
		for _, r := range repos {
			tok.repos[strings.ToLower(r)] = true
		}
	}
	value := "ghp_" + randomChars(36)
	s.userTokens[value] = tok
	return value
}

// UserTokenLive reports whether a user access token or personal access
// token would be accepted now (issued, not revoked, not expired).
func (s *Server) UserTokenLive(value string) bool {
	return s.liveUserToken(value) != nil
}

// LiveUserTokens counts the user access tokens of the App that login holds
// and GitHub would accept now.
func (s *Server) LiveUserTokens(login string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, tok := range s.userTokens {
		if tok.clientID != "" && strings.EqualFold(tok.login, login) && s.now().Before(tok.expires) {
			n++
		}
	}
	return n
}

// RevokeUserTokens revokes every user access token and refresh token login
// holds, as when the person takes back the App's authorization in their
// GitHub settings.
func (s *Server) RevokeUserTokens(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for value, tok := range s.userTokens {
		if tok.clientID != "" && strings.EqualFold(tok.login, login) {
			delete(s.userTokens, value)
		}
	}
	for value, rt := range s.refreshTokens {
		if strings.EqualFold(rt.login, login) {
			delete(s.refreshTokens, value)
		}
	}
}

func (s *Server) liveUserToken(value string) *userToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.userTokens[value]
	if tok == nil || (!tok.expires.IsZero() && !s.now().Before(tok.expires)) {
		return nil
	}
	return tok
}

// userAuth checks that r carries a live user access token or personal
// access token ("token X" or "Bearer X").
func (s *Server) userAuth(r *http.Request) (*userToken, *response) {
	return liveOr401(r, s.liveUserToken)
}

// webPage is an HTML page of the stand-in's web side.
func webPage(status int, title, text string) response {
	h := http.Header{}
	h.Set("Content-Type", "text/html; charset=utf-8")
	body := fmt.Sprintf("<!doctype html><html><head><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
	return response{status: status, header: h, raw: []byte(body), unchecked: true}
}

// redirect sends the browser to u with the query q added.
func redirect(u *url.URL, q url.Values) response {
	to := *u
	v := to.Query()
	for k, vs := range q {
		v[k] = vs
	}
	to.RawQuery = v.Encode()
	h := http.Header{}
	h.Set("Location", to.String())
	return response{status: http.StatusFound, header: h, unchecked: true}
}

// callbackFor is where the authorize page may send the browser back to:
// redirectURI when given (the callback's host and port, a path under its
// path), the callback otherwise.
func callbackFor(app *oauthApp, redirectURI string) (*url.URL, bool) {
	if redirectURI == "" {
		return app.callback, true
	}
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme != app.callback.Scheme || u.Host != app.callback.Host {
		return nil, false
	}
	base := strings.TrimSuffix(app.callback.Path, "/")
	if u.Path != app.callback.Path && !strings.HasPrefix(u.Path, base+"/") {
		return nil, false
	}
	return u, true
}

func (s *Server) authorize(req *request) response {
	q := req.URL.Query()
	s.mu.Lock()
	app := s.oauthApps[q.Get("client_id")]
	web := s.webUser
	if hint := q.Get("login"); hint != "" {
		if login, ok := s.users[strings.ToLower(hint)]; ok {
			web = login
		}
	}
	s.mu.Unlock()
	if app == nil {
		return webPage(http.StatusNotFound, "Not Found", "No GitHub App has the client id "+q.Get("client_id")+".")
	}
	back, ok := callbackFor(app, q.Get("redirect_uri"))
	if !ok {
		return redirect(app.callback, url.Values{"error": {"redirect_uri_mismatch"},
			"error_description": {"The redirect_uri MUST match the registered callback URL for this application."},
			"state":             {q.Get("state")}})
	}
	if method := q.Get("code_challenge_method"); q.Get("code_challenge") != "" && method != "S256" {
		return webPage(http.StatusBadRequest, "Bad request", "code_challenge_method must be S256, got "+strconv.Quote(method)+".")
	}
	if web == "" {
		return webPage(http.StatusOK, "Sign in to GitHub", "to continue to the GitHub App "+app.clientID+".")
	}
	code := strings.ToLower(randomChars(20))
	s.mu.Lock()
	s.codes[code] = &authCode{login: web, clientID: app.clientID, redirectURI: q.Get("redirect_uri"),
		challenge: q.Get("code_challenge"), expires: s.now().Add(codeTTL)}
	s.mu.Unlock()
	return redirect(back, url.Values{"code": {code}, "state": {q.Get("state")}})
}

// tokenAnswer is the access_token endpoint's answer: JSON when the request
// accepts it, a form otherwise, status 200 either way.
func tokenAnswer(r *http.Request, fields url.Values) response {
	h := http.Header{}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]any{}
		for k := range fields {
			v := fields.Get(k)
			if n, err := strconv.Atoi(v); err == nil && strings.HasSuffix(k, "expires_in") {
				m[k] = n
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		h.Set("Content-Type", "application/json; charset=utf-8")
		return response{status: http.StatusOK, header: h, raw: b, unchecked: true}
	}
	h.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return response{status: http.StatusOK, header: h, raw: []byte(fields.Encode()), unchecked: true}
}

func tokenError(r *http.Request, code, description string) response {
	return tokenAnswer(r, url.Values{"error": {code}, "error_description": {description},
		"error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"}})
}

func (s *Server) accessToken(req *request) response {
	r := req.Request
	form, err := url.ParseQuery(string(req.body))
	if err != nil {
		return webPage(http.StatusBadRequest, "Bad request", "the body is not a form: "+err.Error())
	}
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if id, sec, ok := r.BasicAuth(); ok {
		clientID, secret = id, sec
	}
	s.mu.Lock()
	app := s.oauthApps[clientID]
	s.mu.Unlock()
	if app == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(app.secret)) != 1 {
		return tokenError(r, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
	}
	switch form.Get("grant_type") {
	case "", "authorization_code":
		return s.exchangeCode(r, app, form)
	case "refresh_token":
		return s.refreshGrant(r, app, form.Get("refresh_token"))
	}
	return tokenError(r, "unsupported_grant_type", "The grant type "+form.Get("grant_type")+" is not supported.")
}

func (s *Server) exchangeCode(r *http.Request, app *oauthApp, form url.Values) response {
	s.mu.Lock()
	c := s.codes[form.Get("code")]
	valid := c != nil && !c.used && s.now().Before(c.expires) && c.clientID == app.clientID
	if valid {
		c.used = true // one attempt, right or wrong
	}
	s.mu.Unlock()
	if !valid {
		return tokenError(r, "bad_verification_code", "The code passed is incorrect or expired.")
	}
	if c.redirectURI != "" && form.Get("redirect_uri") != c.redirectURI {
		return tokenError(r, "redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
	}
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			return tokenError(r, "bad_verification_code", "The code_verifier does not match the code_challenge.")
		}
	}
	return s.issueUserToken(r, app, c.login)
}

func (s *Server) refreshGrant(r *http.Request, app *oauthApp, value string) response {
	s.mu.Lock()
	rt := s.refreshTokens[value]
	valid := rt != nil && !rt.used && s.now().Before(rt.expires) && rt.clientID == app.clientID
	if valid {
		rt.used = true
	}
	s.mu.Unlock()
	if !valid {
		return tokenError(r, "bad_refresh_token", "The refresh token passed is incorrect or expired.")
	}
	return s.issueUserToken(r, app, rt.login)
}

func (s *Server) issueUserToken(r *http.Request, app *oauthApp, login string) response {
	access, refresh := "ghu_"+randomChars(36), "ghr_"+randomChars(76)
	now := s.now()
	s.mu.Lock()
	s.userTokens[access] = &userToken{login: login, clientID: app.clientID, expires: now.Add(s.userTokenTTL), refresh: refresh}
	s.refreshTokens[refresh] = &refreshToken{login: login, clientID: app.clientID, expires: now.Add(refreshTokenTTL)}
	ttl := s.userTokenTTL
	s.mu.Unlock()
	return tokenAnswer(r, url.Values{
		"access_token": {access}, "token_type": {"bearer"}, "scope": {""},
		"expires_in":               {strconv.Itoa(int(ttl / time.Second))},
		"refresh_token":            {refresh},
		"refresh_token_expires_in": {strconv.Itoa(int(refreshTokenTTL / time.Second))},
	})
}

// revokeUserToken is DELETE /applications/{client_id}/token: the App, by
// its client id and secret, revokes one of its user access tokens (and the
// refresh token issued with it).
func (s *Server) revokeUserToken(req *request) response {
	id, secret, ok := req.BasicAuth()
	s.mu.Lock()
	app := s.oauthApps[req.params["client_id"]]
	s.mu.Unlock()
	if !ok || app == nil || id != app.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(app.secret)) != 1 {
		return badCredentials("Requires authentication")
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil || body.AccessToken == "" {
		return response{status: http.StatusUnprocessableEntity, unchecked: true,
			body: map[string]any{"message": "Invalid request.\n\n\"access_token\" wasn't supplied.", "documentation_url": req.op.docURL}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.userTokens[body.AccessToken]
	if tok == nil || tok.clientID != app.clientID {
		return response{status: http.StatusUnprocessableEntity, unchecked: true,
			body: map[string]any{"message": "Validation Failed", "documentation_url": req.op.docURL}}
	}
	delete(s.userTokens, body.AccessToken)
	delete(s.refreshTokens, tok.refresh)
	return response{status: http.StatusNoContent, unchecked: true}
}

// oauthRoutes are the web flow's endpoints and the revocation endpoint, for
// outsideSubsetRoutes.
var oauthRoutes = map[string]handler{
	// https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
	"GET /login/oauth/authorize":     (*Server).authorize,
	"POST /login/oauth/access_token": (*Server).accessToken,
	// https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token
	"DELETE /applications/{client_id}/token": (*Server).revokeUserToken,
	// A browser showing the authorize page asks for it.
	"GET /favicon.ico": func(*Server, *request) response { return webPage(http.StatusNotFound, "Not Found", "No icon here.") },
}

// readRoles are the roles that may read a repository.
var readRoles = []string{"read", "triage", "write", "maintain", "admin"}

// repoPermissions is the "permissions" object GitHub shows a user for role.
func repoPermissions(role string) map[string]bool {
	rank := slices.Index(readRoles, role)
	return map[string]bool{
		"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3, "admin": rank >= 4,
	}
}
