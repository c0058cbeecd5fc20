package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Result is what a command did, in words for the person who asked.
type Result struct {
	Execution Execution
	Message   string
}

// ErrAlreadyDone is what a command returns when its request's Key was
// recorded before: it took effect then and changes nothing now.
var ErrAlreadyDone = errors.New("carried out already, when this request was first handled")

// update runs fn in a transaction that locks the program and records the
// request's key, advances the program's executions afterwards and
// publishes the resulting jobs.
func (e *Engine) update(ctx context.Context, req Request, programID int64, fn func(tx EngineTx, prog Program) error) error {
	var jobs []Job
	err := e.updateTx(ctx, func(tx EngineTx) error {
		if err := tx.LockProgram(ctx, programID); err != nil {
			return err
		}
		if req.Key != "" {
			fresh, err := tx.MarkDelivery(ctx, Delivery{GUID: req.Key, Event: "command", ProcessedAt: e.Clock.Now()})
			if err != nil {
				return err
			}
			if !fresh {
				return ErrAlreadyDone
			}
		}
		prog, err := tx.Program(ctx, programID)
		if err != nil {
			return err
		}
		if err := fn(tx, prog); err != nil {
			return err
		}
		jobs, err = e.advance(ctx, tx, programID)
		return err
	})
	if err != nil {
		return err
	}
	return e.publish(ctx, jobs)
}

// updateWithPolicy reads the program's policy (req's, when its handler
// read it), then runs fn with it as update does.
func (e *Engine) updateWithPolicy(ctx context.Context, req Request, programID int64, fn func(tx EngineTx, prog Program, pol Policy) error) error {
	pol, err := e.programPolicy(ctx, req, programID)
	if err != nil {
		return err
	}
	return e.update(ctx, req, programID, func(tx EngineTx, prog Program) error { return fn(tx, prog, pol) })
}

func (e *Engine) event(ctx context.Context, tx EngineTx, ex Execution, actor string, kind EventKind, detail string) error {
	return tx.AddEvent(ctx, Event{ExecutionID: ex.ID, At: e.Clock.Now(), Actor: actor, Kind: kind, Detail: detail})
}

// manualBlocker is what keeps a manual start from happening: a conflicting
// running or waiting execution (rule B), or a queued one of the same
// pipeline (its slot is taken).
func manualBlocker(kind PipelineKind, active []Execution) *Execution {
	if b := Blocker(Execution{Pipeline: kind}, active); b != nil {
		return b
	}
	for i, a := range active {
		if a.Pipeline == kind {
			return &active[i]
		}
	}
	return nil
}

