package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// Sign-in with GitHub (SPEC §7, a dashboard visitor): the App's own user
// authorization, GitHub's web flow with state and PKCE. The browser gets a
// cookie holding a random secret, sealed (AES-GCM: encrypted and
// authenticated) with a key derived from the session key; the store keeps
// the session under the secret's SHA-256, with the person's GitHub tokens
// sealed under another derived key. Tokens never reach the browser.

// GitHubSignIn is GitHub's web flow (githubapp.UserAuth).
type GitHubSignIn interface {
	AuthCodeURL(state, verifier string) string
	Exchange(ctx context.Context, code, verifier string) (githubapp.UserToken, error)
	Refresh(ctx context.Context, refreshToken string) (githubapp.UserToken, error)
}

// GitHubUser is what Stagehand asks GitHub with a person's token
// (githubapp.UserAuth).
type GitHubUser interface {
	User(ctx context.Context, token string) (githubapp.User, error)
	InstallationRepos(ctx context.Context, token string, installationID int64) ([]githubapp.RepoAccess, error)
	Repo(ctx context.Context, token, owner, repo string) (githubapp.RepoAccess, bool, error)
}

// TokenRevoker makes GitHub forget a user access token (githubapp.UserAuth).
type TokenRevoker interface {
	Revoke(ctx context.Context, accessToken string) error
}

// Lifetimes.
const (
	// SessionLifetime ends a sign-in whatever happens on GitHub.
	SessionLifetime = 12 * time.Hour
	// DefaultAccessTTL is how long what GitHub said a person may read is
	// believed: a repository taken from them stops showing within it.
	DefaultAccessTTL = time.Minute
	// loginLifetime bounds a sign-in from the click to the callback
	// (GitHub's codes live ten minutes too).
	loginLifetime = 10 * time.Minute
	// refreshMargin renews a user access token this long before it expires.
	refreshMargin = time.Minute
)

// SignInOptions configure NewSignIn.
type SignInOptions struct {
	Store   bot.Transactor
	Flow    GitHubSignIn
	GitHub  GitHubUser
	Revoker TokenRevoker
	// SessionKey seals cookies and stored tokens: at least
	// MinSessionKeyBytes random bytes, the same on every replica. A new key
	// signs everybody out.
	SessionKey []byte
	// PublicURL is where people reach the dashboard (--public-url): sign-in
	// starts and ends there, and its https makes the cookies Secure.
	PublicURL string
	// AccessTTL: DefaultAccessTTL when 0.
	AccessTTL time.Duration
	Clock     bot.Clock    // nil: the system clock
	Logger    *slog.Logger // nil: discard
}

// SignIn signs dashboard visitors in with GitHub and decides, for each
// request, who it comes from (Require) and what they may read.
type SignIn struct {
	store   bot.Transactor
	flow    GitHubSignIn
	github  GitHubUser
	revoker TokenRevoker
	cookies sealer // session and login cookies
	tokens  sealer // the GitHub tokens in the store
	public  *url.URL
	secure  bool
	clock   bot.Clock
	logger  *slog.Logger
	cache   *accessCache

	sessionCookie, loginCookie string

	refreshMu sync.Mutex // one token refresh at a time in this process
}

