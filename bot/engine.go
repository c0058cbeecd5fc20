package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Job asks a step worker to run a step of an execution. Jobs are only a
// nudge: the step's state in the store says whether there is anything to
// do, so a job delivered twice, late or after a crash is harmless.
type Job struct {
	ExecutionID int64    `json:"execution_id"`
	Step        StepName `json:"step"`
	// Dispatch tells dispatches of the same step apart; a broker may drop
	// a second job with the same ID() as a duplicate.
	Dispatch string `json:"dispatch"`
}

// ID is unique per dispatch of a step.
func (j Job) ID() string {
	return fmt.Sprintf("job-%d-%s-%s", j.ExecutionID, j.Step, j.Dispatch)
}

func jobFor(ex int64, s Step) Job {
	return Job{ExecutionID: ex, Step: s.Name, Dispatch: fmt.Sprintf("%d.%d", s.Attempt, s.LeaseUntil.UnixMicro())}
}

// JobPublisher hands jobs to the step workers (any replica).
type JobPublisher interface {
	PublishJob(ctx context.Context, j Job) error
}

// Source reads a program's repository.
type Source interface {
	// HeadCommit returns the commit a branch points to.
	HeadCommit(ctx context.Context, prog Program, branch string) (string, error)
	// ReadConfig returns .github/stagehand.yml at a commit (ErrNotFound
	// wrapped when it has none).
	ReadConfig(ctx context.Context, prog Program, commit string) ([]byte, error)
}

// EngineTx is what the engine reads and writes in its transactions: its
// commands, advance, step claims and the queueing of push starts. Its
// functions take an EngineTx, never the whole Tx.
type EngineTx interface {
	ExecutionReader
	ExecutionWriter
	Program(ctx context.Context, id int64) (Program, error)
	Pipelines(ctx context.Context, programID int64) ([]Pipeline, error)
	LatestPolicy(ctx context.Context, programID int64) (Policy, error)
	// MarkDelivery records a command key (see WithCommandKey).
	MarkDelivery(ctx context.Context, d Delivery) (fresh bool, err error)
	// AddAudit appends to the audit trail (see AuditTx).
	AddAudit(ctx context.Context, r AuditRecord) (int64, error)
	// EnqueueNotification queues a notification (see NotifyTx).
	EnqueueNotification(ctx context.Context, n Notification) (int64, error)
	// PrunedAt says when retention removed artifact sets (see PruneTx).
	PrunedAt(ctx context.Context, digests []string) (map[string]time.Time, error)
}

// updateTx runs fn in a transaction of the engine's store, which fn sees
// as an EngineTx.
func (e *Engine) updateTx(ctx context.Context, fn func(tx EngineTx) error) error {
	return e.Store.Update(ctx, func(tx Tx) error { return fn(tx) })
}

// viewTx runs fn in a read-only transaction, seen as an EngineTx.
func (e *Engine) viewTx(ctx context.Context, fn func(tx EngineTx) error) error {
	return e.Store.View(ctx, func(tx Tx) error { return fn(tx) })
}

// Engine advances executions through their steps. Every transition is
// decided inside one store transaction from what is stored, so the rules
// hold across goroutines, restarts and replicas.
type Engine struct {
	Store       Transactor
	Clock       Clock
	Jobs        JobPublisher
	Source      Source
	ParseConfig ConfigParser
	// Policy reads a program's policy from its default branch for manual
	// starts, promotions and variable listings (nil: commands that need
	// it are refused).
	Policy PolicyReader
	// Secrets says whether declared secrets have a value, for
	// /stagehand env list (optional: without it every one is missing).
	Secrets SecretStatus
	// Artifacts says whether an artifact set is still kept, for
	// /stagehand restore (nil: restores are refused).
	Artifacts ArtifactSets
	Logger    *slog.Logger
	// PublicURL is the base of links in messages (the dashboard).
	PublicURL string
	// parsed caches ParseConfig's results by the file's content: the engine
	// reads an execution's configuration at every move, and most executions
	// share a few files.
	parsedMu sync.Mutex
	parsed   map[string]parsedConfig

	// Lease is how long a worker's claim on a step lasts without renewal
	// (default 10s; workers renew it every 500ms). When it runs out, the
	// worker is presumed dead and Reconcile takes the step over.
	Lease time.Duration
}

