package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// token is an installation access token the stand-in issued.
type token struct {
	installationID int64
	expires        time.Time
	repos          map[string]bool   // lower-case "owner/repo"; nil means every repository of the installation
	permissions    map[string]string // what it may do, metadata: read included
}

// access is one permission an endpoint needs: its name and level, as in a
// token request's "permissions" ("checks", "write").
type access struct{ name, level string }

func (a access) String() string { return a.name + "=" + a.level }

// The permissions the served endpoints need.
var (
	contentsRead     = access{"contents", "read"}
	checksRead       = access{"checks", "read"}
	checksWrite      = access{"checks", "write"}
	deploymentsRead  = access{"deployments", "read"}
	deploymentsWrite = access{"deployments", "write"}
	issuesWrite      = access{"issues", "write"}
	pullsWrite       = access{"pull_requests", "write"}
	metadataRead     = access{"metadata", "read"}
	membersRead      = access{"members", "read"}
)

// permissionLevels orders the levels of a permission.
var permissionLevels = map[string]int{"read": 1, "write": 2, "admin": 3}

// grants reports whether the permissions perms include a.
func grants(perms map[string]string, a access) bool {
	return permissionLevels[perms[a.name]] >= permissionLevels[a.level]
}

// may reports whether the token holds one of needs (any one will do, as
// GitHub accepts an issue comment with either "issues" or "pull_requests"
// write). Every token may read metadata.
func (tok *token) may(needs []access) bool {
	if len(needs) == 0 {
		return true
	}
	for _, a := range needs {
		if a == metadataRead || grants(tok.permissions, a) {
			return true
		}
	}
	return false
}

// SetAppKey registers the public key of a GitHub App. Requests to /app/...
// endpoints (and other App-only endpoints) must then carry a JWT signed with
// RS256 by the matching private key, iss = app id, exp in the future and no
// more than 10 minutes ahead; otherwise they get 401 like on GitHub.
func (s *Server) SetAppKey(appID int64, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appKeys[appID] = pub
}

// GenerateAppKey makes a 2048-bit RSA key and its PKCS#1 PEM encoding, the form
// GitHub hands out for App private keys. t may be nil (it panics on failure then).
func GenerateAppKey(t TB) (pemBytes []byte, key *rsa.PrivateKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		if t != nil {
			t.Fatalf("githubtest: generate key: %v", err)
		}
		panic("githubtest: generate key: " + err.Error())
	}
	pemBytes = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return pemBytes, key
}

// credentials splits the Authorization header into scheme and value.
func credentials(r *http.Request) (scheme, value string) {
	scheme, value, _ = strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return strings.ToLower(scheme), strings.TrimSpace(value)
}

// GitHub's 401 messages.
const (
	msgBadCredentials = "Bad credentials"
	msgJWTUndecodable = "A JSON web token could not be decoded"
	msgJWTExpired     = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	msgJWTTooFar      = "'Expiration time' claim ('exp') is too far in the future"
	msgJWTIssuedAt    = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
)