// NewSignIn checks the options.
func NewSignIn(o SignInOptions) (*SignIn, error) {
	if o.Store == nil || o.Flow == nil || o.GitHub == nil || o.Revoker == nil {
		return nil, errors.New("sign-in: the store and the GitHub flow, user and revoker are all needed")
	}
	cookies, err := newSealer(o.SessionKey, "dashboard cookies v1")
	if err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	tokens, err := newSealer(o.SessionKey, "dashboard tokens v1")
	if err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	public, err := url.Parse(strings.TrimRight(o.PublicURL, "/"))
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Host == "" {
		return nil, fmt.Errorf("sign-in: the public URL %q is not an http(s) URL", o.PublicURL)
	}
	s := &SignIn{store: o.Store, flow: o.Flow, github: o.GitHub, revoker: o.Revoker, cookies: cookies, tokens: tokens,
		public: public, secure: public.Scheme == "https", clock: o.Clock, logger: o.Logger,
		cache:         newAccessCache(cmpDuration(o.AccessTTL, DefaultAccessTTL), maxAccessEntries),
		sessionCookie: "stagehand-session", loginCookie: "stagehand-login"}
	if s.clock == nil {
		s.clock = bot.SystemClock{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.secure {
		// __Host-: the browser keeps it only when Secure, for this host,
		// on every path; no other site of the domain can set it.
		s.sessionCookie, s.loginCookie = "__Host-"+s.sessionCookie, "__Host-"+s.loginCookie
	}
	return s, nil
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// CallbackURL is the App's callback URL: <public-url>/auth/callback.
func (s *SignIn) CallbackURL() string { return s.public.String() + "/auth/callback" }

// Routes are the sign-in pages.
func (s *SignIn) Routes() []Route {
	h := func(f http.HandlerFunc) http.Handler { return f }
	return []Route{
		{"GET /auth/login", h(s.serveLogin)},
		{"GET /auth/callback", h(s.serveCallback)},
		{"POST /auth/logout", h(s.serveLogout)},
		{"GET /auth/signed-out", h(s.serveSignedOut)},
	}
}

// Register adds the sign-in pages to mux.
func (s *SignIn) Register(mux *http.ServeMux) { register(mux, s.Routes()) }

// loginURL is where a visitor signs in, coming back to next.
func (s *SignIn) loginURL(next string) string {
	return s.public.String() + "/auth/login?" + url.Values{"next": {next}}.Encode()
}

// safeNext is next when it is a path of this server, "/" otherwise: the
// return path cannot send the browser to another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\x00\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return next
}

// loginState is what the login cookie carries from the click to the
// callback.
type loginState struct {
	State    string    `json:"state"`
	Verifier string    `json:"verifier"`
	Next     string    `json:"next"`
	Expires  time.Time `json:"expires"`
}

// setCookie sets a cookie for life; 0 deletes it.
func (s *SignIn) setCookie(w http.ResponseWriter, name, value string, life time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(life / time.Second)}
	if c.MaxAge <= 0 {
		c.MaxAge = -1 // delete
	}
	http.SetCookie(w, c)
}

// serveLogin starts a sign-in: a fresh state and PKCE verifier in the
// login cookie, then GitHub's authorize page.
func (s *SignIn) serveLogin(w http.ResponseWriter, r *http.Request) {
	st := loginState{State: randomString(32), Verifier: githubapp.NewVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Expires: s.clock.Now().Add(loginLifetime)}
	b, _ := json.Marshal(st)
	s.setCookie(w, s.loginCookie, s.cookies.sealString(b, s.loginCookie), loginLifetime)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, s.flow.AuthCodeURL(st.State, st.Verifier), http.StatusFound)
}

// signInFailed is a failed sign-in: the page says why and offers to start
// again.
func (s *SignIn) signInFailed(w http.ResponseWriter, r *http.Request, status int, why string) {
	s.setCookie(w, s.loginCookie, "", 0)
	s.renderSignIn(w, r, status, signInBody{Heading: "Sign-in failed", Message: why, SignIn: s.loginURL("/")})
}

