// Package githubtest is an httptest stand-in for the parts of the GitHub REST
// API that Stagehand uses, for tests and for the playground. It is faithful
// where it matters to the bot: it checks the App JWT and installation tokens
// like GitHub does, serves contents base64-encoded, and routes by GitHub's own
// OpenAPI description (testdata/openapi-subset.json). In tests it validates
// every request body the bot sends and every response it sends itself against
// that description's schemas, through the Validator that a blank import of
// package schemacheck registers (New fails a test that forgot it); the
// playground serves without it (OptionalSchemaChecks), so that neither the
// testing package nor the schema validator is linked into the shipped binary.
// Violations and requests to endpoints it does not know are collected in
// Errors(); tests end with s.AssertNoErrors(t). The few endpoints it serves
// outside that subset (outsideSubsetRoutes, in access.go) are marked as such
// and not schema-checked.
//
// Installation tokens may be narrowed as on GitHub (permissions,
// repositories, repository_ids): the stand-in records every token request
// (TokenRequests) and refuses a token used beyond what it was given, with
// GitHub's 403 "Resource not accessible by integration" for a permission it
// lacks and 404 for a repository it does not cover. ServeGit serves
// repositories over git's HTTP protocol under the same rules.
//
// It keeps what the bot wrote in memory for tests to inspect (CheckRuns,
// Comments, Reactions, Deployments), answers permission and team questions
// from SetPermission and AddTeamMember, and injects faults: FailNext,
// RateLimitNext, SlowNext and Hold. MaxConcurrentWrites tells whether the
// bot ever had two writes of one installation in flight.
//
// It plays GitHub's side of the App's user authorization too (oauth.go,
// users.go): the web flow's authorize page and token endpoint (codes with
// PKCE, user access tokens that expire, refresh tokens good once), token
// revocation, and what a person's token reads: GET /user, the repositories
// of an installation they can see, a repository with their permissions.
// SignInOnWeb says who its web pages see signed in.
//
// It plays the App manifest flow of `stagehand setup` (manifest.go): the
// new-App form as an automatic approval by the person signed in, the
// conversion of single-use one-hour codes into an App's credentials, and
// GET /app (SetAppSettings changes what it reports; CreatedApps lists the
// Apps made).
//
// It also holds webhook payload examples (Payload) and signs them (Sign),
// and sends them as GitHub does (hooks.go: SetWebhook, SendWebhook),
// recording each attempt's outcome, refused connections and timeouts
// included, which the App's delivery endpoints list and redeliver
// (GET /app/hook/deliveries, POST /app/hook/deliveries/{delivery_id}/attempts).
package githubtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call is one request the stand-in received.
type Call struct {
	Method    string
	Path      string // decoded URL path, e.g. "/repos/acme/app/contents/.github/stagehand.yml"
	Query     url.Values
	Body      []byte
	Status    int       // status answered; 0 when the client went away while the request was held
	Time      time.Time // when the request arrived (server clock)
	Answered  time.Time // when the answer was ready (server clock); zero when none was sent
	Operation string    // matched OpenAPI operation, e.g. "GET /repos/{owner}/{repo}/contents/{path}"; empty if none
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the server's clock, used for token expiry, JWT checks and
// Call.Time. Keep the real clock when the client signs JWTs with the real
// time (ghinstallation does).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTokenTTL sets how long installation tokens live (GitHub: one hour).
// ghinstallation refreshes a token one minute before it expires, so a TTL
// under a minute makes it fetch a new token for every request.
func WithTokenTTL(d time.Duration) Option { return func(s *Server) { s.tokenTTL = d } }

// WithUserTokenTTL sets how long user access tokens of the App's user
// authorization live (GitHub: eight hours, with a refresh token for six
// months).
func WithUserTokenTTL(d time.Duration) Option { return func(s *Server) { s.userTokenTTL = d } }

// WithFirstID makes the ids the server hands out (check runs, comments,
// deployments, repositories, ...) start after id instead of after 1000. A
// stand-in that is started again for the same client state (the
// playground after a restart) passes a time-based id, so that ids of the
// earlier run never name anything of this one.
func WithFirstID(id int64) Option { return func(s *Server) { s.nextID = id } }

// Server is the stand-in. It is safe for concurrent use.
type Server struct {
	srv      *httptest.Server
	now      func() time.Time
	tokenTTL time.Duration
	closing  chan struct{}
	closed   sync.Once
	// validator checks bodies against the schemas (validator.go); nil only
	// with checksOptional.
	validator      Validator
	checksOptional bool

	mu            sync.Mutex
	installations map[int64]*installation
	repos         map[string]*repository // by lower-case "owner/repo"
	tokens        map[string]*token
	tokenRequests []TokenRequest
	gitServers    []*httptest.Server // ServeGit's
	gitRequests   []GitRequest
	appKeys       map[int64]any // app id -> *rsa.PublicKey
	calls         []Call
	errs          []error
	holds         []*hold
	faults        []*fault
	slows         []*slow
	writing       map[int64]int            // installation id -> write requests being served now
	maxWriting    map[int64]int            // installation id -> most write requests served at once
	held          map[*http.Request]string // requests blocked in a hold -> their path
	heldChanged   chan struct{}            // closed and replaced whenever held changes
	nextID        int64

	checkRuns       map[int64]*CheckRun
	checkRunOrder   []int64
	comments        map[int64]*Comment
	commentOrder    []int64
	reactions       map[int64][]reaction // by comment id
	deployments     map[int64]*Deployment
	deploymentOrder []int64
	users           map[string]string // lower-case login -> login
	permissions     map[string]string // repoKey + "\x00" + lower-case login -> role
	teamMembers     map[string]bool   // teamKey

	// The App's user authorization (oauth.go).
	oauthApps     map[string]*oauthApp // by client id
	webUser       string               // who the stand-in's web pages see signed in; "" nobody
	codes         map[string]*authCode
	userTokens    map[string]*userToken // access tokens (ghu_) and personal access tokens (ghp_)
	refreshTokens map[string]*refreshToken
	userTokenTTL  time.Duration

	// The App's webhook (hooks.go): where deliveries go, and each attempt.
	hookURL        string
	hookSecret     []byte
	hookTimeout    time.Duration
	hookDeliveries []*hookDelivery
	hookSends      sync.WaitGroup // redeliveries being sent

	// The App manifest flow and GET /app (manifest.go).
	apps          map[int64]*appRecord
	manifestCodes map[string]*manifestCode
	createdApps   []CreatedApp
}

// New starts a stand-in on a local port. With a non-nil t it is closed when
// the test ends. Without a Validator (see Register) it fails t, or panics
// with a nil t, unless OptionalSchemaChecks is among opts.
func New(t TB, opts ...Option) *Server {
	s := &Server{
		now:           time.Now,
		tokenTTL:      time.Hour,
		closing:       make(chan struct{}),
		installations: map[int64]*installation{},
		repos:         map[string]*repository{},
		tokens:        map[string]*token{},
		appKeys:       map[int64]any{},
		held:          map[*http.Request]string{},
		writing:       map[int64]int{},
		maxWriting:    map[int64]int{},
		heldChanged:   make(chan struct{}),
		nextID:        1000,
		checkRuns:     map[int64]*CheckRun{},
		comments:      map[int64]*Comment{},
		reactions:     map[int64][]reaction{},
		deployments:   map[int64]*Deployment{},
		users:         map[string]string{},
		permissions:   map[string]string{},
		teamMembers:   map[string]bool{},
		oauthApps:     map[string]*oauthApp{},
		codes:         map[string]*authCode{},
		userTokens:    map[string]*userToken{},
		refreshTokens: map[string]*refreshToken{},
		userTokenTTL:  8 * time.Hour,
		hookTimeout:   DefaultWebhookTimeout,
		apps:          map[int64]*appRecord{},
		manifestCodes: map[string]*manifestCode{},
	}
	for _, o := range opts {
		o(s)
	}
	if t != nil {
		t.Helper()
	}
	_, err := loadSpec()
	if err == nil {
		err = s.pickValidator()
	}
	if err != nil {
		if t != nil {
			t.Fatalf("githubtest: %v", err)
		}
		panic("githubtest: " + err.Error())
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// URL returns the API base URL, with a trailing slash.
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close releases every held request and shuts the server and its git
// endpoints down.
func (s *Server) Close() {
	s.closed.Do(func() {
		close(s.closing)
		s.srv.Close()
		s.mu.Lock()
		gits := slices.Clone(s.gitServers)
		s.mu.Unlock()
		for _, g := range gits {
			g.Close()
		}
		s.hookSends.Wait()
	})
}

// Calls returns a copy of the requests received so far, in order of completion.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Errors returns the schema violations and unexpected requests seen so far.
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// AssertNoErrors fails t once per error the stand-in recorded.
func (s *Server) AssertNoErrors(t TB) {
	t.Helper()
	for _, err := range s.Errors() {
		t.Errorf("githubtest: %v", err)
	}
}

func (s *Server) addError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// response is what a route handler answers; body is encoded as JSON.
type response struct {
	status int
	header http.Header
	body   any
	// raw, when set, is sent as it is instead of body as JSON (the OAuth
	// web endpoints' forms and pages); set its Content-Type in header.
	raw []byte
	// unchecked skips response validation (injected faults, 401s GitHub
	// sends on every endpoint without documenting them, 422 for bad bodies).
	unchecked bool
}

// request is what a route handler gets.
type request struct {
	*http.Request
	op     *operation
	params map[string]string
	body   []byte
}

const maxBody = 25 << 20

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	call := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Time: s.now()}
	done := s.startWrite(r)
	defer done()
	sp := mustSpec()
	op, params := sp.match(r.Method, r.URL.EscapedPath())
	if op == nil {
		op, params = matchOutsideSubset(r.Method, r.URL.EscapedPath())
	}
	if op != nil {
		call.Operation = op.key
	}
	if !s.waitHolds(r) || !s.waitSlow(r) {
		s.record(call)
		return
	}
	resp := s.handle(r, &request{Request: r, op: op, params: params, body: body})
	data := []byte{}
	if resp.raw != nil {
		data = resp.raw
	} else if resp.body != nil {
		data, err = json.Marshal(resp.body)
		if err != nil {
			panic("githubtest: encode response: " + err.Error())
		}
	}
	h := w.Header()
	// GitHub reports the rate limit on every answer; a fault's headers override these.
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	for k, v := range resp.header {
		h[http.CanonicalHeaderKey(k)] = v
	}
	if h.Get("Content-Type") == "" && len(data) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	if op != nil && !op.outsideSubset && !resp.unchecked && s.validator != nil {
		if err := s.validator.CheckResponse(op.key, resp.status, h.Get("Content-Type"), data); err != nil {
			s.addError(fmt.Errorf("stand-in answered %s %s off-spec: %w", r.Method, r.URL.Path, err))
		}
	}
	// The request stops counting as in flight before the client can see the
	// answer, so a client that waits for it never overlaps with it.
	done()
	// Recorded before the answer is written: a client that has its answer
	// finds the call in Calls (a test counting calls right after them).
	call.Status, call.Answered = resp.status, s.now()
	s.record(call)
	w.WriteHeader(resp.status)
	_, _ = w.Write(data)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *Server) handle(r *http.Request, req *request) response {
	if f := s.takeFault(r.URL.Path); f != nil {
		msg, docURL := http.StatusText(f.status), "https://docs.github.com/rest"
		if f.header.Get("X-RateLimit-Remaining") == "0" {
			msg = "API rate limit exceeded for installation."
		}
		if f.message != "" {
			msg = f.message
		}
		if f.docURL != "" {
			docURL = f.docURL
		}
		resp := errorResponse(f.status, msg, docURL)
		for k, v := range f.header {
			resp.header[k] = v
		}
		resp.unchecked = true
		return resp
	}
	if len(req.body) > maxBody {
		return response{status: http.StatusRequestEntityTooLarge, unchecked: true,
			body: map[string]any{"message": "Request body too large"}}
	}
	if req.op == nil {
		s.addError(fmt.Errorf("unexpected request %s %s: no operation in openapi-subset.json matches", r.Method, r.URL.Path))
		return errorResponse(http.StatusNotFound, "Not Found", "https://docs.github.com/rest")
	}
	if req.op.outsideSubset {
		// No schema to check against: see outsideSubsetRoutes.
		return outsideSubsetRoutes[req.op.key](s, req)
	}
	// GitHub would check credentials first; validating first records the
	// violation even when the request is also unauthenticated.
	if err := s.checkRequest(req.op, r.Header.Get("Content-Type"), req.body); err != nil {
		s.addError(fmt.Errorf("bot sent %s %s off-spec: %w", r.Method, r.URL.Path, err))
		resp := errorResponse(http.StatusUnprocessableEntity, "Invalid request.\n\n"+err.Error(), req.op.docURL)
		resp.unchecked = true
		return resp
	}
	handler := routes[req.op.key]
	if handler == nil {
		s.addError(fmt.Errorf("unexpected request %s %s: the stand-in does not implement %s yet", r.Method, r.URL.Path, req.op.key))
		resp := errorResponse(http.StatusNotFound, "Not Found", req.op.docURL)
		resp.unchecked = true
		return resp
	}
	return handler(s, req)
}

func errorResponse(status int, message, docURL string) response {
	return response{
		status: status,
		header: http.Header{},
		body: map[string]any{
			"message":           message,
			"documentation_url": docURL,
			"status":            strconv.Itoa(status),
		},
	}
}

// notFound is GitHub's 404. GitHub answers it on every endpoint (a missing
// repository, one the token cannot see) while documenting it only on some:
// where the operation does not, it is not schema-checked, like 401.
func (req *request) notFound() response {
	return req.anywhere(errorResponse(http.StatusNotFound, "Not Found", req.op.docURL))
}

// forbidden is GitHub's 403 for a token without the permission an endpoint
// needs. Like GitHub, it names the permissions that would do in
// X-Accepted-GitHub-Permissions ("a=read; b=write": any one of them). GitHub
// answers it on every endpoint; it is schema-checked where documented.
func (req *request) forbidden(needs []access) response {
	resp := req.anywhere(errorResponse(http.StatusForbidden, msgNotAccessible, req.op.docURL))
	var accepted []string
	for _, a := range needs {
		accepted = append(accepted, a.String())
	}
	resp.header.Set("X-Accepted-GitHub-Permissions", strings.Join(accepted, "; "))
	return resp
}

// msgNotAccessible is GitHub's message when an installation token may not
// do what it asks.
const msgNotAccessible = "Resource not accessible by integration"

// anywhere marks resp, an answer GitHub may give on any endpoint, unchecked
// when the operation does not document its status.
func (req *request) anywhere(resp response) response {
	responses, _ := req.op.raw["responses"].(map[string]any)
	if _, documented := responses[strconv.Itoa(resp.status)]; !documented {
		resp.unchecked = true
	}
	return resp
}

func badCredentials(message string) response {
	resp := errorResponse(http.StatusUnauthorized, message, "https://docs.github.com/rest")
	resp.unchecked = true // GitHub answers 401 on any endpoint, documented or not
	return resp
}

var errNoAppKey = errors.New("no App key registered: call SetAppKey before the bot authenticates as the App")
