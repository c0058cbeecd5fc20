package bot

import (
	"context"
	"fmt"
	"time"
)

// Installation is one installation of the GitHub App on an account.
type Installation struct {
	ID        int64
	Account   string
	Suspended bool
	UpdatedAt time.Time
}

// Repository is a GitHub repository as its webhook payloads name it.
type Repository struct {
	ID            int64 // GitHub's immutable repository id; 0 when unknown
	Owner, Name   string
	DefaultBranch string // "" when unknown
}

// Program is one GitHub repository with its environments and pipelines.
// It is keyed by the repository's GitHub id, not its name: a renamed or
// transferred repository keeps its program, and a repository deleted and
// created again under the same name gets a new one.
type Program struct {
	ID             int64
	InstallationID int64
	// GitHubID is the repository's immutable id on GitHub; 0 for a program
	// recorded before Stagehand kept it (it adopts the id of the next
	// repository seen under its name).
	GitHubID      int64
	Owner         string
	Repo          string
	DefaultBranch string // "" until a payload names it
	// Removed: the repository was removed from the installation or
	// deleted, or another repository now holds its name.
	Removed bool
}

// FullName is "owner/repo".
func (p Program) FullName() string { return p.Owner + "/" + p.Repo }

// Pipeline is a program's pipeline as last read from its configuration.
type Pipeline struct {
	ProgramID int64
	Kind      PipelineKind
	PipelineConfig
}

// ExecutionState is the state of an execution.
type ExecutionState string

// The execution states of the specification.
const (
	ExecutionQueued    ExecutionState = "queued"
	ExecutionRunning   ExecutionState = "running"
	ExecutionWaiting   ExecutionState = "waiting"
	ExecutionSucceeded ExecutionState = "succeeded"
	ExecutionFailed    ExecutionState = "failed"
	ExecutionCancelled ExecutionState = "cancelled"
	ExecutionSkipped   ExecutionState = "skipped"
)

// Active reports whether an execution in this state is still going on.
func (s ExecutionState) Active() bool {
	return s == ExecutionQueued || s == ExecutionRunning || s == ExecutionWaiting
}

// StepState is the state of one step.
type StepState string

// The step states of the specification.
const (
	StepPending   StepState = "pending"
	StepRunning   StepState = "running"
	StepWaiting   StepState = "waiting"
	StepSucceeded StepState = "succeeded"
	StepFailed    StepState = "failed"
	StepCancelled StepState = "cancelled"
	StepSkipped   StepState = "skipped"
)

// Cause says how an execution came to be.
type Cause string

// The causes of an execution.
const (
	CausePush      Cause = "push"
	CauseManual    Cause = "manual"
	CausePromotion Cause = "promotion"
	CauseRerun     Cause = "rerun"
	CauseRestore   Cause = "restore" // /stagehand restore production N: a prod-only execution from an earlier build
)

// Execution is one run of a pipeline, pinned to one commit.
type Execution struct {
	ID          int64
	ProgramID   int64
	Number      int // per program: #1, #2, ...
	Pipeline    PipelineKind
	Commit      string
	Branch      string
	State       ExecutionState
	Message     string // why it is in its state, for users
	Cause       Cause
	TriggeredBy string // GitHub login of the pusher or the person who started it
	DeliveryID  string // the webhook delivery that created it, if any
	SourceID    int64  // prod-only: the stage-only execution it promotes
	// Config is the .github/stagehand.yml the execution runs with: read at
	// its commit (prod-only: its source's), kept so a restart or another
	// replica runs exactly the same.
	Config []byte
	// Policy is the default branch's .github/stagehand.yml when the
	// execution was created (SPEC §3): its gates (approval, scheduled),
	// URLs and variables. Config supplies only the commands. Nil for an
	// execution recorded before policy was read from the default branch.
	Policy []byte
	// ArtifactDigest names the artifact set: built by this execution, or
	// (prod-only) its source's.
	ArtifactDigest string
	// ScheduledAt is when a scheduled production deploy may run; zero
	// while no time is set.
	ScheduledAt time.Time
	// Rollback explains, when set, that deploying would roll production
	// back (rule G); approving then needs the explicit rollback approval.
	Rollback string
	// Version counts the changes of the execution and its steps; the
	// store bumps it on every write. ReportedVersion is the version the
	// GitHub reporter last brought to GitHub: while it is behind, the
	// execution's check runs and deployments are out of date.
	Version         int64
	ReportedVersion int64
	CreatedAt       time.Time
	StartedAt       time.Time
	FinishedAt      time.Time
}

