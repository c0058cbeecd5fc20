package githubapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
)

// Installation tokens are narrowed. GitHub lets an App ask, for each token,
// for fewer permissions than the installation granted and for some of its
// repositories only (POST /app/installations/{id}/access_tokens with
// "permissions" and "repository_ids" or "repositories"). Each token
// Stagehand asks for serves one purpose, on the one repository the purpose
// touches, so a token that leaks can do no more than that one job:
//
//	purpose        calls                                        asks for
//	checkout       Token, for git fetch and ls-remote           contents: read
//	contents       FetchFile (.github/stagehand.yml)            contents: read
//	checks         CreateCheckRun, UpdateCheckRun, CheckRunIDs  checks: write
//	deployments    CreateDeployment, CreateDeploymentStatus     deployments: write
//	comments       CreateComment, EditComment, React            issues: write, pull_requests: write
//	collaborators  Permission                                   metadata: read
//	members        IsTeamMember, on no repository in particular members: read (organization)
//
// GitHub adds metadata: read to every token. The checkout token is apart
// from the contents one although both read contents: it leaves the process
// (git gets it in its environment), the others never do. A comment on a pull
// request needs pull_requests: write, one on an issue issues: write; the
// comment calls do not know which they answer, so they ask for both.
//
// A token is cached per (installation, purpose, repository) and asked for
// again a minute before it expires (ghinstallation does both).
type purpose string

const (
	purposeCheckout      purpose = "checkout"
	purposeContents      purpose = "contents"
	purposeChecks        purpose = "checks"
	purposeDeployments   purpose = "deployments"
	purposeComments      purpose = "comments"
	purposeCollaborators purpose = "collaborators"
	purposeMembers       purpose = "members"
)

// ask returns the permissions p's tokens ask for.
func (p purpose) ask() *github.InstallationPermissions {
	read, write := github.String("read"), github.String("write")
	switch p {
	case purposeCheckout, purposeContents:
		return &github.InstallationPermissions{Contents: read}
	case purposeChecks:
		return &github.InstallationPermissions{Checks: write}
	case purposeDeployments:
		return &github.InstallationPermissions{Deployments: write}
	case purposeComments:
		return &github.InstallationPermissions{Issues: write, PullRequests: write}
	case purposeCollaborators:
		return &github.InstallationPermissions{Metadata: read}
	case purposeMembers:
		return &github.InstallationPermissions{Members: read}
	}
	panic(fmt.Sprintf("githubapp: token purpose %q asks for nothing", p))
}

// needs names, as GitHub's settings page does, the App permissions p's
// calls need: error messages tell operators what to grant.
func (p purpose) needs() string {
	switch p {
	case purposeCheckout, purposeContents:
		return `"Contents: read"`
	case purposeChecks:
		return `"Checks: write"`
	case purposeDeployments:
		return `"Deployments: write"`
	case purposeComments:
		return `"Issues: write" and "Pull requests: write"`
	case purposeCollaborators:
		return `"Metadata: read"`
	case purposeMembers:
		return `organization "Members: read"`
	}
	panic(fmt.Sprintf("githubapp: token purpose %q needs nothing", p))
}

// Repository names the one repository a token is narrowed to. GitHub takes
// its id (repository_ids: it survives a rename) or its name (repositories:
// a repository of the installation's account); the id is used when set.
type Repository struct {
	ID   int64
	Name string // without the owner
}

// scope is what one token is for: a purpose on one repository, or on every
// repository of the installation when repo is zero (team membership is an
// organization question).
type scope struct {
	purpose purpose
	repo    Repository
}

func (s scope) options() *github.InstallationTokenOptions {
	o := &github.InstallationTokenOptions{Permissions: s.purpose.ask()}
	switch {
	case s.repo.ID != 0:
		o.RepositoryIDs = []int64{s.repo.ID}
	case s.repo.Name != "":
		o.Repositories = []string{s.repo.Name}
	}
	return o
}

type scopeKey struct{}