// serveCallback finishes a sign-in: the state must be this browser's, the
// code is traded (once, with the verifier) for the person's tokens, and a
// session starts.
func (s *SignIn) serveCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.clock.Now()
	var st loginState
	c, err := r.Cookie(s.loginCookie)
	if err == nil {
		var b []byte
		if b, err = s.cookies.openString(c.Value, s.loginCookie); err == nil {
			err = json.Unmarshal(b, &st)
		}
	}
	q := r.URL.Query()
	switch {
	case err != nil || !now.Before(st.Expires):
		s.signInFailed(w, r, http.StatusBadRequest, "This sign-in was not started in this browser, or took longer than 10 minutes. Sign in again.")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1:
		s.logger.WarnContext(ctx, "sign-in refused: the state does not match this browser's", "remote", r.RemoteAddr)
		s.signInFailed(w, r, http.StatusBadRequest, "The link back from GitHub does not belong to the sign-in this browser started (its state differs). Sign in again.")
		return
	case q.Get("error") != "":
		s.signInFailed(w, r, http.StatusForbidden, fmt.Sprintf("GitHub did not authorize Stagehand (%s: %s).", q.Get("error"), q.Get("error_description")))
		return
	}
	tok, err := s.flow.Exchange(ctx, q.Get("code"), st.Verifier)
	if errors.Is(err, githubapp.ErrTokenRefused) {
		s.logger.WarnContext(ctx, "sign-in refused: GitHub refused the code", bot.LogError, err)
		s.signInFailed(w, r, http.StatusBadRequest, "GitHub refused the sign-in code: it was used already or has expired. Sign in again.")
		return
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "sign-in failed", bot.LogError, err)
		s.signInFailed(w, r, http.StatusBadGateway, "Stagehand could not finish the sign-in with GitHub; the error is in the server's log.")
		return
	}
	user, err := s.github.User(ctx, tok.AccessToken)
	if err != nil {
		s.logger.ErrorContext(ctx, "sign-in failed: asking GitHub who signed in", bot.LogError, err)
		s.signInFailed(w, r, http.StatusBadGateway, "Stagehand could not ask GitHub who signed in; the error is in the server's log.")
		return
	}
	secret := randomString(32)
	sess := bot.Session{ID: sessionID(secret), UserID: user.ID, Login: user.Login, CreatedAt: now, ExpiresAt: now.Add(SessionLifetime)}
	sess.Tokens = s.sealTokens(sess.ID, tokensOf(tok, now))
	err = s.updateSessions(ctx, func(tx bot.SessionTx) error {
		if _, err := tx.DeleteExpiredSessions(ctx, now); err != nil {
			return err
		}
		return tx.PutSession(ctx, sess)
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "sign-in failed: storing the session", bot.LogError, err)
		s.signInFailed(w, r, http.StatusInternalServerError, "Stagehand could not store the session; the error is in the server's log.")
		return
	}
	s.logger.InfoContext(ctx, "signed in to the dashboard", "login", user.Login)
	s.setCookie(w, s.loginCookie, "", 0)
	s.setCookie(w, s.sessionCookie, s.cookies.sealString([]byte(secret), s.sessionCookie), SessionLifetime)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

// sessionID is the store's name for the session whose cookie holds secret.
func sessionID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// sessionTokens are a session's GitHub tokens, sealed in the store.
type sessionTokens struct {
	Access        string    `json:"access"`
	Refresh       string    `json:"refresh,omitempty"`
	AccessExpiry  time.Time `json:"access_expiry,omitzero"` // zero: does not expire
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
}

func tokensOf(t githubapp.UserToken, now time.Time) sessionTokens {
	st := sessionTokens{Access: t.AccessToken, Refresh: t.RefreshToken}
	if t.ExpiresIn > 0 {
		st.AccessExpiry = now.Add(t.ExpiresIn)
	}
	if t.RefreshExpiresIn > 0 {
		st.RefreshExpiry = now.Add(t.RefreshExpiresIn)
	}
	return st
}

func (s *SignIn) sealTokens(id string, t sessionTokens) []byte {
	b, _ := json.Marshal(t)
	return s.tokens.seal(b, []byte(id))
}

func (s *SignIn) openTokens(sess bot.Session) (sessionTokens, error) {
	var t sessionTokens
	b, err := s.tokens.open(sess.Tokens, []byte(sess.ID))
	if err != nil {
		return t, err
	}
	return t, json.Unmarshal(b, &t)
}