type parsedConfig struct {
	cfg *Config
	err error
}

// maxParsedConfigs bounds the cache of parsed configurations.
const maxParsedConfigs = 256

// config parses an execution's configuration once per distinct file. The
// result is shared: callers must not change it.
func (e *Engine) config(raw []byte) (*Config, error) {
	e.parsedMu.Lock()
	p, ok := e.parsed[string(raw)]
	e.parsedMu.Unlock()
	if ok {
		return p.cfg, p.err
	}
	cfg, err := e.ParseConfig.Config(raw)
	e.parsedMu.Lock()
	if e.parsed == nil || len(e.parsed) >= maxParsedConfigs {
		e.parsed = map[string]parsedConfig{}
	}
	e.parsed[string(raw)] = parsedConfig{cfg, err}
	e.parsedMu.Unlock()
	return cfg, err
}

func (e *Engine) lease() time.Duration {
	if e.Lease > 0 {
		return e.Lease
	}
	return 10 * time.Second
}

// Link is the dashboard page of an execution.
func (e *Engine) Link(prog Program, number int) string {
	return ExecutionURL(e.PublicURL, prog, number)
}

// Advance decides every transition that is due for a program's executions
// (start queued ones, dispatch steps, pass gates, finish) and publishes the
// jobs that result.
func (e *Engine) Advance(ctx context.Context, programID int64) error {
	var jobs []Job
	err := e.updateTx(ctx, func(tx EngineTx) error {
		var err error
		jobs, err = e.advance(ctx, tx, programID)
		return err
	})
	if err != nil {
		return fmt.Errorf("advancing program %d: %w", programID, err)
	}
	return e.publish(ctx, jobs)
}

func (e *Engine) publish(ctx context.Context, jobs []Job) error {
	var errs []error
	for _, j := range jobs {
		if err := e.Jobs.PublishJob(ctx, j); err != nil {
			// The step stays dispatched in the store; Reconcile publishes
			// its job again.
			errs = append(errs, fmt.Errorf("publishing job %s of execution %d: %w", j.Step, j.ExecutionID, err))
		}
	}
	return errors.Join(errs...)
}

// advance runs inside a transaction. It loops until nothing changes, so a
// gate that passes at once or a blocker that ends lets the next move
// happen in the same transaction.
func (e *Engine) advance(ctx context.Context, tx EngineTx, programID int64) ([]Job, error) {
	if err := tx.LockProgram(ctx, programID); err != nil {
		return nil, err
	}
	now := e.Clock.Now()
	var jobs []Job
	for range 100 {
		active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: programID, States: ActiveStates})
		if err != nil {
			return nil, err
		}
		slices.SortFunc(active, func(a, b Execution) int { return a.Number - b.Number })
		changed := false
		for i := range active {
			ex := &active[i]
			if ex.State == ExecutionQueued {
				started, err := e.tryStart(ctx, tx, ex, active, now)
				if err != nil {
					return nil, err
				}
				if !started {
					continue
				}
				changed = true
			}
			js, ch, err := e.step(ctx, tx, ex, now)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ex, err)
			}
			jobs = append(jobs, js...)
			changed = changed || ch
		}
		if !changed {
			return jobs, nil
		}
	}
	return nil, errors.New("executions did not settle after 100 rounds; this is a bug")
}