// StartManual starts a pipeline by hand: stage-only and full-stack at the
// head of their branch, prod-only from the latest successful stage-only
// execution or from number from. A start that rule B blocks is refused
// with the blocker named (rule C).
func (e *Engine) StartManual(ctx context.Context, req Request, programID int64, kind PipelineKind, from int) (Result, error) {
	if kind == ProdOnly {
		return e.promote(ctx, req, programID, from, keepPipelines, CauseManual)
	}
	actor := req.Actor
	if kind != StageOnly && kind != FullStack {
		return Result{}, &Refusal{Code: RefusalBadRequest, Message: fmt.Sprintf("unknown pipeline %q: use stage-only, prod-only or full-stack", kind)}
	}
	if from != 0 {
		return Result{}, &Refusal{Code: RefusalBadRequest, Message: "--from applies to prod-only only"}
	}
	// Which pipelines exist, and on which branch, is policy: the default
	// branch's file decides, never the commit that would be built.
	prog, pol, err := e.programAndPolicy(ctx, req, programID)
	if err != nil {
		return Result{}, err
	}
	if pol.Config == nil {
		return Result{}, &Refusal{Code: RefusalNotConfigured, Rule: "H", Message: fmt.Sprintf("%s has no .github/stagehand.yml on its default branch (%s), so it has no pipelines; add the file there", prog.FullName(), pol.Describe())}
	}
	pipeCfg, ok := pol.Config.Pipelines[kind]
	if !ok {
		return Result{}, &Refusal{Code: RefusalNotConfigured, Rule: "H", Message: fmt.Sprintf("%s has no %s pipeline: the default branch's .github/stagehand.yml (%s) declares none", prog.FullName(), kind, pol.Describe())}
	}
	pipe := &Pipeline{ProgramID: programID, Kind: kind, PipelineConfig: pipeCfg}
	commit, err := e.Source.HeadCommit(ctx, prog, pipe.Branch)
	if err != nil {
		return Result{}, fmt.Errorf("finding the head of %s: %w", pipe.Branch, err)
	}
	// The commands come from the commit being built.
	raw, err := e.Source.ReadConfig(ctx, prog, commit)
	if errors.Is(err, ErrNotFound) {
		return Result{}, &Refusal{Code: RefusalNotConfigured, Rule: "H", Message: fmt.Sprintf("%s at %s has no .github/stagehand.yml to take the build and deploy commands from", pipe.Branch, ShortSHA(commit))}
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading the configuration at %s: %w", ShortSHA(commit), err)
	}
	if _, err := e.config(raw); err != nil {
		return Result{}, &Refusal{Code: RefusalNotConfigured, Rule: "H", Message: fmt.Sprintf(".github/stagehand.yml at %s is invalid:\n%v", ShortSHA(commit), err)}
	}
	var res Result
	err = e.update(ctx, req, programID, func(tx EngineTx, prog Program) error {
		active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: programID, States: ActiveStates})
		if err != nil {
			return err
		}
		if b := manualBlocker(kind, active); b != nil {
			return blockedError(kind, *b, e.Link(prog, b.Number))
		}
		if err := tx.SetPipelines(ctx, programID, PipelinesOf(programID, pol.Config)); err != nil {
			return err
		}
		ex, err := tx.CreateExecution(ctx, Execution{
			ProgramID: programID, Pipeline: kind, Commit: commit, Branch: pipe.Branch, State: ExecutionQueued,
			Message: "started by " + actor, Cause: CauseManual, TriggeredBy: actor, Config: raw, Policy: pol.Raw, CreatedAt: e.Clock.Now(),
		})
		if err != nil {
			return err
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("started %s at %s of %s: %s", ex, ShortSHA(commit), pipe.Branch, e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, AuditStart, ex, res.Message, string(kind)); err != nil {
			return err
		}
		return e.event(ctx, tx, ex, actor, EventTriggered, "manual start")
	})
	return res, err
}

// pick finds the execution a command is about: number, or when number is 0
// the only active execution that match accepts.
func (e *Engine) pick(ctx context.Context, tx EngineTx, prog Program, number int, what string, match func(Execution, []Step) bool) (Execution, []Step, error) {
	if number != 0 {
		ex, err := tx.ExecutionByNumber(ctx, prog.ID, number)
		if errors.Is(err, ErrNotFound) {
			return ex, nil, noSuchExecution(prog, number)
		}
		if err != nil {
			return ex, nil, err
		}
		steps, err := tx.Steps(ctx, ex.ID)
		if err != nil {
			return ex, nil, err
		}
		if !match(ex, steps) {
			return ex, nil, &Refusal{Code: RefusalWrongState, Message: fmt.Sprintf("%s is not %s (%s)", ex, what, itState(ex))}
		}
		return ex, steps, nil
	}
	active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: prog.ID, States: ActiveStates})
	if err != nil {
		return Execution{}, nil, err
	}
	var found []Execution
	var foundSteps [][]Step
	for _, ex := range active {
		steps, err := tx.Steps(ctx, ex.ID)
		if err != nil {
			return Execution{}, nil, err
		}
		if match(ex, steps) {
			found, foundSteps = append(found, ex), append(foundSteps, steps)
		}
	}
	switch len(found) {
	case 1:
		return found[0], foundSteps[0], nil
	case 0:
		return Execution{}, nil, &Refusal{Code: RefusalWrongState, Message: fmt.Sprintf("no execution of %s is %s", prog.FullName(), what)}
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = fmt.Sprintf("#%d", f.Number)
	}
	return Execution{}, nil, &Refusal{Code: RefusalWrongState, Message: fmt.Sprintf("several executions are %s (%s); name one", what, strings.Join(names, ", "))}
}