// serveLogout signs out: GitHub revokes the token, the session is deleted
// (a copy of the cookie no longer signs anyone in) and the cookie cleared.
func (s *SignIn) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.public.Scheme+"://"+s.public.Host {
		http.Error(w, "Stagehand signs out only from its own pages (Origin "+origin+").", http.StatusForbidden)
		return
	}
	if id, ok := s.cookieSession(r); ok {
		var sess bot.Session
		err := s.viewSessions(ctx, func(tx bot.SessionTx) (err error) {
			sess, err = tx.Session(ctx, id)
			return err
		})
		if err == nil {
			if t, err := s.openTokens(sess); err == nil {
				if err := s.revoker.Revoke(ctx, t.Access); err != nil {
					s.logger.WarnContext(ctx, "signing out: GitHub did not revoke the token; it ends when it expires", "login", sess.Login, bot.LogError, err)
				}
			}
			s.logger.InfoContext(ctx, "signed out of the dashboard", "login", sess.Login)
		}
		s.endSession(ctx, id)
	}
	s.setCookie(w, s.sessionCookie, "", 0)
	http.Redirect(w, r, "/auth/signed-out", http.StatusSeeOther)
}

// endSession deletes a session and forgets what it could read.
func (s *SignIn) endSession(ctx context.Context, id string) {
	s.cache.forget(sessionKey(id))
	if err := s.updateSessions(ctx, func(tx bot.SessionTx) error { return tx.DeleteSession(ctx, id) }); err != nil {
		s.logger.ErrorContext(ctx, "deleting a dashboard session", bot.LogError, err)
	}
}

func (s *SignIn) serveSignedOut(w http.ResponseWriter, r *http.Request) {
	s.renderSignIn(w, r, http.StatusOK, signInBody{Heading: "Signed out",
		Message: "You are signed out of Stagehand, and Stagehand gave back its GitHub token for you. You are still signed in to GitHub itself.",
		SignIn:  s.loginURL("/")})
}

// cookieSession is the id of the session the request's cookie names.
func (s *SignIn) cookieSession(r *http.Request) (string, bool) {
	c, err := r.Cookie(s.sessionCookie)
	if err != nil {
		return "", false
	}
	secret, err := s.cookies.openString(c.Value, s.sessionCookie)
	if err != nil {
		return "", false
	}
	return sessionID(string(secret)), true
}