// tryStart starts a queued execution when rule B allows it.
func (e *Engine) tryStart(ctx context.Context, tx EngineTx, ex *Execution, active []Execution, now time.Time) (bool, error) {
	if b := Blocker(*ex, active); b != nil {
		msg := fmt.Sprintf("queued: waiting for %s (%s) to end", b, b.State)
		if ex.Message != msg {
			ex.Message = msg
			return false, tx.UpdateExecution(ctx, *ex)
		}
		return false, nil
	}
	ex.State, ex.StartedAt, ex.Message = ExecutionRunning, now, "running"
	if err := tx.UpdateExecution(ctx, *ex); err != nil {
		return false, err
	}
	// Stagehand's own decision, recorded like the people's: rule B let it run.
	if err := e.audit(ctx, tx, Internal(""), AuditStarted, *ex, "no conflicting execution holds its environments (rule B)", ""); err != nil {
		return false, err
	}
	if err := e.notify(ctx, tx, *ex, NotifyStarted, ""); err != nil {
		return false, err
	}
	if ex.Cause == CauseRestore {
		return true, e.notify(ctx, tx, *ex, NotifyRestored, "")
	}
	return true, nil
}

// step moves one running or waiting execution as far as it can go now.
func (e *Engine) step(ctx context.Context, tx EngineTx, ex *Execution, now time.Time) ([]Job, bool, error) {
	steps, err := tx.Steps(ctx, ex.ID)
	if err != nil {
		return nil, false, err
	}
	cur := -1
	for i, s := range steps {
		if s.State != StepSucceeded && s.State != StepSkipped {
			cur = i
			break
		}
	}
	if cur < 0 {
		return nil, true, e.finish(ctx, tx, ex, steps, ExecutionSucceeded, "succeeded", now)
	}
	s := &steps[cur]
	kind := KindOf(s.Name)
	switch s.State {
	case StepFailed:
		return nil, true, e.finish(ctx, tx, ex, steps, ExecutionFailed, fmt.Sprintf("%s failed: %s", s.Name, s.Message), now)
	case StepCancelled:
		return nil, true, e.finish(ctx, tx, ex, steps, ExecutionCancelled, s.Message, now)
	case StepRunning:
		return nil, false, e.setState(ctx, tx, ex, ExecutionRunning, fmt.Sprintf("%s running", s.Name))
	case StepWaiting:
		if kind.Gate == GateSchedule && !ex.ScheduledAt.IsZero() && !now.Before(ex.ScheduledAt) {
			return nil, true, e.passStep(ctx, tx, s, "scheduled time "+ex.ScheduledAt.UTC().Format(time.RFC3339)+" reached", now)
		}
		if kind.Deploy {
			return e.heldByCalendar(ctx, tx, ex, s, kind, now)
		}
		wasWaiting := ex.State == ExecutionWaiting
		if err := e.setState(ctx, tx, ex, ExecutionWaiting, s.Message); err != nil || wasWaiting || kind.Gate != GateApproval {
			return nil, false, err
		}
		return nil, false, e.notify(ctx, tx, *ex, NotifyWaitingForApproval, "")
	}
	// The step is pending: dispatch it. The engine decides the schedule
	// gate itself; a step worker runs the others (the approval's rollback
	// check too, because it needs the repository's history).
	settings := e.settings(ex)
	held, err := e.calendarHold(ctx, tx, ex, kind, now)
	if err != nil {
		return nil, false, err
	}
	switch {
	case kind.Gate == GateSchedule && !settings.Scheduled:
		return nil, true, e.passStep(ctx, tx, s, "no schedule: the pipeline is not scheduled", now)
	case kind.Gate == GateSchedule:
		s.State, s.StartedAt = StepWaiting, now
		s.Message = "waiting for a deploy time: /stagehand schedule <time> or Deploy Now"
		if !ex.ScheduledAt.IsZero() {
			s.Message = "scheduled for " + ex.ScheduledAt.UTC().Format(time.RFC3339)
		}
		if err := tx.UpdateStep(ctx, *s); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	case held != "":
		// A deploy outside its windows or inside a freeze waits
		// (engine_window.go).
		s.State, s.StartedAt, s.Message = StepWaiting, now, held
		if err := tx.UpdateStep(ctx, *s); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	case kind.Worker:
		return e.dispatch(ctx, tx, ex, s, now)
	}
	return nil, false, fmt.Errorf("step %s has no rule to run it", s.Name)
}

