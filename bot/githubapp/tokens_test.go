package githubapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

const tokenOperation = "POST /app/installations/{installation_id}/access_tokens"

// tokenBodies returns the bodies of the token requests the stand-in saw,
// decoded, in order.
func tokenBodies(t *testing.T, gh *githubtest.Server) []map[string]any {
	t.Helper()
	var bodies []map[string]any
	for _, c := range gh.Calls() {
		if c.Operation != tokenOperation {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(c.Body, &body); err != nil {
			t.Fatalf("token request body %q: %v", c.Body, err)
		}
		bodies = append(bodies, body)
	}
	return bodies
}

// The checkout token asks for exactly contents: read on the one repository:
// by id when the caller knows it, by name otherwise.
func TestCheckoutTokenAsksContentsReadOnOneRepository(t *testing.T) {
	tests := []struct {
		name string
		repo func(gh *githubtest.Server) githubapp.Repository
		want func(gh *githubtest.Server) map[string]any
	}{
		{"by id",
			func(gh *githubtest.Server) githubapp.Repository {
				return githubapp.Repository{ID: gh.RepoID("acme", "app"), Name: "app"}
			},
			func(gh *githubtest.Server) map[string]any {
				return map[string]any{
					"permissions":    map[string]any{"contents": "read"},
					"repository_ids": []any{float64(gh.RepoID("acme", "app"))},
				}
			}},
		{"by name",
			func(*githubtest.Server) githubapp.Repository { return githubapp.Repository{Name: "app"} },
			func(*githubtest.Server) map[string]any {
				return map[string]any{
					"permissions":  map[string]any{"contents": "read"},
					"repositories": []any{"app"},
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, gh := setup(t)
			gh.AddRepo(1, "acme", "site")
			if _, err := app.Token(context.Background(), 1, tt.repo(gh)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]map[string]any{tt.want(gh)}, tokenBodies(t, gh)); diff != "" {
				t.Errorf("token request body (-want +got):\n%s", diff)
			}
			gh.AssertNoErrors(t)
		})
	}
}

// The checkout token reaches git, next to step scripts: it must not be able
// to write anything or read another repository of the installation.
func TestCheckoutTokenCannotDoMore(t *testing.T) {
	app, gh := setup(t)
	gh.AddRepo(1, "acme", "site")
	gh.SetFile("acme", "site", "main", cfgPath, []byte("version: 1 # site\n"))
	ctx := context.Background()
	tok, err := app.Token(ctx, 1, githubapp.Repository{ID: gh.RepoID("acme", "app"), Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	c := github.NewClient(nil).WithAuthToken(tok)
	c.BaseURL, _ = url.Parse(gh.URL())
	tests := []struct {
		name   string
		call   func() (*github.Response, error)
		status int
	}{
		{"read its repository", func() (*github.Response, error) {
			_, _, resp, err := c.Repositories.GetContents(ctx, "acme", "app", cfgPath, &github.RepositoryContentGetOptions{Ref: sha})
			return resp, err
		}, http.StatusOK},
		{"create a check run", func() (*github.Response, error) {
			_, resp, err := c.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "evil", HeadSHA: sha})
			return resp, err
		}, http.StatusForbidden},
		{"create a deployment", func() (*github.Response, error) {
			_, resp, err := c.Repositories.CreateDeployment(ctx, "acme", "app", &github.DeploymentRequest{
				Ref: github.String(sha), AutoMerge: github.Bool(false), RequiredContexts: &[]string{}})
			return resp, err
		}, http.StatusForbidden},
		{"comment", func() (*github.Response, error) {
			_, resp, err := c.Issues.CreateComment(ctx, "acme", "app", 1, &github.IssueComment{Body: github.String("hi")})
			return resp, err
		}, http.StatusForbidden},
		// GitHub hides a private repository the token does not cover, even
		// one of the same installation: 404, not 403.
		{"read another repository of the installation", func() (*github.Response, error) {
			_, _, resp, err := c.Repositories.GetContents(ctx, "acme", "site", cfgPath, nil)
			return resp, err
		}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.call()
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d (%v), want %d", resp.StatusCode, err, tt.status)
			}
			var er *github.ErrorResponse
			if tt.status == http.StatusForbidden && (!errors.As(err, &er) || er.Message != "Resource not accessible by integration") {
				t.Errorf("error %v, want GitHub's \"Resource not accessible by integration\"", err)
			}
		})
	}
	if runs, deps, comments := gh.CheckRuns("acme", "app"), gh.Deployments("acme", "app"), gh.Comments("acme", "app", 1); len(runs)+len(deps)+len(comments) > 0 {
		t.Errorf("the checkout token wrote %d check runs, %d deployments, %d comments", len(runs), len(deps), len(comments))
	}
	gh.AssertNoErrors(t)
}