// appAuth verifies the App JWT of r and returns the App's id.
func (s *Server) appAuth(r *http.Request) (int64, *response) {
	s.mu.Lock()
	nkeys := len(s.appKeys)
	s.mu.Unlock()
	if nkeys == 0 {
		s.addError(fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, errNoAppKey))
		resp := badCredentials(msgJWTUndecodable)
		return 0, &resp
	}
	scheme, raw := credentials(r)
	if scheme != "bearer" || raw == "" {
		resp := badCredentials("You must authenticate with a JSON Web Token (JWT) to access this endpoint.")
		return 0, &resp
	}
	var appID int64
	parsed, err := jwt.Parse(raw, func(tk *jwt.Token) (any, error) {
		claims, _ := tk.Claims.(jwt.MapClaims)
		id, ok := intClaim(claims["iss"])
		if !ok {
			return nil, errors.New("iss is not an app id")
		}
		s.mu.Lock()
		key := s.appKeys[id]
		s.mu.Unlock()
		if key == nil {
			return nil, fmt.Errorf("no app %d", id)
		}
		appID = id
		return key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil || !parsed.Valid {
		resp := badCredentials(msgJWTUndecodable)
		return 0, &resp
	}
	claims := parsed.Claims.(jwt.MapClaims)
	now := s.now()
	exp, okExp := intClaim(claims["exp"])
	iat, okIat := intClaim(claims["iat"])
	var msg string
	switch {
	case !okExp || exp <= now.Unix():
		msg = msgJWTExpired
	case exp > now.Add(10*time.Minute).Unix():
		msg = msgJWTTooFar
	case !okIat || iat > now.Add(time.Minute).Unix():
		msg = msgJWTIssuedAt
	}
	if msg != "" {
		resp := badCredentials(msg)
		return 0, &resp
	}
	return appID, nil
}

// intClaim reads an integral JSON number or a decimal string. GitHub rejects
// fractional timestamps, so 1.5 is not a valid claim.
func intClaim(v any) (int64, bool) {
	switch v := v.(type) {
	case float64:
		if v != math.Trunc(v) {
			return 0, false
		}
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// installationAuth checks that r carries a live installation token that
// covers owner/repo and holds one of needs (none: metadata only). A token
// that does not cover the repository gets 404, as GitHub hides (private)
// repositories a token cannot see, even from a token of the same
// installation narrowed to other repositories; a token that sees the
// repository without the permission gets GitHub's 403 "Resource not
// accessible by integration".
func (s *Server) installationAuth(req *request, owner, repo string, needs ...access) (*token, *response) {
	tok, resp := s.tokenAuth(req.Request)
	if resp != nil {
		return nil, resp
	}
	if !s.covers(tok, owner, repo) {
		nf := req.notFound()
		return nil, &nf
	}
	if !tok.may(needs) {
		f := req.forbidden(needs)
		return nil, &f
	}
	return tok, nil
}

// covers reports whether tok sees owner/repo: a repository of its
// installation, among those it was narrowed to.
func (s *Server) covers(tok *token, owner, repo string) bool {
	key := repoKey(owner, repo)
	s.mu.Lock()
	rp := s.repos[key]
	s.mu.Unlock()
	return rp != nil && rp.installationID == tok.installationID && (tok.repos == nil || tok.repos[key])
}

// tokenAuth checks that r carries a live installation token ("token X" or "Bearer X").
func (s *Server) tokenAuth(r *http.Request) (*token, *response) {
	return liveOr401(r, s.liveToken)
}

// liveOr401 finds the token r carries ("token X" or "Bearer X") with live,
// which returns nil for a token GitHub would not take; a missing or refused
// one gets GitHub's 401.
func liveOr401[T any](r *http.Request, live func(value string) *T) (*T, *response) {
	scheme, value := credentials(r)
	if (scheme != "token" && scheme != "bearer") || value == "" {
		resp := badCredentials("Requires authentication")
		return nil, &resp
	}
	tok := live(value)
	if tok == nil {
		resp := badCredentials(msgBadCredentials)
		return nil, &resp
	}
	return tok, nil
}

// liveToken returns the installation token whose value is value, nil when
// there is none or it expired.
func (s *Server) liveToken(value string) *token {
	s.mu.Lock()
	tok := s.tokens[value]
	s.mu.Unlock()
	if tok == nil || !s.now().Before(tok.expires) {
		return nil
	}
	return tok
}

// newToken issues an installation token. The format is GitHub's classic one
// (ghs_ + 36 characters); clients must not depend on it, GitHub is moving to
// longer tokens.
func (s *Server) newToken(installationID int64, repos map[string]bool, permissions map[string]string) (string, *token) {
	value := "ghs_" + randomChars(36)
	tok := &token{installationID: installationID, expires: s.now().Add(s.tokenTTL).Truncate(time.Second),
		repos: repos, permissions: permissions}
	s.mu.Lock()
	s.tokens[value] = tok
	s.mu.Unlock()
	return value, tok
}

// randomChars is n random letters and digits, the body of GitHub's tokens.
func randomChars(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("githubtest: " + err.Error())
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