func stepIn(steps []Step, name StepName, st StepState) *Step {
	for i := range steps {
		if steps[i].Name == name && steps[i].State == st {
			return &steps[i]
		}
	}
	return nil
}

func waitingForApproval(ex Execution, steps []Step) bool {
	return ex.State == ExecutionWaiting && stepIn(steps, StepApproval, StepWaiting) != nil
}

// Approve answers a waiting approval (Promote to Prod / Approve). When the
// deploy would roll production back (rule G) it is refused: only
// ApproveRollback lets it go on. With prevent_self_approval, the person who
// triggered or promoted the execution may not approve it.
func (e *Engine) Approve(ctx context.Context, req Request, programID int64, number int) (Result, error) {
	return e.approve(ctx, req, programID, number, false)
}

// ApproveRollback is Approve Rollback (/stagehand approve --rollback): it
// approves a deploy that would roll production back (rule G), and any
// other waiting approval.
func (e *Engine) ApproveRollback(ctx context.Context, req Request, programID int64, number int) (Result, error) {
	return e.approve(ctx, req, programID, number, true)
}

func (e *Engine) approve(ctx context.Context, req Request, programID int64, number int, rollback bool) (Result, error) {
	actor := req.Actor
	return e.answerApproval(ctx, req, programID, number, "approve a production deployment", func(tx EngineTx, prog Program, pol Policy, ex Execution, s *Step) (Result, error) {
		if ex.Rollback != "" && !rollback {
			return Result{}, &Refusal{Code: RefusalNeedsRollbackApproval, Rule: "G", Message: fmt.Sprintf("%s %s; approving it needs Approve Rollback (/stagehand approve %d --rollback)", ex, ex.Rollback, ex.Number)}
		}
		if err := e.checkSelfApproval(ctx, tx, pol, ex, actor); err != nil {
			return Result{}, err
		}
		kind := EventApproved
		if ex.Rollback != "" {
			kind = EventApprovedRollback
		}
		q, err := e.quorum(ctx, tx, ex)
		if err != nil {
			return Result{}, err
		}
		if q.Has(actor) {
			return Result{}, alreadyApproved(ex, actor, q)
		}
		if q = q.with(actor); !q.Met() {
			res, err := e.approvePartly(ctx, tx, prog, ex, s, actor, kind, q)
			if err != nil {
				return Result{}, err
			}
			return res, e.audit(ctx, tx, req, AuditApprove, ex, res.Message, q.String())
		}
		detail := "approved by " + actor
		if q.Required > 1 {
			detail = fmt.Sprintf("approved by %s (%s)", strings.Join(q.Approvers, ", "), q)
		}
		if ex.Rollback != "" {
			detail = "rollback " + detail + ": " + ex.Rollback
		}
		if err := e.passStep(ctx, tx, s, detail, e.Clock.Now()); err != nil {
			return Result{}, err
		}
		res := Result{Execution: ex, Message: fmt.Sprintf("%s %s: %s", ex, detail, e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, AuditApprove, ex, res.Message, q.String()); err != nil {
			return Result{}, err
		}
		return res, e.event(ctx, tx, ex, actor, kind, q.detail())
	})
}

// answerApproval runs answer on execution number of the program, which
// must be waiting for approval, with its approval step, in a transaction
// that read the program's policy: what approving and rejecting share. Only
// a production approver may (what says what they tried).
func (e *Engine) answerApproval(ctx context.Context, req Request, programID int64, number int, what string,
	answer func(tx EngineTx, prog Program, pol Policy, ex Execution, approval *Step) (Result, error)) (Result, error) {
	if err := requireProductionApprover(req, what); err != nil {
		return Result{}, err
	}
	var res Result
	err := e.updateWithPolicy(ctx, req, programID, func(tx EngineTx, prog Program, pol Policy) error {
		ex, steps, err := e.pick(ctx, tx, prog, number, "waiting for approval", waitingForApproval)
		if err != nil {
			return err
		}
		res, err = answer(tx, prog, pol, ex, stepIn(steps, StepApproval, StepWaiting))
		return err
	})
	return res, err
}

// checkSelfApproval applies the policy's prevent_self_approval. The
// policy was read by the caller; one that could not be read or parsed
// refused the command before (fail closed).
func (e *Engine) checkSelfApproval(ctx context.Context, tx EngineTx, pol Policy, ex Execution, actor string) error {
	if pol.Config == nil || pol.Config.Production == nil || !pol.Config.Production.PreventSelfApproval {
		return nil
	}
	people := map[string]string{ex.TriggeredBy: "started"}
	events, err := tx.Events(ctx, ex.ID)
	if err != nil {
		return err
	}
	for _, ev := range events {
		if ev.Kind == EventTriggered || ev.Kind == EventPromoted {
			people[ev.Actor] = string(ev.Kind)
		}
	}
	if ex.SourceID != 0 {
		if src, err := tx.Execution(ctx, ex.SourceID); err == nil {
			people[src.TriggeredBy] = "triggered its source " + src.String()
		}
	}
	if did, ok := people[actor]; ok && actor != "" {
		return &Refusal{Code: RefusalSelfApproval, Message: fmt.Sprintf("%s may not approve or reject %s: they %s it, and production has prevent_self_approval; ask another approver (or cancel it)", actor, ex, did)}
	}
	return nil
}

// Reject ends a waiting approval: the execution ends cancelled, as Cloud
// Manager does; what was deployed to stage stays.
func (e *Engine) Reject(ctx context.Context, req Request, programID int64, number int, reason string) (Result, error) {
	actor := req.Actor
	return e.answerApproval(ctx, req, programID, number, "reject a production deployment", func(tx EngineTx, prog Program, pol Policy, ex Execution, s *Step) (Result, error) {
		// SPEC §5: reject, like approve, respects prevent_self_approval
		// (the person who started it can still cancel it).
		if err := e.checkSelfApproval(ctx, tx, pol, ex, actor); err != nil {
			return Result{}, err
		}
		msg := "rejected by " + actor
		if reason != "" {
			msg += ": " + reason
		}
		s.State, s.Message, s.FinishedAt = StepCancelled, msg, e.Clock.Now()
		if err := tx.UpdateStep(ctx, *s); err != nil {
			return Result{}, err
		}
		res := Result{Execution: ex, Message: fmt.Sprintf("%s %s; it ends cancelled: %s", ex, msg, e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, AuditReject, ex, res.Message, ""); err != nil {
			return Result{}, err
		}
		return res, e.event(ctx, tx, ex, actor, EventRejected, reason)
	})
}

// Schedule sets when a scheduled production deploy runs; a zero time
// means now (Deploy Now). The time survives restarts: it is stored, and the
// engine's reconcile loop passes the schedule step when it is due.
func (e *Engine) Schedule(ctx context.Context, req Request, programID int64, number int, at time.Time) (Result, error) {
	actor := req.Actor
	if err := requireProductionApprover(req, "schedule a production deployment or Deploy Now"); err != nil {
		return Result{}, err
	}
	var res Result
	now := e.Clock.Now()
	if at.IsZero() {
		at = now
	}
	err := e.update(ctx, req, programID, func(tx EngineTx, prog Program) error {
		ex, steps, err := e.pick(ctx, tx, prog, number, "waiting for a production deploy", func(ex Execution, steps []Step) bool {
			if ex.Pipeline == StageOnly || !ex.State.Active() {
				return false
			}
			for _, s := range steps {
				if s.Name == StepSchedule {
					return s.State == StepPending || s.State == StepWaiting
				}
			}
			return false
		})
		if err != nil {
			return err
		}
		if !e.settings(&ex).Scheduled {
			return &Refusal{Code: RefusalNotConfigured, Message: fmt.Sprintf("%s's pipeline is not scheduled (scheduled: false); its production deploy runs right after approval", ex)}
		}
		ex.ScheduledAt = at
		if err := tx.UpdateExecution(ctx, ex); err != nil {
			return err
		}
		if s := stepIn(steps, StepSchedule, StepWaiting); s != nil {
			s.Message = "scheduled for " + at.UTC().Format(time.RFC3339)
			if err := tx.UpdateStep(ctx, *s); err != nil {
				return err
			}
		}
		when := "now"
		if at.After(now) {
			when = at.UTC().Format(time.RFC3339)
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("%s deploys to production %s: %s", ex, when, e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, AuditSchedule, ex, res.Message, at.UTC().Format(time.RFC3339)); err != nil {
			return err
		}
		return e.event(ctx, tx, ex, actor, EventScheduled, at.UTC().Format(time.RFC3339))
	})
	return res, err
}

// Cancel ends a queued, running or waiting execution. A running command
// is killed by its worker, which sees the cancellation at its next
// heartbeat (within a second).
func (e *Engine) Cancel(ctx context.Context, req Request, programID int64, number int) (Result, error) {
	actor := req.Actor
	var res Result
	now := e.Clock.Now()
	err := e.update(ctx, req, programID, func(tx EngineTx, prog Program) error {
		ex, steps, err := e.pick(ctx, tx, prog, number, "active", func(ex Execution, _ []Step) bool { return ex.State.Active() })
		if err != nil {
			return err
		}
		if Holds(ex.Pipeline, Production) {
			if err := requireProductionApprover(req, "cancel "+ex.String()+", which holds production"); err != nil {
				return err
			}
		}
		for _, s := range steps {
			switch s.State {
			case StepRunning, StepWaiting:
				s.State, s.Message, s.FinishedAt = StepCancelled, "cancelled by "+actor, now
			case StepPending:
				s.State, s.Message = StepSkipped, "not run: the execution was cancelled"
			default:
				continue
			}
			if err := tx.UpdateStep(ctx, s); err != nil {
				return err
			}
		}
		ex.State, ex.Message, ex.FinishedAt = ExecutionCancelled, "cancelled by "+actor, now
		if err := tx.UpdateExecution(ctx, ex); err != nil {
			return err
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("%s cancelled: %s", ex, e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, AuditCancel, ex, res.Message, ""); err != nil {
			return err
		}
		return e.event(ctx, tx, ex, actor, EventCancelled, "")
	})
	return res, err
}

// Rerun starts a new execution of the same pipeline at the same commit (a
// prod-only one from the same source).
func (e *Engine) Rerun(ctx context.Context, req Request, programID int64, number int) (Result, error) {
	actor := req.Actor
	var res Result
	err := e.updateWithPolicy(ctx, req, programID, func(tx EngineTx, prog Program, pol Policy) error {
		old, err := tx.ExecutionByNumber(ctx, programID, number)
		if errors.Is(err, ErrNotFound) {
			return noSuchExecution(prog, number)
		}
		if err != nil {
			return err
		}
		active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: programID, States: ActiveStates})
		if err != nil {
			return err
		}
		if b := manualBlocker(old.Pipeline, active); b != nil {
			return blockedError(old.Pipeline, *b, e.Link(prog, b.Number))
		}
		ex, err := tx.CreateExecution(ctx, Execution{
			ProgramID: programID, Pipeline: old.Pipeline, Commit: old.Commit, Branch: old.Branch, State: ExecutionQueued,
			Message: fmt.Sprintf("re-run of %s by %s", old, actor), Cause: CauseRerun, TriggeredBy: actor,
			SourceID: old.SourceID, Config: old.Config, Policy: pol.Raw, CreatedAt: e.Clock.Now(),
		})
		if err != nil {
			return err
		}
		if old.SourceID != 0 {
			ex.ArtifactDigest = old.ArtifactDigest
			if err := tx.UpdateExecution(ctx, ex); err != nil {
				return err
			}
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("%s re-runs %s at %s: %s", ex, old, ShortSHA(old.Commit), e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, AuditRerun, ex, res.Message, "re-run of "+old.String()); err != nil {
			return err
		}
		return e.event(ctx, tx, ex, actor, EventTriggered, "re-run of "+old.String())
	})
	return res, err
}