// Require serves next only to a request from someone signed in (a session
// cookie) or a script with a GitHub token (Authorization: Bearer), and puts
// who it is in the request's context for the dashboard's checks. Others are
// sent to sign in (pages) or get 401 (the API).
func (s *SignIn) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := s.viewerOf(r)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "identifying a dashboard visitor", bot.LogError, err)
			status, msg := http.StatusServiceUnavailable, "Stagehand could not check your sign-in with GitHub; try again in a minute."
			if isAPI(r) {
				writeJSON(w, status, APIError{Error: msg})
			} else {
				http.Error(w, msg, status)
			}
			return
		}
		if v == nil {
			s.unauthenticated(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	})
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func (s *SignIn) unauthenticated(w http.ResponseWriter, r *http.Request) {
	s.setCookie(w, s.sessionCookie, "", 0)
	if isAPI(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stagehand"`)
		writeJSON(w, http.StatusUnauthorized, APIError{Error: "sign in with GitHub at " + s.loginURL("/") +
			", or send a GitHub token that can read the repositories: Authorization: Bearer <token>"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.loginURL(r.URL.RequestURI()), http.StatusSeeOther)
}

// viewerOf is who r comes from: nil when nobody GitHub vouches for.
func (s *SignIn) viewerOf(r *http.Request) (*viewer, error) {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
		return s.bearerViewer(r.Context(), strings.TrimSpace(token))
	}
	id, ok := s.cookieSession(r)
	if !ok {
		return nil, nil
	}
	return s.sessionViewer(r.Context(), id)
}

// bearerViewer is the person a GitHub token belongs to (asked once per
// AccessTTL); nil when GitHub refuses the token.
func (s *SignIn) bearerViewer(ctx context.Context, token string) (*viewer, error) {
	if token == "" {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(token))
	v := &viewer{key: "token:" + hex.EncodeToString(sum[:]), token: token, bearer: true, signIn: s}
	now := s.clock.Now()
	if e, ok := s.cache.get(accessKey{v.key, "user"}, now); ok {
		v.login = e.login
		return v, nil
	}
	u, err := s.github.User(ctx, token)
	if errors.Is(err, githubapp.ErrTokenRefused) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v.login = u.Login
	s.cache.put(accessKey{v.key, "user"}, accessEntry{at: now, login: u.Login})
	return v, nil
}

// sessionViewer is the person session id belongs to, with a live GitHub
// token (refreshed when it is about to expire); nil when the session is
// gone, expired, or GitHub no longer renews its token.
func (s *SignIn) sessionViewer(ctx context.Context, id string) (*viewer, error) {
	sess, err := s.loadSession(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	toks, err := s.openTokens(sess)
	if !now.Before(sess.ExpiresAt) || err != nil {
		s.endSession(ctx, id) // expired, or sealed with another key
		return nil, nil
	}
	if !toks.AccessExpiry.IsZero() && !now.Before(toks.AccessExpiry.Add(-refreshMargin)) {
		toks, err = s.refresh(ctx, sess)
		if errors.Is(err, githubapp.ErrTokenRefused) {
			s.logger.InfoContext(ctx, "dashboard session ended: GitHub no longer renews its token", "login", sess.Login, bot.LogError, err)
			s.endSession(ctx, id)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return &viewer{login: sess.Login, key: sessionKey(id), sessionID: id, token: toks.Access, signIn: s}, nil
}

func sessionKey(id string) string { return "session:" + id }

func (s *SignIn) loadSession(ctx context.Context, id string) (bot.Session, error) {
	var sess bot.Session
	err := s.viewSessions(ctx, func(tx bot.SessionTx) (err error) {
		sess, err = tx.Session(ctx, id)
		return err
	})
	return sess, err
}

// refresh renews the session's tokens (a refresh token is good once). It
// reads the session again first: another request, or replica, may have
// renewed them already.
func (s *SignIn) refresh(ctx context.Context, sess bot.Session) (sessionTokens, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	now := s.clock.Now()
	current, err := s.loadSession(ctx, sess.ID)
	if err != nil {
		return sessionTokens{}, err
	}
	toks, err := s.openTokens(current)
	if err != nil {
		return sessionTokens{}, err
	}
	if toks.AccessExpiry.IsZero() || now.Before(toks.AccessExpiry.Add(-refreshMargin)) {
		return toks, nil // renewed meanwhile
	}
	if toks.Refresh == "" || (!toks.RefreshExpiry.IsZero() && !now.Before(toks.RefreshExpiry)) {
		return sessionTokens{}, fmt.Errorf("the GitHub token expired and there is no refresh token left: %w", githubapp.ErrTokenRefused)
	}
	fresh, err := s.flow.Refresh(ctx, toks.Refresh)
	if errors.Is(err, githubapp.ErrTokenRefused) {
		// Another replica may have used the refresh token just now.
		if again, lerr := s.loadSession(ctx, sess.ID); lerr == nil && string(again.Tokens) != string(current.Tokens) {
			return s.openTokens(again)
		}
	}
	if err != nil {
		return sessionTokens{}, err
	}
	toks = tokensOf(fresh, now)
	current.Tokens = s.sealTokens(current.ID, toks)
	if err := s.updateSessions(ctx, func(tx bot.SessionTx) error { return tx.PutSession(ctx, current) }); err != nil {
		return sessionTokens{}, err
	}
	return toks, nil
}

// signInBody is the body of the "signin" page: signed out, or a sign-in
// that failed.
type signInBody struct {
	Heading, Message string
	SignIn           string // the sign-in link
}

func (s *SignIn) renderSignIn(w http.ResponseWriter, r *http.Request, status int, body signInBody) {
	renderPage(w, r, s.logger, status, "signin", pageData{Title: body.Heading, Body: body})
}

// updateSessions runs fn in a transaction that sees only the sessions,
// all sign-in keeps in the store.
func (s *SignIn) updateSessions(ctx context.Context, fn func(tx bot.SessionTx) error) error {
	return s.store.Update(ctx, func(tx bot.Tx) error { return fn(tx) })
}

// viewSessions runs fn in a read-only transaction that sees only the
// sessions.
func (s *SignIn) viewSessions(ctx context.Context, fn func(tx bot.SessionTx) error) error {
	return s.store.View(ctx, func(tx bot.Tx) error { return fn(tx) })
}
