package web

import (
	"context"
	"crypto/subtle"
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
	forms   []byte // the key of the forms' tokens (formToken)
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
	forms, err := formKey(o.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	public, err := url.Parse(strings.TrimRight(o.PublicURL, "/"))
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Host == "" {
		return nil, fmt.Errorf("sign-in: the public URL %q is not an http(s) URL", o.PublicURL)
	}
	s := &SignIn{store: o.Store, flow: o.Flow, github: o.GitHub, revoker: o.Revoker, cookies: cookies, tokens: tokens, forms: forms,
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
	// The session and its audit record are written together. A sign-in
	// that fails is not recorded: nobody is known yet, and anyone could
	// fill the trail by calling back.
	err = s.store.Update(ctx, func(tx bot.Tx) error {
		if _, err := tx.DeleteExpiredSessions(ctx, now); err != nil {
			return err
		}
		if err := tx.PutSession(ctx, sess); err != nil {
			return err
		}
		_, err := tx.AddAudit(ctx, bot.AuditRecord{At: now, Actor: user.Login, Action: bot.AuditSignIn, Outcome: bot.AuditDone, Reason: "signed in to the dashboard"})
		return err
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

func (s *SignIn) serveSignedOut(w http.ResponseWriter, r *http.Request) {
	s.renderSignIn(w, r, http.StatusOK, signInBody{Heading: "Signed out",
		Message: "You are signed out of Stagehand, and Stagehand gave back its GitHub token for you. You are still signed in to GitHub itself.",
		SignIn:  s.loginURL("/")})
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
