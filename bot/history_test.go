package bot

import (
	"testing"

	"github.com/google/go-cmp/cmp"
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
