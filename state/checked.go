package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// storeTx is a store's own transaction (sqliteTx, postgresTx): the SQL of
// bot.Tx, and what checkedTx asks of it.
type storeTx interface {
	bot.Tx
	// now is the store's time for the values it stamps itself.
	now() time.Time
	// requireProgram returns ErrNotFound unless the program exists; in a
	// Postgres Update it locks the program's row.
	requireProgram(ctx context.Context, id int64) error
	// requireExecution returns ErrNotFound unless the execution exists; in
	// a Postgres Update it locks the execution's program.
	requireExecution(ctx context.Context, id int64) error
	// executionProgram returns the program of an execution, or
	// ErrNotFound; it locks nothing.
	executionProgram(ctx context.Context, id int64) (int64, error)
	// bumpVersion bumps the Version of an execution (the reporter looks
	// at it again), or returns ErrNotFound.
	bumpVersion(ctx context.Context, id int64) error
}

// checkedTx is the bot.Tx both stores hand to Update and View. It checks
// what a method is given, and that what it refers to exists, the same way
// for both stores; it fills in the times a store stamps when they are zero;
// and it leaves the SQL to the store's own transaction, whose methods take
// only arguments that passed. The methods it does not override go straight
// to the store.
type checkedTx struct {
	storeTx
}

var _ bot.Tx = checkedTx{}

func (t checkedTx) MarkDelivery(ctx context.Context, d bot.Delivery) (bool, error) {
	if d.GUID == "" {
		return false, errors.New("mark delivery: empty GUID")
	}
	if d.ProcessedAt.IsZero() {
		d.ProcessedAt = t.now()
	}
	return t.storeTx.MarkDelivery(ctx, d)
}

func (t checkedTx) MarkPoisoned(ctx context.Context, p bot.PoisonedDelivery) error {
	if p.GUID == "" {
		return errors.New("mark poisoned delivery: empty GUID")
	}
	if p.PoisonedAt.IsZero() {
		p.PoisonedAt = t.now()
	}
	return t.storeTx.MarkPoisoned(ctx, p)
}

func (t checkedTx) MarkRedeliveryRequested(ctx context.Context, r bot.RedeliveryRequest) (bool, error) {
	if r.GUID == "" {
		return false, errors.New("record a redelivery request: empty GUID")
	}
	if r.RequestedAt.IsZero() {
		r.RequestedAt = t.now()
	}
	return t.storeTx.MarkRedeliveryRequested(ctx, r)
}

func (t checkedTx) PutInstallation(ctx context.Context, inst bot.Installation) error {
	if inst.ID == 0 {
		return errors.New("put installation: zero ID")
	}
	if inst.UpdatedAt.IsZero() {
		inst.UpdatedAt = t.now()
	}
	return t.storeTx.PutInstallation(ctx, inst)
}

func (t checkedTx) EnsureProgram(ctx context.Context, installationID int64, r bot.Repository) (bot.Program, error) {
	if r.Owner == "" || r.Name == "" {
		return bot.Program{}, fmt.Errorf("ensure program %q/%q: empty owner or repository", r.Owner, r.Name)
	}
	return t.storeTx.EnsureProgram(ctx, installationID, r)
}

// SetPipelines replaces the program's pipelines with ps. A pipeline's
// ProgramID may be zero; it is taken from programID.
func (t checkedTx) SetPipelines(ctx context.Context, programID int64, ps []bot.Pipeline) error {
	for _, p := range ps {
		if p.ProgramID != 0 && p.ProgramID != programID {
			return fmt.Errorf("set pipelines of program %d: %s belongs to program %d", programID, p.Kind, p.ProgramID)
		}
	}
	if err := t.requireProgram(ctx, programID); err != nil {
		return fmt.Errorf("set pipelines: %w", err)
	}
	return t.storeTx.SetPipelines(ctx, programID, ps)
}

// SetLatestPolicy records p as the program's latest policy: a valid file
// read at a head of the default branch, so Branch, Commit and Raw are set.
func (t checkedTx) SetLatestPolicy(ctx context.Context, programID int64, p bot.Policy) error {
	if p.Branch == "" || p.Commit == "" || len(p.Raw) == 0 {
		return fmt.Errorf("set the latest policy of program %d: branch %q, commit %q and a file of %d bytes: all three are needed", programID, p.Branch, p.Commit, len(p.Raw))
	}
	if err := t.requireProgram(ctx, programID); err != nil {
		return fmt.Errorf("set the latest policy: %w", err)
	}
	return t.storeTx.SetLatestPolicy(ctx, programID, p)
}

