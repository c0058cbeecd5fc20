package bot

import (
	"context"
	"time"
)

// Store keeps Stagehand's state: both stores (package state) implement it.
// Every change happens inside Update, whose function runs in one
// transaction: the rules are decided from what the transaction reads and
// recorded by what it writes, so they hold across goroutines, restarts and
// replicas. An error returned by fn rolls back.
type Store interface {
	Transactor
	Ping(ctx context.Context) error
	Close() error
}

// Transactor runs functions in transactions; what a role that reads and
// writes holds.
type Transactor interface {
	Viewer
	Update(ctx context.Context, fn func(tx Tx) error) error
}

// Viewer runs functions in read-only transactions; what a role that only
// reads holds.
type Viewer interface {
	View(ctx context.Context, fn func(tx Tx) error) error
}

// Tx is what a transaction can read and write: the union of the groups
// below, which the roles take what they need from (the engine's EngineTx,
// and the handlers' own interfaces). Getters return ErrNotFound (wrapped)
// when nothing matches.
type Tx interface {
	DeliveryTx
	RepositoryTx
	ProgramReader
	ExecutionReader
	ExecutionWriter
	ReportTx
	SessionTx
	HistoryReader
	PruneTx
	AuditTx
	NotifyTx
}

// DeliveryTx records which webhook deliveries were handled, which went to
// the poison queue, and which automatic redelivery asked GitHub for again.
type DeliveryTx interface {
	// MarkDelivery records that a delivery has been processed. It returns
	// false, and changes nothing, when the GUID was recorded before.
	MarkDelivery(ctx context.Context, d Delivery) (fresh bool, err error)
	DeliveryProcessed(ctx context.Context, guid string) (bool, error)
	// MarkPoisoned records (or, for a GUID poisoned before, replaces) that
	// a delivery went to the poison queue.
	MarkPoisoned(ctx context.Context, p PoisonedDelivery) error
	// DeliveryRecord says whether a GUID was processed or poisoned; an
	// unknown GUID gives the zero record, not an error.
	DeliveryRecord(ctx context.Context, guid string) (DeliveryRecord, error)
	// MarkRedeliveryRequested records that automatic redelivery asked
	// GitHub to send r.GUID again, naming attempt r.DeliveryID. It returns
	// false, and changes nothing, when a request naming that attempt or a
	// later one of the GUID was recorded before: Stagehand asks once per
	// failed attempt, and asks again only after GitHub's redelivery failed
	// too (a later attempt).
	MarkRedeliveryRequested(ctx context.Context, r RedeliveryRequest) (fresh bool, err error)
}

// RepositoryTx is what the webhook handlers record of installations,
// repositories and pushes.
type RepositoryTx interface {
	PutInstallation(ctx context.Context, inst Installation) error
	Installation(ctx context.Context, id int64) (Installation, error)
	DeleteInstallation(ctx context.Context, id int64) error

	// EnsureProgram returns the program of repository r, creating it as
	// needed, and clears its Removed. With r.ID set it is the program of
	// that GitHub id, its installation, owner, name and default branch
	// updated to the non-empty values given (a rename or transfer keeps the
	// program and its history). A program under r's name with no id yet
	// adopts r.ID; one under another id belonged to a repository that was
	// deleted: it keeps its history, gives up the name and is marked
	// Removed, and r gets a new program. With r.ID zero the program is the
	// one holding r's name.
	EnsureProgram(ctx context.Context, installationID int64, r Repository) (Program, error)
	SetProgramRemoved(ctx context.Context, id int64, removed bool) error

	AddTriggerRecord(ctx context.Context, r TriggerRecord) error
	TriggerRecords(ctx context.Context, programID int64, commit string) ([]TriggerRecord, error)
}

// ProgramReader reads programs and their pipelines.
type ProgramReader interface {
	Program(ctx context.Context, id int64) (Program, error)
	// ProgramByGitHubID returns the program of a GitHub repository id.
	ProgramByGitHubID(ctx context.Context, id int64) (Program, error)
	// ProgramByName returns the program that holds the name owner/repo
	// (ignoring case, as GitHub does).
	ProgramByName(ctx context.Context, owner, repo string) (Program, error)
	Programs(ctx context.Context) ([]Program, error)
	Pipelines(ctx context.Context, programID int64) ([]Pipeline, error)
	// LatestPolicy is the newest valid policy seen at a head of the
	// program's default branch (SetLatestPolicy): its Branch, Commit and
	// Raw, Config nil. The zero Policy when none was recorded.
	LatestPolicy(ctx context.Context, programID int64) (Policy, error)
}