// Each App call gets a token asking only for what the call needs, on the
// repository it touches; calls of one purpose share their token. The calls
// succeed with it: the narrowing takes nothing they need.
func TestTokensAskOnlyWhatTheirCallsNeed(t *testing.T) {
	onApp := []string{"app"}
	tests := []struct {
		name  string
		calls func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error
		want  githubtest.TokenRequest
	}{
		{"checkout", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			_, err := app.Token(ctx, 1, githubapp.Repository{Name: "app"})
			return err
		}, githubtest.TokenRequest{Permissions: map[string]string{"contents": "read"}, Repositories: onApp}},
		{"configuration file", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			_, err := app.FetchFile(ctx, 1, "acme", "app", cfgPath, sha)
			return err
		}, githubtest.TokenRequest{Permissions: map[string]string{"contents": "read"}, Repositories: onApp}},
		{"reporter: check runs", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			id, err := app.CreateCheckRun(ctx, 1, "acme", "app", github.CreateCheckRunOptions{Name: "stagehand/x", HeadSHA: sha, ExternalID: github.String("7")})
			if err != nil {
				return err
			}
			if _, err := app.CheckRunIDs(ctx, 1, "acme", "app", sha, "stagehand/x", "7"); err != nil {
				return err
			}
			return app.UpdateCheckRun(ctx, 1, "acme", "app", id, github.UpdateCheckRunOptions{Name: "stagehand/x", Actions: []*github.CheckRunAction{}})
		}, githubtest.TokenRequest{Permissions: map[string]string{"checks": "write"}, Repositories: onApp}},
		{"reporter: deployments", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			id, err := app.CreateDeployment(ctx, 1, "acme", "app", sha, "production", "", nil)
			if err != nil {
				return err
			}
			return app.CreateDeploymentStatus(ctx, 1, "acme", "app", id, "success", "", "", "done")
		}, githubtest.TokenRequest{Permissions: map[string]string{"deployments": "write"}, Repositories: onApp}},
		{"comments and reactions", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			if err := app.React(ctx, 1, "acme", "app", gh.AddComment("acme", "app", 3, "octocat", "/stagehand promote"), "eyes"); err != nil {
				return err
			}
			id, err := app.CreateComment(ctx, 1, "acme", "app", 3, "on it")
			if err != nil {
				return err
			}
			return app.EditComment(ctx, 1, "acme", "app", id, "done")
		}, githubtest.TokenRequest{Permissions: map[string]string{"issues": "write", "pull_requests": "write"}, Repositories: onApp}},
		{"collaborator permission", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			gh.SetPermission("acme", "app", "octocat", "write")
			role, err := app.Permission(ctx, 1, "acme", "app", "octocat")
			if err == nil && role != "write" {
				err = errors.New("role " + role + ", want write")
			}
			return err
		}, githubtest.TokenRequest{Permissions: map[string]string{"metadata": "read"}, Repositories: onApp}},
		{"team membership: an organization question, on no repository", func(ctx context.Context, app *githubapp.App, gh *githubtest.Server) error {
			gh.AddTeamMember("acme", "release", "octocat")
			ok, err := app.IsTeamMember(ctx, 1, "acme", "release", "octocat")
			if err == nil && !ok {
				err = errors.New("octocat is not in acme/release")
			}
			return err
		}, githubtest.TokenRequest{Permissions: map[string]string{"members": "read"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, gh := setup(t)
			if err := tt.calls(context.Background(), app, gh); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Installation, want.Status = 1, http.StatusCreated
			if diff := cmp.Diff([]githubtest.TokenRequest{want}, gh.TokenRequests()); diff != "" {
				t.Errorf("token requests (-want +got):\n%s", diff)
			}
			gh.AssertNoErrors(t)
		})
	}
}

// An installation that did not grant a permission costs only the calls that
// need it, and the error names the permission to grant.
func TestPermissionNotGrantedNamesIt(t *testing.T) {
	app, gh := setup(t)
	gh.SetInstallationPermissions(1, map[string]string{
		"checks": "write", "contents": "read", "deployments": "write", "issues": "write", "metadata": "read", "pull_requests": "read",
	})
	ctx := context.Background()
	_, err := app.CreateComment(ctx, 1, "acme", "app", 3, "hi")
	if err == nil || !strings.Contains(err.Error(), `has not granted the App the "Issues: write" and "Pull requests: write" permission`) ||
		!strings.Contains(err.Error(), "The permissions requested are not granted to this installation.") {
		t.Errorf("error %v, want one naming the permissions and quoting GitHub", err)
	}
	if _, err := app.CreateCheckRun(ctx, 1, "acme", "app", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha}); err != nil {
		t.Errorf("check runs fail with the comments: %v", err)
	}
	gh.AssertNoErrors(t)
}