// LatestPolicy returns the program's latest policy (Config nil), the zero
// Policy when none was recorded.
func (t checkedTx) LatestPolicy(ctx context.Context, programID int64) (bot.Policy, error) {
	if err := t.requireProgram(ctx, programID); err != nil {
		return bot.Policy{}, fmt.Errorf("the latest policy: %w", err)
	}
	return t.storeTx.LatestPolicy(ctx, programID)
}

// CreateExecution stores e as the next execution of its program, with one
// pending step per bot.StepsOf(e.Pipeline); the store chooses the number
// inside the transaction, so two creations never share one. A zero
// CreatedAt becomes the store's clock time. An empty Config or Policy is
// kept as none and comes back nil. The store owns Version and
// ReportedVersion: the new execution has Version 1 and ReportedVersion 0,
// whatever e says, so the reporter sees it.
func (t checkedTx) CreateExecution(ctx context.Context, e bot.Execution) (bot.Execution, error) {
	if len(bot.StepsOf(e.Pipeline)) == 0 {
		return bot.Execution{}, fmt.Errorf("create execution: unknown pipeline kind %q", e.Pipeline)
	}
	if err := t.requireProgram(ctx, e.ProgramID); err != nil {
		return bot.Execution{}, fmt.Errorf("create execution: %w", err)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = t.now()
	}
	e, err := t.storeTx.CreateExecution(ctx, e)
	if err != nil {
		return bot.Execution{}, err
	}
	if len(e.Config) == 0 {
		e.Config = nil // as it reads back
	}
	if len(e.Policy) == 0 {
		e.Policy = nil
	}
	e.Version, e.ReportedVersion = 1, 0
	return e, nil
}

// checkEnvironment refuses a name other than bot.Stage and bot.Production.
func checkEnvironment(env bot.EnvironmentName) error {
	if env != bot.Stage && env != bot.Production {
		return fmt.Errorf("unknown environment %q: want %q or %q", env, bot.Stage, bot.Production)
	}
	return nil
}

func (t checkedTx) Deployment(ctx context.Context, programID int64, env bot.EnvironmentName) (bot.Deployment, error) {
	if err := checkEnvironment(env); err != nil {
		return bot.Deployment{}, fmt.Errorf("deployment of program %d: %w", programID, err)
	}
	return t.storeTx.Deployment(ctx, programID, env)
}

// SetDeployment records d as what runs on d.Environment of d.ProgramID,
// replacing what ran there before. d.ExecutionID, when not zero, must be an
// execution of that program.
func (t checkedTx) SetDeployment(ctx context.Context, d bot.Deployment) error {
	if err := checkEnvironment(d.Environment); err != nil {
		return fmt.Errorf("set deployment of program %d: %w", d.ProgramID, err)
	}
	if err := t.requireProgram(ctx, d.ProgramID); err != nil {
		return fmt.Errorf("set deployment: %w", err)
	}
	if d.ExecutionID != 0 {
		// The program is locked, and an execution's program never changes:
		// a plain read will do.
		programID, err := t.executionProgram(ctx, d.ExecutionID)
		if err != nil {
			return fmt.Errorf("set deployment of program %d to %s: %w", d.ProgramID, d.Environment, err)
		}
		if programID != d.ProgramID {
			return fmt.Errorf("set deployment of program %d to %s: execution %d belongs to program %d",
				d.ProgramID, d.Environment, d.ExecutionID, programID)
		}
	}
	return t.storeTx.SetDeployment(ctx, d)
}

// Variables returns the variables of one environment of a program, an empty
// map when it has none (or there is no such program).
func (t checkedTx) Variables(ctx context.Context, programID int64, env bot.EnvironmentName) (map[string]string, error) {
	if err := checkEnvironment(env); err != nil {
		return nil, fmt.Errorf("variables of program %d: %w", programID, err)
	}
	return t.storeTx.Variables(ctx, programID, env)
}

// SetVariable sets key to value in one environment of a program, replacing
// the value it had.
func (t checkedTx) SetVariable(ctx context.Context, programID int64, env bot.EnvironmentName, key, value string) error {
	if err := checkEnvironment(env); err != nil {
		return fmt.Errorf("set variable %s of program %d: %w", key, programID, err)
	}
	if key == "" {
		return fmt.Errorf("set variable of program %d in %s: empty key", programID, env)
	}
	if err := t.requireProgram(ctx, programID); err != nil {
		return fmt.Errorf("set variable %s: %w", key, err)
	}
	return t.storeTx.SetVariable(ctx, programID, env, key, value)
}

