package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// A signed-in visitor's session (see signin.go for the flow): the sealed
// tokens in the store, who a request comes from (Require), and renewing the
// GitHub token before it expires.

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

// endSession deletes a session and forgets what it could read.
func (s *SignIn) endSession(ctx context.Context, id string) {
	s.cache.forget(sessionKey(id))
	if err := s.updateSessions(ctx, func(tx bot.SessionTx) error { return tx.DeleteSession(ctx, id) }); err != nil {
		s.logger.ErrorContext(ctx, "deleting a dashboard session", bot.LogError, err)
	}
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

// Identify puts who r comes from in the request's context, as Require
// does, but serves next to nobody too: the handler refuses them itself
// (and records it). It fails closed: when the sign-in cannot be checked,
// the request is answered 503.
func (s *SignIn) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := s.viewerOf(r)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "identifying a dashboard visitor", bot.LogError, err)
			http.Error(w, "Stagehand could not check your sign-in with GitHub; nothing was done, try again in a minute.", http.StatusServiceUnavailable)
			return
		}
		if v != nil {
			r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, v))
		}
		next.ServeHTTP(w, r)
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