// withScope makes the installation client's requests made with ctx carry a
// token for s.
func withScope(ctx context.Context, s scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

func scopeOf(ctx context.Context) (scope, bool) {
	s, ok := ctx.Value(scopeKey{}).(scope)
	return s, ok
}

// errNoScope reports a request sent without a token scope: a mistake in
// this package, as every App method sets one.
var errNoScope = errors.New("githubapp: installation request without a token scope")

// tokens are one installation's tokens, one per scope.
type tokens struct {
	app          *App
	installation int64

	mu      sync.Mutex
	byScope map[scope]*ghinstallation.Transport
}

func newTokens(a *App, installation int64) *tokens {
	return &tokens{app: a, installation: installation, byScope: map[scope]*ghinstallation.Transport{}}
}

// token returns a valid token for s: the cached one, or a new one when
// there is none or it expires within a minute. The error of a refused
// request is a *tokenRefusedError.
func (t *tokens) token(ctx context.Context, s scope) (string, error) {
	t.mu.Lock()
	tr := t.byScope[s]
	if tr == nil {
		// One AppsTransport per Transport: ghinstallation's Transport
		// writes BaseURL and Client into its AppsTransport on every
		// refresh, which would race between Transports sharing one.
		atr := ghinstallation.NewAppsTransportFromPrivateKey(t.app.base, t.app.appID, t.app.key)
		atr.BaseURL = t.app.apiURL
		tr = ghinstallation.NewFromAppsTransport(atr, t.installation)
		tr.BaseURL = t.app.apiURL
		tr.InstallationTokenOptions = s.options()
		t.byScope[s] = tr
	}
	t.mu.Unlock()
	tok, err := tr.Token(ctx)
	if err != nil {
		return "", refusal(err)
	}
	return tok, nil
}

// tokenRefusedError is GitHub's refusal of a token request, with the
// message GitHub gave. It wraps ghinstallation's error, which holds a
// *ghinstallation.HTTPError whose Response keeps its status, headers and
// (read) body.
type tokenRefusedError struct {
	message string
	status  int
	err     error
}

func (e *tokenRefusedError) Error() string {
	if e.message == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("%s: %s", e.err.Error(), e.message)
}

func (e *tokenRefusedError) Unwrap() error { return e.err }

// repositoryRefused reports GitHub's 422 for a repository the installation
// does not hold (or that does not exist, or was renamed).
func (e *tokenRefusedError) repositoryRefused() bool {
	return e.status == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(e.message), "repositor")
}

// unseen reports a failed call that means the installation cannot see what
// it asked for: GitHub answered 404, or would not give a token for the
// repository.
func unseen(resp *github.Response, err error) bool {
	var refused *tokenRefusedError
	return (resp != nil && resp.StatusCode == http.StatusNotFound) || (errors.As(err, &refused) && refused.repositoryRefused())
}

// refusal turns the error of a token request GitHub answered with a non-2xx
// status into a *tokenRefusedError. ghinstallation leaves that answer's body
// open: it is read (up to 64 KiB), closed, and put back as the bytes read.
// Other errors are returned as they are.
func refusal(err error) error {
	var he *ghinstallation.HTTPError
	if !errors.As(err, &he) || he.Response == nil || he.Response.Body == nil {
		return err
	}
	data, _ := io.ReadAll(io.LimitReader(he.Response.Body, 64<<10))
	he.Response.Body.Close()
	he.Response.Body = io.NopCloser(bytes.NewReader(data))
	var body struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(data, &body)
	return &tokenRefusedError{message: body.Message, status: he.Response.StatusCode, err: err}
}

// Token returns a token for git over HTTPS on one repository of the
// installation (fetch, ls-remote): it may read that repository's contents
// and nothing else. It goes in an Authorization header, never in a URL or a
// log.
func (a *App) Token(ctx context.Context, installationID int64, repo Repository) (string, error) {
	what := fmt.Sprintf("get a checkout token for repository %s of installation %d", repo.describe(), installationID)
	if repo.ID == 0 && repo.Name == "" {
		return "", fmt.Errorf("%s: the repository needs an id or a name", what)
	}
	inst, err := a.installation(installationID)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	tok, err := inst.tokens.token(ctx, scope{purpose: purposeCheckout, repo: repo})
	if err != nil {
		return "", apiError(installationID, what, purposeCheckout, err)
	}
	return tok, nil
}

// describe names r for messages: "app (id 1002)", "app" or "id 1002".
func (r Repository) describe() string {
	switch {
	case r.ID != 0 && r.Name != "":
		return fmt.Sprintf("%s (id %d)", r.Name, r.ID)
	case r.ID != 0:
		return fmt.Sprintf("id %d", r.ID)
	}
	return r.Name
}