// settings are the pipeline's settings in the execution's configuration.
// A prod-only pipeline created by "Create & Promote" has none there: it
// takes the defaults (approval on, no schedule).
func (e *Engine) settings(ex *Execution) PipelineConfig {
	if e.ParseConfig != nil && len(ex.Config) > 0 {
		if cfg, err := e.executionConfig(*ex); err == nil {
			if p, ok := cfg.Pipelines[ex.Pipeline]; ok {
				return p
			}
		}
	}
	return PipelineConfig{Approval: ex.Pipeline != StageOnly}
}

func (e *Engine) setState(ctx context.Context, tx EngineTx, ex *Execution, st ExecutionState, msg string) error {
	if ex.State == st && ex.Message == msg {
		return nil
	}
	ex.State, ex.Message = st, msg
	return tx.UpdateExecution(ctx, *ex)
}

func (e *Engine) passStep(ctx context.Context, tx EngineTx, s *Step, msg string, now time.Time) error {
	s.State, s.Message, s.FinishedAt = StepSucceeded, msg, now
	if s.StartedAt.IsZero() {
		s.StartedAt = now
	}
	return tx.UpdateStep(ctx, *s)
}

// finish ends an execution; steps that never ran are skipped.
func (e *Engine) finish(ctx context.Context, tx EngineTx, ex *Execution, steps []Step, st ExecutionState, msg string, now time.Time) error {
	for _, s := range steps {
		if s.State == StepPending {
			s.State, s.Message = StepSkipped, "not run: the execution "+string(st)
			if err := tx.UpdateStep(ctx, s); err != nil {
				return err
			}
		}
	}
	ex.State, ex.Message, ex.FinishedAt = st, msg, now
	if err := tx.UpdateExecution(ctx, *ex); err != nil {
		return err
	}
	e.Logger.InfoContext(ctx, "execution ended", LogPipeline, string(ex.Pipeline), LogExecution, ex.Number, "state", string(st), "message", msg)
	switch st {
	case ExecutionSucceeded:
		return e.notify(ctx, tx, *ex, NotifySucceeded, "")
	case ExecutionFailed:
		return e.notify(ctx, tx, *ex, NotifyFailed, msg)
	}
	return nil
}

// Reconcile finds work that a crash, a lost job or the clock left behind:
// dispatched steps whose job may be lost, claims whose worker stopped
// renewing its lease, due schedules and queued executions that may start.
// The server runs it at start and then every few seconds.
func (e *Engine) Reconcile(ctx context.Context) error {
	type todo struct {
		program int64
		jobs    []Job
	}
	var work []todo
	now := e.Clock.Now()
	err := e.viewTx(ctx, func(tx EngineTx) error {
		active, err := tx.Executions(ctx, ExecutionFilter{States: ActiveStates})
		if err != nil {
			return err
		}
		seen := map[int64]int{}
		for _, ex := range active {
			i, ok := seen[ex.ProgramID]
			if !ok {
				i = len(work)
				seen[ex.ProgramID] = i
				work = append(work, todo{program: ex.ProgramID})
			}
			if ex.State != ExecutionRunning {
				continue
			}
			steps, err := tx.Steps(ctx, ex.ID)
			if err != nil {
				return err
			}
			for _, s := range steps {
				if s.State == StepRunning && (s.Attempt == 0 || now.After(s.LeaseUntil)) {
					work[i].jobs = append(work[i].jobs, jobFor(ex.ID, s))
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconciling: %w", err)
	}
	var errs []error
	for _, w := range work {
		if err := e.Advance(ctx, w.program); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, e.publish(ctx, w.jobs))
	}
	return errors.Join(errs...)
}
