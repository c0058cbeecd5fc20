package githubtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoutesAreInTheSpec(t *testing.T) {
	sp := mustSpec()
	for key := range routes {
		if sp.byKey[key] == nil {
			t.Errorf("route %q is not an operation of openapi-subset.json", key)
		}
	}
	if got := len(sp.ops); got != 27 {
		t.Errorf("openapi-subset.json has %d operations, want the 27 of x-subset-operations", got)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		method, path string
		wantOp       string
		wantParams   map[string]string
	}{
		{"GET", "/repos/acme/app/contents/.github/stagehand.yml",
			"GET /repos/{owner}/{repo}/contents/{path}",
			map[string]string{"owner": "acme", "repo": "app", "path": ".github/stagehand.yml"}},
		{"GET", "/repos/acme/app/contents/a%20b.txt",
			"GET /repos/{owner}/{repo}/contents/{path}",
			map[string]string{"owner": "acme", "repo": "app", "path": "a b.txt"}},
		{"GET", "/repos/acme/app/commits/feature/x/check-runs",
			"GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
			map[string]string{"owner": "acme", "repo": "app", "ref": "feature/x"}},
		{"PATCH", "/repos/acme/app/issues/comments/7",
			"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
			map[string]string{"owner": "acme", "repo": "app", "comment_id": "7"}},
		{"POST", "/repos/acme/app/issues/7/comments",
			"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
			map[string]string{"owner": "acme", "repo": "app", "issue_number": "7"}},
		{"POST", "/app/installations/3/access_tokens",
			"POST /app/installations/{installation_id}/access_tokens",
			map[string]string{"installation_id": "3"}},
		{"GET", "/rate_limit", "GET /rate_limit", map[string]string{}},
		{"GET", "/repos/acme/app/check-runs", "", nil},         // only POST is in the subset
		{"GET", "/repos/acme/app/contents/", "", nil},          // {path} needs a segment
		{"DELETE", "/repos/acme/app/installation", "", nil},    // wrong method
		{"GET", "/repos/acme/app/installation/extra", "", nil}, // too long
	}
	sp := mustSpec()
	for _, tt := range tests {
		op, params := sp.match(tt.method, tt.path)
		got := ""
		if op != nil {
			got = op.key
		}
		if diff := cmp.Diff(tt.wantOp, got); diff != "" {
			t.Errorf("match(%s %s) op (-want +got):\n%s", tt.method, tt.path, diff)
		}
		if diff := cmp.Diff(tt.wantParams, params); diff != "" {
			t.Errorf("match(%s %s) params (-want +got):\n%s", tt.method, tt.path, diff)
		}
	}
}
