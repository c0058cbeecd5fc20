package githubtest_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// narrowedToken asks installation 1 for a token with body and returns it
// ("" when refused) with the status answered.
func narrowedToken(t *testing.T, s *githubtest.Server, body string) (string, int) {
	t.Helper()
	status, data := do(t, "POST", s.URL()+"app/installations/1/access_tokens", "Bearer "+validJWT(t), body)
	var tok struct {
		Token string `json:"token"`
	}
	if status == http.StatusCreated {
		if err := json.Unmarshal(data, &tok); err != nil {
			t.Fatal(err)
		}
	}
	return tok.Token, status
}

// A token narrowed to some permissions and repositories is refused beyond
// them as GitHub refuses it: 403 "Resource not accessible by integration"
// for a permission it lacks, 404 for a repository it does not cover.
func TestNarrowedTokensAreEnforced(t *testing.T) {
	s := newServer(t)
	s.AddRepo(1, "acme", "site")
	s.SetFile("acme", "app", "main", "README", []byte("app"))
	s.SetFile("acme", "site", "main", "README", []byte("site"))
	appID := strconv.FormatInt(s.RepoID("acme", "app"), 10)
	checkRun := `{"name":"x","head_sha":"` + headSHA + `"}`
	deployment := `{"ref":"` + headSHA + `","auto_merge":false,"required_contexts":[]}`

	tests := []struct {
		name, token        string // token request body
		method, path, body string
		status             int
		accepted           string // X-Accepted-GitHub-Permissions (on a 403)
	}{
		{"contents:read reads", `{"permissions":{"contents":"read"},"repositories":["app"]}`,
			"GET", "repos/acme/app/contents/README", "", 200, ""},
		{"contents:read by id reads", `{"permissions":{"contents":"read"},"repository_ids":[` + appID + `]}`,
			"GET", "repos/acme/app/contents/README", "", 200, ""},
		{"contents:read creates no check run", `{"permissions":{"contents":"read"},"repositories":["app"]}`,
			"POST", "repos/acme/app/check-runs", checkRun, 403, "checks=write"},
		{"contents:read lists no check run", `{"permissions":{"contents":"read"},"repositories":["app"]}`,
			"GET", "repos/acme/app/commits/" + headSHA + "/check-runs", "", 403, "checks=read"},
		{"contents:read creates no deployment", `{"permissions":{"contents":"read"},"repositories":["app"]}`,
			"POST", "repos/acme/app/deployments", deployment, 403, "deployments=write"},
		{"contents:read comments not", `{"permissions":{"contents":"read"},"repositories":["app"]}`,
			"POST", "repos/acme/app/issues/1/comments", `{"body":"hi"}`, 403, "issues=write; pull_requests=write"},
		{"contents:read sees no other repository", `{"permissions":{"contents":"read"},"repositories":["app"]}`,
			"GET", "repos/acme/site/contents/README", "", 404, ""},
		{"by id sees no other repository", `{"permissions":{"contents":"read"},"repository_ids":[` + appID + `]}`,
			"GET", "repos/acme/site/contents/README", "", 404, ""},
		{"checks:write creates a check run", `{"permissions":{"checks":"write"},"repositories":["app"]}`,
			"POST", "repos/acme/app/check-runs", checkRun, 201, ""},
		{"checks:write reads no contents", `{"permissions":{"checks":"write"},"repositories":["app"]}`,
			"GET", "repos/acme/app/contents/README", "", 403, "contents=read"},
		{"checks:write on app writes not on site", `{"permissions":{"checks":"write"},"repositories":["app"]}`,
			"POST", "repos/acme/site/check-runs", checkRun, 404, ""},
		{"pull_requests:write comments", `{"permissions":{"pull_requests":"write"}}`,
			"POST", "repos/acme/site/issues/1/comments", `{"body":"hi"}`, 201, ""},
		{"metadata only asks permissions", `{"permissions":{"metadata":"read"},"repositories":["app"]}`,
			"GET", "repos/acme/app/collaborators/octocat/permission", "", 200, ""},
		{"members:read only sees no contents", `{"permissions":{"members":"read"}}`,
			"GET", "repos/acme/app/contents/README", "", 403, "contents=read"},
		{"members:read sees teams", `{"permissions":{"members":"read"}}`,
			"GET", "orgs/acme/teams/release/memberships/octocat", "", 200, ""},
		{"contents:read sees no teams", `{"permissions":{"contents":"read"}}`,
			"GET", "orgs/acme/teams/release/memberships/octocat", "", 403, "members=read"},
		{"not narrowed: every permission", `{}`,
			"POST", "repos/acme/site/check-runs", checkRun, 201, ""},
	}
	s.SetPermission("acme", "app", "octocat", "write")
	s.AddTeamMember("acme", "release", "octocat")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, status := narrowedToken(t, s, tt.token)
			if status != http.StatusCreated {
				t.Fatalf("token request %s: status %d", tt.token, status)
			}
			got, body, header := doHeader(t, tt.method, s.URL()+tt.path, "token "+tok, tt.body)
			if got != tt.status {
				t.Fatalf("%s %s: status %d (%s), want %d", tt.method, tt.path, got, body, tt.status)
			}
			if tt.status == http.StatusForbidden {
				var e struct{ Message string }
				_ = json.Unmarshal(body, &e)
				if e.Message != "Resource not accessible by integration" {
					t.Errorf("message %q, want GitHub's", e.Message)
				}
			}
			if h := header.Get("X-Accepted-GitHub-Permissions"); h != tt.accepted {
				t.Errorf("X-Accepted-GitHub-Permissions %q, want %q", h, tt.accepted)
			}
		})
	}
	s.AssertNoErrors(t)
}

