package web

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// The dashboard's forms that act (the Restore button) are protected from
// cross-site request forgery twice: each carries a token bound to the
// signed-in session (formToken), which another site cannot read and which
// no other session's token matches; and a request whose Origin header names
// another site is refused before the token is looked at. The session
// cookie's SameSite=Lax keeps it off most cross-site POSTs as well.

// formTokenField is the forms' hidden field holding the token.
const formTokenField = "csrf_token"

// formKey derives the forms' key from the session key (HKDF-SHA256, its
// own purpose: it opens no cookie and no stored token). NewSignIn has
// checked the key's length.
func formKey(sessionKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, sessionKey, nil, "stagehand dashboard forms v1", 32)
}

// formToken is the token of session id's forms: an HMAC of the id, so it
// is the same on every page and replica for the session, and ends with it.
func (s *SignIn) formToken(sessionID string) string {
	m := hmac.New(sha256.New, s.forms)
	m.Write([]byte("form\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// formProblem says what is wrong with a form r posts for v ("" when
// nothing): it must come from a signed-in session, from this server's
// origin (when the browser says), and carry the session's token.
func (s *SignIn) formProblem(r *http.Request, v *viewer) string {
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.public.Scheme+"://"+s.public.Host {
		return "the request came from another site (Origin " + origin + "), not from Stagehand's own page"
	}
	if v.sessionID == "" {
		return "the form was not sent from a page of a signed-in session"
	}
	got := r.PostFormValue(formTokenField)
	if got == "" {
		return "the form carries no security token; it was not sent from Stagehand's own page"
	}
	if !hmac.Equal([]byte(got), []byte(s.formToken(v.sessionID))) {
		return "the form's security token is not this session's; it was not sent from a page Stagehand showed you in this sign-in"
	}
	return ""
}

// validFormKey reports whether a form's idempotency key is one the
// dashboard makes (randomString(16): 22 base64url characters) or alike.
func validFormKey(k string) bool {
	if len(k) < 16 || len(k) > 64 {
		return false
	}
	return strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}
