package bot

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestEnvironmentDeploymentApproval(t *testing.T) {
	approved := func(actor, detail string) Event { return Event{Actor: actor, Kind: EventApproved, Detail: detail} }
	tests := []struct {
		name      string
		d         EnvironmentDeployment
		want      QuorumState
		wantBack  bool
		wantBuild int
	}{
		{"stage: no approval gate", EnvironmentDeployment{Environment: Stage, Number: 3, Approvals: []Event{approved("alice", "")}},
			QuorumState{}, false, 3},
		{"production without approvals", EnvironmentDeployment{Environment: Production, Number: 4, SourceNumber: 2},
			QuorumState{Required: 1}, false, 2},
		{"one approval, no quorum", EnvironmentDeployment{Environment: Production, Number: 5, Approvals: []Event{approved("alice", "")}},
			QuorumState{Required: 1, Approvers: []string{"alice"}}, false, 5},
		{"a quorum of two", EnvironmentDeployment{Environment: Production, Approvals: []Event{
			approved("alice", "1 of 2 approvals: @alice"), approved("bob", "2 of 2 approvals: @alice, @bob")}},
			QuorumState{Required: 2, Approvers: []string{"alice", "bob"}}, false, 0},
		{"a rollback approval counts", EnvironmentDeployment{Environment: Production, Approvals: []Event{
			{Actor: "dave", Kind: EventApprovedRollback, Detail: "words that are no quorum"}}},
			QuorumState{Required: 1, Approvers: []string{"dave"}}, true, 0},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.d.Approval()); diff != "" {
			t.Errorf("%s: Approval (-want +got):\n%s", tt.name, diff)
		}
		if got := tt.d.RolledBack(); got != tt.wantBack {
			t.Errorf("%s: RolledBack = %v, want %v", tt.name, got, tt.wantBack)
		}
		if got := tt.d.Build(); got != tt.wantBuild {
			t.Errorf("%s: Build = %d, want %d", tt.name, got, tt.wantBuild)
		}
	}
}

func TestDeployStepOf(t *testing.T) {
	for env, want := range map[EnvironmentName]StepName{Stage: StepDeployStage, Production: StepDeployProduction, "qa": ""} {
		if got := DeployStepOf(env); got != want {
			t.Errorf("DeployStepOf(%q) = %q, want %q", env, got, want)
		}
	}
}

func TestRetentionKeepRestorable(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	old := now.Add(-90 * 24 * time.Hour)
	execs := []Execution{
		{ID: 1, Number: 1, Pipeline: StageOnly, State: ExecutionSucceeded, ArtifactDigest: "a", FinishedAt: old},
		{ID: 2, Number: 2, Pipeline: StageOnly, State: ExecutionSucceeded, ArtifactDigest: "b", FinishedAt: old},
		{ID: 3, Number: 3, Pipeline: StageOnly, State: ExecutionSucceeded, ArtifactDigest: "c", FinishedAt: old},
	}
	// Newest first: c deployed and failed, then b, then a.
	production := []EnvironmentDeployment{
		{Environment: Production, ArtifactDigest: "c", Outcome: StepFailed},
		{Environment: Production, ArtifactDigest: "b", Outcome: StepSucceeded},
		{Environment: Production, ArtifactDigest: "a", Outcome: StepSucceeded},
	}
	for _, tt := range []struct {
		keepDeployed int
		want         []string
	}{
		{0, nil},
		{1, []string{"c"}},
		{2, []string{"b", "c"}},
		{10, []string{"a", "b", "c"}},
	} {
		r := Retention{Age: 30 * 24 * time.Hour, KeepDeployed: tt.keepDeployed}
		plan := r.Plan(now, execs, nil)
		r.KeepRestorable(plan, production)
		got := slices.Sorted(maps.Keys(plan.Keep))
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("KeepDeployed %d: kept (-want +got):\n%s", tt.keepDeployed, diff)
		}
	}
	if DefaultRetention.KeepDeployed != 10 {
		t.Errorf("DefaultRetention.KeepDeployed = %d, want 10", DefaultRetention.KeepDeployed)
	}
}
