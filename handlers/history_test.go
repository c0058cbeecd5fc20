package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/web"
	"github.com/stagehand-dev/stagehand/state"
)

// TestEnvironmentHistoryAfterPromotion: a push's stage-only build,
// promoted by mallory and approved by alice and bob under a quorum of two,
// all through webhooks, is in the history of both environments: who
// pushed, who promoted, who approved, the build and its artifact set,
// which can still be restored.
func TestEnvironmentHistoryAfterPromotion(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [alice, bob, carol], required: 2}\n"))
	e.promotedAndWaiting()
	for _, who := range []string{"alice", "bob"} {
		if reply := e.comment(who, "/stagehand approve 2"); !strings.HasPrefix(reply.Body, "✅") {
			t.Fatalf("%s's approval was answered %q", who, reply.Body)
		}
	}
	e.waitState(2, bot.ExecutionSucceeded)
	one, _ := e.execution(1)
	two, _ := e.execution(2)

	history := e.apiHistory
	ignore := cmpopts.IgnoreFields(web.APIEnvironmentDeployment{}, "StartedAt", "FinishedAt", "Message")
	path := func(n string) string { return "/programs/" + owner + "/" + repo + "/executions/" + n }

	want := web.APIEnvironmentDeployments{Environment: "production", Deployments: []web.APIEnvironmentDeployment{{
		ExecutionNumber: 2, Pipeline: "prod-only", Commit: one.Commit, ArtifactDigest: one.ArtifactDigest, BuildNumber: 1,
		Cause: "promotion", TriggeredBy: "mallory", Outcome: "succeeded", BuildState: "succeeded", Artifacts: "kept", Restorable: true, HTMLPath: path("2"),
		Approval: &web.APIQuorum{Required: 2, Approvals: 2, Approvers: []string{"alice", "bob"}, Summary: "2 of 2 approvals: @alice, @bob"},
	}}}
	if diff := cmp.Diff(want, history("production"), ignore); diff != "" {
		t.Errorf("production's history (-want +got):\n%s", diff)
	}
	want = web.APIEnvironmentDeployments{Environment: "stage", Deployments: []web.APIEnvironmentDeployment{{
		ExecutionNumber: 1, Pipeline: "stage-only", Commit: one.Commit, ArtifactDigest: one.ArtifactDigest, BuildNumber: 1,
		Cause: "push", TriggeredBy: "Codertocat", Outcome: "succeeded", BuildState: "succeeded", Artifacts: "kept", Restorable: true, HTMLPath: path("1"),
	}}}
	if diff := cmp.Diff(want, history("stage"), ignore); diff != "" {
		t.Errorf("stage's history (-want +got):\n%s", diff)
	}
	if two.ArtifactDigest != one.ArtifactDigest || one.ArtifactDigest == "" {
		t.Errorf("prod-only #2 deployed %q, its source built %q", two.ArtifactDigest, one.ArtifactDigest)
	}
	if got := history("production").Deployments[0]; got.StartedAt.IsZero() || got.FinishedAt == nil || got.FinishedAt.Before(got.StartedAt) {
		t.Errorf("production's deploy ran from %v to %v", got.StartedAt, got.FinishedAt)
	}
}

// apiHistory reads an environment's history through the dashboard's API.
func (e *surfaceEnv) apiHistory(env string) web.APIEnvironmentDeployments {
	e.t.Helper()
	arts, err := state.OpenArtifacts(filepath.Join(e.dataDir, "artifacts"))
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&web.Dashboard{Store: e.store, Artifacts: arts, Public: true}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/programs/" + owner + "/" + repo + "/environments/" + env + "/deployments")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out web.APIEnvironmentDeployments
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET the %s history: %d, %v", env, resp.StatusCode, err)
	}
	return out
}