// ExecutionReader reads executions and what hangs off them.
type ExecutionReader interface {
	Execution(ctx context.Context, id int64) (Execution, error)
	ExecutionByNumber(ctx context.Context, programID int64, number int) (Execution, error)
	// Executions lists a program's executions, newest first, filtered by
	// the non-zero fields of f.
	Executions(ctx context.Context, f ExecutionFilter) ([]Execution, error)
	Steps(ctx context.Context, executionID int64) ([]Step, error)
	Events(ctx context.Context, executionID int64) ([]Event, error)
	// Deployment returns what runs on an environment (ErrNotFound: nothing yet).
	Deployment(ctx context.Context, programID int64, env EnvironmentName) (Deployment, error)
	// Variables returns the variables set with /stagehand env set (not the
	// configuration file's), an empty map when none.
	Variables(ctx context.Context, programID int64, env EnvironmentName) (map[string]string, error)
}

// ExecutionWriter is how the engine's rules change a program's state.
type ExecutionWriter interface {
	// LockProgram serialises transactions that decide rules for one program
	// (B, C, E): on a database with row locks it locks the program's row
	// until the transaction ends. SQLite's write transactions are already
	// serial; there it only checks the program exists.
	LockProgram(ctx context.Context, programID int64) error
	// SetPipelines replaces a program's pipelines.
	SetPipelines(ctx context.Context, programID int64, ps []Pipeline) error
	// SetLatestPolicy records p, a valid file read at a head of the
	// program's default branch (Branch, Commit and Raw set), as its latest
	// policy, replacing the one before. Only a default-branch head's valid
	// file may be recorded: the deploy calendar gate holds every waiting
	// execution to its windows and freezes.
	SetLatestPolicy(ctx context.Context, programID int64, p Policy) error
	// CreateExecution stores e with the next number of its program and
	// returns it with ID and Number set. Its steps are created pending.
	CreateExecution(ctx context.Context, e Execution) (Execution, error)
	UpdateExecution(ctx context.Context, e Execution) error
	UpdateStep(ctx context.Context, s Step) error
	AddEvent(ctx context.Context, ev Event) error
	SetDeployment(ctx context.Context, d Deployment) error
	SetVariable(ctx context.Context, programID int64, env EnvironmentName, key, value string) error
	UnsetVariable(ctx context.Context, programID int64, env EnvironmentName, key string) error
}

// ReportTx is the GitHub reporter's bookkeeping: which versions of which
// executions are on GitHub, under which GitHub ids, and who reports.
type ReportTx interface {
	// ExecutionsToReport lists executions whose Version is ahead of their
	// ReportedVersion, oldest change first, at most limit.
	ExecutionsToReport(ctx context.Context, limit int) ([]Execution, error)
	// MarkReported records that version was brought to GitHub; it never
	// moves ReportedVersion backwards.
	MarkReported(ctx context.Context, executionID, version int64) error
	// Touch bumps an execution's Version so the reporter looks at it again
	// (for example to remove an old Promote Build button).
	Touch(ctx context.Context, executionID int64) error
	GitHubRefs(ctx context.Context, executionID int64) ([]GitHubRef, error)
	// PutGitHubRef inserts or replaces the ref of (ExecutionID, Key).
	PutGitHubRef(ctx context.Context, r GitHubRef) error
	// AcquireLease gives the lease called name to holder until now+ttl, and
	// reports true, when no one holds it, holder holds it already (a
	// renewal), or it expired at or before now; otherwise it changes
	// nothing and reports false. Of replicas racing for one lease at most
	// one wins. Leases let one replica do a job the others must not do at
	// the same time (the GitHub reporter); now comes from the caller's
	// clock, so the replicas' clocks must roughly agree.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}

// SessionTx keeps the dashboard's sign-in sessions.
type SessionTx interface {
	// PutSession stores s, replacing the session of the same ID.
	PutSession(ctx context.Context, s Session) error
	// Session returns the session of that ID, expired or not.
	Session(ctx context.Context, id string) (Session, error)
	// DeleteSession removes a session; removing one that is not there is
	// not an error (signing out twice changes nothing).
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions removes the sessions whose ExpiresAt is at or
	// before now and says how many there were.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// ExecutionFilter selects executions. Zero fields match everything.
type ExecutionFilter struct {
	ProgramID int64
	Pipeline  PipelineKind
	States    []ExecutionState
	Limit     int
}

// ActiveStates are the states of executions that are not over.
var ActiveStates = []ExecutionState{ExecutionQueued, ExecutionRunning, ExecutionWaiting}

// Clock tells the time; tests inject their own.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
