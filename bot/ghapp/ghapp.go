// Package ghapp is Stagehand's GitHub App adapter: it authenticates as the App
// (JWT) and as its installations (installation tokens, cached and refreshed
// before they expire), reads repository files, and writes what users see on
// GitHub (check runs, comments, reactions, deployments; api.go). Installation
// clients wait out rate limits, retry what is safe to retry and serialise
// writes (transport.go).
package ghapp

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
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
	installations map[int64]*github.Client
	transports    map[int64]*ghinstallation.Transport
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
		installations: map[int64]*github.Client{},
		transports:    map[int64]*ghinstallation.Transport{},
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

// Installation returns the client of one installation, created on first use
// and cached. Its transport fetches an installation token when needed and
// refreshes it a minute before it expires, and handles rate limits, retries
// and write serialisation (apiTransport). A write holds the installation's
// write lock until its response body is read to the end or closed, which
// go-github's Do always does; callers of BareDo must close the body.
func (a *App) Installation(id int64) (*github.Client, error) {
	if id <= 0 {
		return nil, fmt.Errorf("github installation id: must be a positive number, got %d", id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.installations[id]; ok {
		return c, nil
	}
	// One AppsTransport per installation: ghinstallation's Transport writes
	// BaseURL and Client into its AppsTransport on every refresh, which would
	// race between installations sharing one.
	atr := ghinstallation.NewAppsTransportFromPrivateKey(a.base, a.appID, a.key)
	atr.BaseURL = a.apiURL
	tr := ghinstallation.NewFromAppsTransport(atr, id)
	tr.BaseURL = a.apiURL
	// ghinstallation would otherwise send the JSON body "null" (a typed nil
	// pointer in an interface), which the endpoint's schema does not allow.
	tr.InstallationTokenOptions = &github.InstallationTokenOptions{}
	c := a.newClient(newAPITransport(id, tr, a.base, a.retry))
	a.installations[id] = c
	a.transports[id] = tr
	return c, nil
}

// Token returns a valid installation token, for git over HTTPS (it goes in
// an Authorization header, never in a URL or a log).
func (a *App) Token(ctx context.Context, installationID int64) (string, error) {
	if _, err := a.Installation(installationID); err != nil {
		return "", err
	}
	a.mu.Lock()
	tr := a.transports[installationID]
	a.mu.Unlock()
	tok, err := tr.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("getting an installation token for installation %d: %w", installationID, err)
	}
	return tok, nil
}

// closeTokenErrorBody closes the response body ghinstallation leaves open
// when the token endpoint answers non-2xx (it hands it back in *HTTPError).
// Its status and headers stay readable.
func closeTokenErrorBody(err error) {
	var he *ghinstallation.HTTPError
	if err != nil && errors.As(err, &he) && he.Response != nil && he.Response.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(he.Response.Body, 64<<10))
		he.Response.Body.Close()
	}
}

// FetchFile returns the content of path in owner/repo at ref (a commit sha
// or branch; empty means the default branch), read with the contents API as
// the installation. A missing file (or a repository the installation cannot
// see: GitHub answers 404 to both) gives an error wrapping bot.ErrNotFound.
func (a *App) FetchFile(ctx context.Context, installationID int64, owner, repo, path, ref string) ([]byte, error) {
	c, err := a.Installation(installationID)
	if err != nil {
		return nil, err
	}
	file, dir, resp, err := c.Repositories.GetContents(sleepOnRateLimit(ctx), owner, repo, path, &github.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
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
