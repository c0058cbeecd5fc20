package bot

import (
	"context"
	"fmt"
	"time"
)

// HistoryReader reads an environment's history: every deploy that ran
// there, newest first, a page at a time.
type HistoryReader interface {
	// EnvironmentHistory lists the deploys of q.Environment of program
	// q.ProgramID that started (a deploy step a worker was given: running,
	// succeeded, failed, or cancelled after its command started), newest
	// first (by the step's start, then the execution id), at most q.Limit,
	// each with its execution's approvals.
	EnvironmentHistory(ctx context.Context, q HistoryQuery) ([]EnvironmentDeployment, error)
}

// HistoryQuery selects a page of an environment's history.
type HistoryQuery struct {
	ProgramID   int64
	Environment EnvironmentName
	// Before selects the deploys older than that position (the next page
	// down); After the ones newer than it (the page above), still listed
	// newest first: the Limit deploys just above it. At most one is set;
	// with neither the page starts at the newest.
	Before, After HistoryPosition
	Limit         int
}

// HistoryPosition is a deploy's place in its environment's history: the
// start of its deploy step, then its execution's id.
type HistoryPosition struct {
	StartedAt   time.Time
	ExecutionID int64
}

// IsZero reports whether p names no position.
func (p HistoryPosition) IsZero() bool { return p.ExecutionID == 0 && p.StartedAt.IsZero() }

// EnvironmentDeployment is one deploy of an environment: the deploy step of
// one execution, with what it deployed and who let it.
type EnvironmentDeployment struct {
	Environment EnvironmentName
	ExecutionID int64
	Number      int
	Pipeline    PipelineKind
	Commit      string
	// ArtifactDigest is the set deployed: the execution's own build, or
	// (prod-only) its source's.
	ArtifactDigest string
	// SourceNumber is, for a prod-only execution, the number of the
	// stage-only execution whose build it deploys; 0 otherwise.
	SourceNumber int
	// BuildState is the state of the execution that built what d
	// deployed (Build): only a build whose execution succeeded can be
	// restored.
	BuildState  ExecutionState
	Cause       Cause
	TriggeredBy string // who pushed, started or promoted the execution
	// Outcome is the deploy step's state: running, succeeded, failed or
	// cancelled; Message its words.
	Outcome    StepState
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time // zero while it runs
	// Approvals are the execution's approval events (approved, approved
	// rollback), in the order they were given.
	Approvals []Event
}

// Position is d's place in its environment's history.
func (d EnvironmentDeployment) Position() HistoryPosition {
	return HistoryPosition{StartedAt: d.StartedAt, ExecutionID: d.ExecutionID}
}

// Build is the number of the execution that built what d deployed: its
// source for a prod-only execution, else its own.
func (d EnvironmentDeployment) Build() int {
	if d.SourceNumber != 0 {
		return d.SourceNumber
	}
	return d.Number
}

// Approval is who let a production deploy run: the distinct approvers in
// order and the quorum the last approval counted towards (approvers.required
// as it was then; 1 without a quorum). A stage deploy has no approval gate:
// the zero QuorumState.
func (d EnvironmentDeployment) Approval() QuorumState {
	if d.Environment != Production {
		return QuorumState{}
	}
	required := 1
	for _, ev := range d.Approvals {
		if n, ok := quorumOfDetail(ev.Detail); ok {
			required = n
		}
	}
	return QuorumOf(required, d.Approvals)
}

// RolledBack reports whether d was approved as a rollback (rule G).
func (d EnvironmentDeployment) RolledBack() bool {
	for _, ev := range d.Approvals {
		if ev.Kind == EventApprovedRollback {
			return true
		}
	}
	return false
}

// quorumOfDetail reads the quorum from an approval event's detail, which
// is QuorumState.String ("1 of 2 approvals: @alice") when a quorum was
// needed and "" otherwise.
func quorumOfDetail(detail string) (int, bool) {
	var got, required int
	if _, err := fmt.Sscanf(detail, "%d of %d approvals", &got, &required); err != nil || required < 1 {
		return 0, false
	}
	return required, true
}

// DeployStepOf is the step that deploys to env ("" for an environment no
// step deploys to).
func DeployStepOf(env EnvironmentName) StepName {
	for _, k := range StepKinds {
		if k.Deploy && k.Environment == env {
			return k.Name
		}
	}
	return ""
}

// ApprovalEventKinds are the kinds of event an approval is recorded as.
var ApprovalEventKinds = []EventKind{EventApproved, EventApprovedRollback}