// String is "stage-only #4".
func (e Execution) String() string { return fmt.Sprintf("%s #%d", e.Pipeline, e.Number) }

// Step is one step of an execution.
type Step struct {
	ExecutionID int64
	Name        StepName
	State       StepState
	Message     string
	// Attempt counts the times a worker started the step's command. It is
	// recorded before the command starts, so after a crash Stagehand knows
	// a deploy may have run (and never runs it again).
	Attempt int
	// LeaseUntil is when the worker running the step is presumed dead if it
	// has not renewed its lease.
	LeaseUntil time.Time
	LogTail    string // the end of the step's log, for display
	StartedAt  time.Time
	FinishedAt time.Time
}

// Deployment is what runs on an environment of a program.
type Deployment struct {
	ProgramID      int64
	Environment    EnvironmentName
	ExecutionID    int64
	Pipeline       PipelineKind
	Number         int
	Commit         string
	ArtifactDigest string
	Since          time.Time
}

// Event is something a person or Stagehand did to an execution: triggered,
// promoted, approved, rejected, scheduled, cancelled. Kept for the record
// the dashboard and check runs show.
type Event struct {
	ExecutionID int64
	At          time.Time
	Actor       string // GitHub login; "stagehand" for the bot itself
	Kind        EventKind
	Detail      string
}

// TriggerRecord remembers what a push did to one pipeline: the execution it
// queued, or why it did not start one (rule A), so check runs and the
// dashboard can explain it.
type TriggerRecord struct {
	ProgramID   int64
	DeliveryID  string
	Commit      string
	Branch      string
	Pipeline    PipelineKind // empty for a record about the whole push (an invalid config)
	ExecutionID int64        // 0 when nothing started
	// Code and Reason are the push's TriggerReason: its code ("" in
	// records kept before codes were) and its words (TriggerReason.String)
	// as they were said then.
	Code      ReasonCode
	Reason    string
	CreatedAt time.Time
}

// Delivery is a webhook delivery Stagehand has processed.
type Delivery struct {
	GUID        string
	Event       string
	ProcessedAt time.Time
}

// PoisonedDelivery is a webhook delivery that failed after all its retries
// and went to the poison queue. GitHub's "Redeliver" of it is stored and
// handled again.
type PoisonedDelivery struct {
	GUID       string
	Event      string
	Reason     string
	PoisonedAt time.Time
}

// DeliveryRecord is what the store knows of one delivery GUID: when it was
// processed, when it was last poisoned, and when automatic redelivery last
// asked GitHub to send it again (zero times: never) naming which of
// GitHub's attempts (RedeliveryRequestedFor, its delivery id).
type DeliveryRecord struct {
	ProcessedAt            time.Time
	PoisonedAt             time.Time
	PoisonReason           string
	RedeliveryRequestedAt  time.Time
	RedeliveryRequestedFor int64
}

// ReadDeliveryRecord reads what store knows of a delivery GUID. The
// intake and the handler ask it for every delivery, so a store that reads
// one record cheaper than a transaction would (state.SQLite: one prepared
// statement, which reads one snapshot) is asked directly; any other gets a
// View.
func ReadDeliveryRecord(ctx context.Context, store Transactor, guid string) (r DeliveryRecord, err error) {
	if rr, ok := store.(interface {
		DeliveryRecord(ctx context.Context, guid string) (DeliveryRecord, error)
	}); ok {
		return rr.DeliveryRecord(ctx, guid)
	}
	err = store.View(ctx, func(tx Tx) error {
		r, err = tx.DeliveryRecord(ctx, guid)
		return err
	})
	return r, err
}

// RedeliveryRequest records that Stagehand asked GitHub to send a delivery
// again (automatic redelivery: once per failed attempt): the GUID, its
// event, the id of the delivery attempt named in the request (the GUID's
// latest), and GitHub's answer in words ("requested", or why it refused).
type RedeliveryRequest struct {
	GUID        string
	Event       string
	DeliveryID  int64
	Outcome     string
	RequestedAt time.Time
}

// GitHubRef links an execution to something Stagehand made on GitHub: a
// check run of one phase (Key is CheckRunKey(n): a new phase after each
// gate) or the deployment of a deploy step (DeploymentKey). Reported is
// what was last sent (a check run's CheckRunReport, or the deployment's
// last status), so an update is sent only when something changed.
type GitHubRef struct {
	ExecutionID int64
	Key         string
	GitHubID    int64
	Reported    string
}
