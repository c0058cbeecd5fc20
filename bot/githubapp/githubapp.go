// Package githubapp is Stagehand's GitHub App adapter: it authenticates as the App
// (JWT) and as its installations (installation tokens narrowed to one
// purpose and one repository, cached and refreshed before they expire;
// tokens.go), reads repository files, and writes what users see on GitHub
// (check runs, comments, reactions, deployments; api.go). Installation
// clients wait out rate limits, retry what is safe to retry and serialise
// writes (transport.go).
package githubapp

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// DefaultAPIURL is GitHub.com's REST API base.
const DefaultAPIURL = "https://api.github.com/"

// Options configure an App.
type Options struct {
	AppID         int64
	PrivateKeyPEM []byte
	// APIURL is the REST base: DefaultAPIURL when empty, "https://HOST/api/v3/"
	// for GitHub Enterprise Server, or a test server's URL. Trailing slash optional.
	APIURL string
	// HTTPClient is an optional base client: its Transport carries every
	// request and its Timeout, CheckRedirect and Jar are kept.
	HTTPClient *http.Client
	// Retry tunes the retries of installation clients; zero fields take
	// DefaultRetryPolicy's values.
	Retry RetryPolicy
}

// App is a GitHub App. It is safe for concurrent use.
type App struct {
	appID   int64
	key     *rsa.PrivateKey
	apiURL  string   // with trailing slash, for ghinstallation
	baseURL *url.URL // the same, for go-github
	client  http.Client
	base    http.RoundTripper // counts calls (countingTransport)
	app     *github.Client
	retry   RetryPolicy

	callsMu sync.Mutex
	calls   map[string]int // by call label

	mu            sync.Mutex
	installations map[int64]*installation
}

// installation is one installation's API client and its tokens. The client
// takes, for each request, the token of the scope in the request's context
// (withScope).
type installation struct {
	client *github.Client
	tokens *tokens
}

// New checks the options and builds the App's JWT-authenticated transport.
func New(opts Options) (*App, error) {
	if opts.AppID <= 0 {
		return nil, fmt.Errorf("github app id: must be a positive number, got %d", opts.AppID)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(opts.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github private key: not a PEM RSA key: %w", err)
	}
	base, err := parseAPIURL(opts.APIURL)
	if err != nil {
		return nil, err
	}
	a := &App{
		appID:         opts.AppID,
		key:           key,
		apiURL:        base.String(),
		baseURL:       base,
		base:          http.DefaultTransport,
		installations: map[int64]*installation{},
		retry:         opts.Retry.withDefaults(),
		calls:         map[string]int{},
	}
	if opts.HTTPClient != nil {
		a.client = *opts.HTTPClient
		if opts.HTTPClient.Transport != nil {
			a.base = opts.HTTPClient.Transport
		}
	}
	a.base = countingTransport{app: a, next: a.base}
	atr := ghinstallation.NewAppsTransportFromPrivateKey(a.base, a.appID, key)
	atr.BaseURL = a.apiURL
	a.app = a.newClient(atr)
	return a, nil
}

func parseAPIURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultAPIURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("github api url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("github api url %q: want http(s)://host/path/", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// newClient builds a go-github client on rt. BaseURL is set directly:
// WithEnterpriseURLs would append "api/v3/" to a test server's URL.
func (a *App) newClient(rt http.RoundTripper) *github.Client {
	hc := a.client // copy: keeps Timeout, Jar, CheckRedirect of the base client
	hc.Transport = rt
	c := github.NewClient(&hc)
	u := *a.baseURL
	c.BaseURL = &u
	up := *a.baseURL
	c.UploadURL = &up
	c.UserAgent = "stagehand"
	return c
}

// AppClient returns a client authenticated as the App itself (JWT), for the
// /app endpoints and GET /repos/{owner}/{repo}/installation.
func (a *App) AppClient() *github.Client { return a.app }

// installation returns installation id's client and tokens, created on
// first use and cached. The client's transport gets each request the token
// of the request's scope, and handles rate limits, retries and write
// serialisation (apiTransport). A write holds the installation's write lock
// until its response body is read to the end or closed, which go-github's
// Do always does; callers of BareDo must close the body.
func (a *App) installation(id int64) (*installation, error) {
	if id <= 0 {
		return nil, fmt.Errorf("github installation id: must be a positive number, got %d", id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if inst, ok := a.installations[id]; ok {
		return inst, nil
	}
	toks := newTokens(a, id)
	inst := &installation{client: a.newClient(newAPITransport(id, toks, a.base, a.retry)), tokens: toks}
	a.installations[id] = inst
	return inst, nil
}

// FetchFile returns the content of path in owner/repo at ref (a commit sha
// or branch; empty means the default branch), read with the contents API as
// the installation. A missing file (or a repository the installation cannot
// see: GitHub answers 404 to both) gives an error wrapping bot.ErrNotFound.
func (a *App) FetchFile(ctx context.Context, installationID int64, owner, repo, path, ref string) ([]byte, error) {
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeContents, repo))
	if err != nil {
		return nil, err
	}
	file, dir, resp, err := c.Repositories.GetContents(ctx, owner, repo, path, &github.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		if unseen(resp, err) {
			return nil, &notFoundError{fmt.Sprintf("%s/%s has no %s at %s", owner, repo, path, shortRef(ref))}
		}
		return nil, fmt.Errorf("read %s from %s/%s at %s: %w", path, owner, repo, shortRef(ref), err)
	}
	if file == nil || dir != nil {
		return nil, fmt.Errorf("read %s from %s/%s at %s: it is a directory", path, owner, repo, shortRef(ref))
	}
	if file.GetType() != "file" {
		return nil, fmt.Errorf("read %s from %s/%s at %s: it is a %s, not a file", path, owner, repo, shortRef(ref), file.GetType())
	}
	if file.GetEncoding() == "none" {
		// The contents API leaves out files over 1 MB.
		return nil, fmt.Errorf("read %s from %s/%s at %s: file too large for the contents API (%d bytes)", path, owner, repo, shortRef(ref), file.GetSize())
	}
	content, err := file.GetContent()
	if err != nil {
		return nil, fmt.Errorf("read %s from %s/%s at %s: %w", path, owner, repo, shortRef(ref), err)
	}
	return []byte(content), nil
}

// notFoundError reads as a sentence a user can act on and matches bot.ErrNotFound.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return bot.ErrNotFound }

// shortRef abbreviates a full commit sha to 7 characters, as GitHub shows it.
func shortRef(ref string) string {
	if ref == "" {
		return "the default branch"
	}
	if len(ref) == 40 && strings.Trim(strings.ToLower(ref), "0123456789abcdef") == "" {
		return ref[:7]
	}
	return ref
}