// Token requests are recorded as sent, and refused as GitHub refuses them.
func TestTokenRequestsAreRecordedAndChecked(t *testing.T) {
	s := newServer(t)
	s.SetInstallationPermissions(1, map[string]string{"contents": "read", "checks": "write", "metadata": "read"})
	s.SetRepoID("acme", "app", 186853002) // as a webhook payload names it
	libID := s.RepoID("other", "lib")     // installation 2's
	tests := []struct {
		body   string
		status int
		want   githubtest.TokenRequest
	}{
		{"", 201, githubtest.TokenRequest{}},
		{`{"permissions":{"checks":"write"},"repositories":["app"]}`, 201,
			githubtest.TokenRequest{Permissions: map[string]string{"checks": "write"}, Repositories: []string{"app"}}},
		{`{"permissions":{"checks":"read"}}`, 201, // less than granted
			githubtest.TokenRequest{Permissions: map[string]string{"checks": "read"}}},
		{`{"permissions":{"deployments":"write"}}`, 422, // not granted
			githubtest.TokenRequest{Permissions: map[string]string{"deployments": "write"}}},
		{`{"permissions":{"contents":"write"}}`, 422, // more than granted
			githubtest.TokenRequest{Permissions: map[string]string{"contents": "write"}}},
		{`{"repository_ids":[186853002]}`, 201,
			githubtest.TokenRequest{RepositoryIDs: []int64{186853002}}},
		{`{"repositories":["nope"]}`, 422,
			githubtest.TokenRequest{Repositories: []string{"nope"}}},
		{`{"repositories":["lib"]}`, 422, // other/lib: not the installation's account
			githubtest.TokenRequest{Repositories: []string{"lib"}}},
		{`{"repository_ids":[` + strconv.FormatInt(libID, 10) + `]}`, 422,
			githubtest.TokenRequest{RepositoryIDs: []int64{libID}}},
	}
	var want []githubtest.TokenRequest
	for _, tt := range tests {
		if _, status := narrowedToken(t, s, tt.body); status != tt.status {
			t.Errorf("token request %q: status %d, want %d", tt.body, status, tt.status)
		}
		w := tt.want
		w.Installation, w.Status = 1, tt.status
		want = append(want, w)
	}
	if diff := cmp.Diff(want, s.TokenRequests()); diff != "" {
		t.Errorf("TokenRequests (-want +got):\n%s", diff)
	}
	// What a token was given is in the answer, metadata: read included.
	_, body := do(t, "POST", s.URL()+"app/installations/1/access_tokens", "Bearer "+validJWT(t), `{"permissions":{"checks":"write"},"repositories":["app"]}`)
	var got struct {
		Permissions map[string]string `json:"permissions"`
		Selection   string            `json:"repository_selection"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	wantGot := struct {
		Permissions map[string]string `json:"permissions"`
		Selection   string            `json:"repository_selection"`
	}{map[string]string{"checks": "write", "metadata": "read"}, "selected"}
	if diff := cmp.Diff(wantGot, got); diff != "" {
		t.Errorf("token answer (-want +got):\n%s", diff)
	}
	s.AssertNoErrors(t)
}