// UnsetVariable removes key from one environment of a program; removing a
// variable that is not set is not an error.
func (t checkedTx) UnsetVariable(ctx context.Context, programID int64, env bot.EnvironmentName, key string) error {
	if err := checkEnvironment(env); err != nil {
		return fmt.Errorf("unset variable %s of program %d: %w", key, programID, err)
	}
	return t.storeTx.UnsetVariable(ctx, programID, env, key)
}

// AddEvent appends ev to its execution's record and bumps the execution's
// Version. A zero At becomes the store's clock time.
func (t checkedTx) AddEvent(ctx context.Context, ev bot.Event) error {
	if ev.Kind == "" {
		return fmt.Errorf("add event to execution %d: empty kind", ev.ExecutionID)
	}
	if err := t.requireExecution(ctx, ev.ExecutionID); err != nil {
		return fmt.Errorf("add event %s: %w", ev.Kind, err)
	}
	if ev.At.IsZero() {
		ev.At = t.now()
	}
	return t.bumpAfter(ctx, t.storeTx.AddEvent(ctx, ev), ev.ExecutionID, fmt.Sprintf("add event %s", ev.Kind))
}

// UpdateStep writes s over the step s.Name of execution s.ExecutionID and
// bumps the execution's Version.
func (t checkedTx) UpdateStep(ctx context.Context, s bot.Step) error {
	return t.bumpAfter(ctx, t.storeTx.UpdateStep(ctx, s), s.ExecutionID, fmt.Sprintf("update step %s", s.Name))
}

// bumpAfter bumps execution id's Version after a write about it that
// succeeded (err nil); what names the write in errors.
func (t checkedTx) bumpAfter(ctx context.Context, err error, id int64, what string) error {
	if err != nil {
		return err
	}
	if err := t.bumpVersion(ctx, id); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// AddTriggerRecord stores r. A zero CreatedAt becomes the store's clock time.
func (t checkedTx) AddTriggerRecord(ctx context.Context, r bot.TriggerRecord) error {
	if err := t.requireProgram(ctx, r.ProgramID); err != nil {
		return fmt.Errorf("add trigger record: %w", err)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = t.now()
	}
	return t.storeTx.AddTriggerRecord(ctx, r)
}

// PutGitHubRef stores r, replacing the ref of (r.ExecutionID, r.Key). It
// does not bump the execution's Version: the reporter writes refs while it
// reports, and must not make its own work.
func (t checkedTx) PutGitHubRef(ctx context.Context, r bot.GitHubRef) error {
	if r.Key == "" {
		return fmt.Errorf("put github ref of execution %d: empty key", r.ExecutionID)
	}
	if err := t.requireExecution(ctx, r.ExecutionID); err != nil {
		return fmt.Errorf("put github ref %s: %w", r.Key, err)
	}
	return t.storeTx.PutGitHubRef(ctx, r)
}

// PutSession stores s, replacing the session of the same ID.
func (t checkedTx) PutSession(ctx context.Context, s bot.Session) error {
	switch {
	case s.ID == "":
		return fmt.Errorf("put session: empty id")
	case s.Login == "":
		return fmt.Errorf("put session %.8s: empty login", s.ID)
	case s.ExpiresAt.IsZero() || s.CreatedAt.IsZero():
		return fmt.Errorf("put session %.8s of %s: zero creation or expiry time", s.ID, s.Login)
	}
	if s.Tokens == nil {
		s.Tokens = []byte{}
	}
	return t.storeTx.PutSession(ctx, s)
}

// AcquireLease gives the lease name to holder until now+ttl when nobody has
// it, holder has it already (a renewal), or it expired at or before now. It
// reports whether holder has the lease.
func (t checkedTx) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	switch {
	case name == "":
		return false, fmt.Errorf("acquire lease: empty name")
	case holder == "":
		return false, fmt.Errorf("acquire lease %s: empty holder", name)
	case now.IsZero():
		return false, fmt.Errorf("acquire lease %s: zero time", name)
	case ttl <= 0:
		return false, fmt.Errorf("acquire lease %s: ttl %s, want a positive one", name, ttl)
	}
	return t.storeTx.AcquireLease(ctx, name, holder, now, ttl)
}
