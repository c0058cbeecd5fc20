package bot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Claim is a step a worker has taken, with all it needs to run it.
type Claim struct {
	Program   Program
	Execution Execution
	Step      Step
	Config    *Config
	// Source is the stage-only execution a prod-only execution promotes.
	Source *Execution
	// Production is what runs on production now (nil: nothing yet); the
	// approval's rollback check compares the candidate with it.
	Production *Deployment
	// Variables are the environment's variables for a deploy or test step:
	// the configuration's values overridden by those set with
	// /stagehand env set.
	Variables map[string]string
}

// Environment is the environment a step deploys to or tests, or "".
func (c Claim) Environment() EnvironmentName {
	return KindOf(c.Step.Name).Environment
}

// ErrStale means a job has nothing to do any more: the step is done,
// cancelled, or being run by another worker.
var ErrStale = errors.New("the step is not waiting for a worker")

// ClaimStep takes a dispatched step for a worker. The claim (Attempt+1 and
// a lease) is recorded before the command starts. When the previous
// claim's lease ran out, its worker is gone: a build, test or check runs
// again, but a deploy whose outcome is unknown is marked failed and never
// run a second time.
func (e *Engine) ClaimStep(ctx context.Context, j Job) (Claim, error) {
	var c Claim
	var jobs []Job
	var stale bool
	now := e.Clock.Now()
	err := e.updateTx(ctx, func(tx EngineTx) error {
		c, jobs, stale = Claim{}, nil, false
		ex, err := tx.Execution(ctx, j.ExecutionID)
		if err != nil {
			return err
		}
		detail, err := LoadExecutionDetail(ctx, tx, ex)
		if err != nil {
			return err
		}
		s, err := detail.Step(j.Step)
		if err != nil {
			return err
		}
		if ex.State != ExecutionRunning || s.State != StepRunning {
			return ErrStale
		}
		if s.Attempt > 0 && now.Before(s.LeaseUntil) {
			return ErrStale
		}
		if s.Attempt > 0 && KindOf(s.Name).Deploy { // never run twice (rule I)
			s.State, s.FinishedAt = StepFailed, now
			s.Message = fmt.Sprintf("the outcome of this deploy is unknown: Stagehand stopped (crash or restart) while it ran, at attempt %d. It was not run again, so that no deployment runs twice; check %s and start a new execution", s.Attempt, KindOf(s.Name).Environment)
			if err := tx.UpdateStep(ctx, s); err != nil {
				return err
			}
			// Commit the failure: returning an error would roll it back.
			stale = true
			jobs, err = e.advance(ctx, tx, ex.ProgramID)
			return err
		}
		s.Attempt++
		s.LeaseUntil = now.Add(e.lease())
		s.Message = "running"
		if s.Attempt > 1 {
			s.Message = fmt.Sprintf("running again (attempt %d): the previous worker stopped", s.Attempt)
		}
		if err := tx.UpdateStep(ctx, s); err != nil {
			return err
		}
		c, err = e.loadClaim(ctx, tx, detail, s)
		return err
	})
	if pubErr := e.publish(ctx, jobs); pubErr != nil {
		e.Logger.WarnContext(ctx, "publishing jobs", LogError, pubErr)
	}
	if err != nil {
		return Claim{}, err
	}
	if stale {
		return Claim{}, ErrStale
	}
	return c, nil
}

func findStep(ctx context.Context, tx EngineTx, executionID int64, name StepName) (Step, error) {
	steps, err := tx.Steps(ctx, executionID)
	if err != nil {
		return Step{}, err
	}
	for _, s := range steps {
		if s.Name == name {
			return s, nil
		}
	}
	return Step{}, fmt.Errorf("step %s of execution %d: %w", name, executionID, ErrNotFound)
}

// loadClaim completes the claim of step s of the execution in d.
func (e *Engine) loadClaim(ctx context.Context, tx EngineTx, d ExecutionDetail, s Step) (Claim, error) {
	ex := d.Execution
	c := Claim{Program: d.Program, Execution: ex, Step: s, Source: d.Source}
	if err := d.NeedSource(); err != nil {
		return c, err
	}
	var err error
	if c.Config, err = e.executionConfig(ex); err != nil {
		return c, err
	}
	if d, err := tx.Deployment(ctx, ex.ProgramID, Production); err == nil {
		c.Production = &d
	} else if !errors.Is(err, ErrNotFound) {
		return c, err
	}
	if env := c.Environment(); env != "" {
		c.Variables = map[string]string{}
		if ec := c.Config.Environment(env); ec != nil {
			maps.Copy(c.Variables, ec.Variables)
		}
		set, err := tx.Variables(ctx, ex.ProgramID, env)
		if err != nil {
			return c, err
		}
		maps.Copy(c.Variables, set)
	}
	return c, nil
}

// Heartbeat renews a claim's lease. It returns ErrStale when the worker
// must stop: the execution was cancelled or the claim was lost.
func (e *Engine) Heartbeat(ctx context.Context, c Claim) error {
	now := e.Clock.Now()
	return e.updateTx(ctx, func(tx EngineTx) error {
		s, err := findStep(ctx, tx, c.Execution.ID, c.Step.Name)
		if err != nil {
			return err
		}
		if s.State != StepRunning || s.Attempt != c.Step.Attempt {
			return ErrStale
		}
		s.LeaseUntil = now.Add(e.lease())
		return tx.UpdateStep(ctx, s)
	})
}

// Outcome is what a worker reports when a step's command ends.
type Outcome struct {
	Succeeded bool
	Message   string
	LogTail   string
	// ArtifactDigest: the build's artifact set (build), or the verified
	// source set (artifact-preparation).
	ArtifactDigest string
	// Rollback, from the approval's check: why deploying would roll
	// production back; empty when it would not.
	Rollback string
	// Retry hands the step back to be run again (the worker was shut down
	// before the command could finish; never used for deploys).
	Retry bool
}

// FinishStep records the end of a claimed step and advances the
// execution. A report for a claim that is no longer current (the
// execution was cancelled meanwhile) is recorded in the log only.
func (e *Engine) FinishStep(ctx context.Context, c Claim, o Outcome) error {
	now := e.Clock.Now()
	var jobs []Job
	err := e.updateTx(ctx, func(tx EngineTx) error {
		jobs = nil
		ex, err := tx.Execution(ctx, c.Execution.ID)
		if err != nil {
			return err
		}
		s, err := findStep(ctx, tx, ex.ID, c.Step.Name)
		if err != nil {
			return err
		}
		if s.State != StepRunning || s.Attempt != c.Step.Attempt {
			return ErrStale
		}
		s.LogTail = o.LogTail
		switch {
		case o.Retry && !KindOf(s.Name).Deploy:
			// Attempt 0 makes the step claimable at once; the lease time
			// only makes this dispatch's job ID new.
			s.Attempt, s.LeaseUntil, s.Message = 0, now, "handed back: the worker was shut down; it runs again"
			if err := tx.UpdateStep(ctx, s); err != nil {
				return err
			}
			jobs = []Job{jobFor(ex.ID, s)}
			return nil
		case !o.Succeeded:
			s.State, s.Message, s.FinishedAt = StepFailed, o.Message, now
		case KindOf(s.Name).Gate == GateApproval:
			if err := e.openApproval(ctx, tx, &ex, &s, o.Rollback, now); err != nil {
				return err
			}
		default:
			s.State, s.Message, s.FinishedAt = StepSucceeded, o.Message, now
		}
		if err := tx.UpdateStep(ctx, s); err != nil {
			return err
		}
		if o.Succeeded {
			if err := e.recordSuccess(ctx, tx, &ex, s, o, now); err != nil {
				return err
			}
		}
		jobs, err = e.advance(ctx, tx, ex.ProgramID)
		return err
	})
	if errors.Is(err, ErrStale) {
		e.Logger.InfoContext(ctx, "step result ignored: the step moved on meanwhile", LogExecution, c.Execution.Number, LogStep, string(c.Step.Name))
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording the end of %s of %s: %w", c.Step.Name, c.Execution, err)
	}
	return e.publish(ctx, jobs)
}

// recordSuccess keeps what a succeeded step produced.
func (e *Engine) recordSuccess(ctx context.Context, tx EngineTx, ex *Execution, s Step, o Outcome, now time.Time) error {
	if o.ArtifactDigest != "" && ex.ArtifactDigest != o.ArtifactDigest {
		ex.ArtifactDigest = o.ArtifactDigest
		if err := tx.UpdateExecution(ctx, *ex); err != nil {
			return err
		}
	}
	kind := KindOf(s.Name)
	if !kind.Deploy {
		return nil
	}
	return tx.SetDeployment(ctx, Deployment{
		ProgramID: ex.ProgramID, Environment: kind.Environment, ExecutionID: ex.ID, Pipeline: ex.Pipeline,
		Number: ex.Number, Commit: ex.Commit, ArtifactDigest: ex.ArtifactDigest, Since: now,
	})
}

// openApproval decides the approval gate after its rollback check (rule
// G): with approval on, or when production would roll back, the step
// waits for a person; otherwise it passes.
func (e *Engine) openApproval(ctx context.Context, tx EngineTx, ex *Execution, s *Step, rollback string, now time.Time) error {
	ex.Rollback = rollback
	if err := tx.UpdateExecution(ctx, *ex); err != nil {
		return err
	}
	settings := e.settings(ex)
	switch {
	case rollback != "":
		s.State = StepWaiting
		s.Message = "waiting for approval: " + rollback + "; deploying needs Approve Rollback (/stagehand approve --rollback)"
		if !settings.Approval {
			s.Message = "stopped: " + rollback + "; approval is off for this pipeline, so the deploy waits for Approve Rollback (/stagehand approve --rollback)"
		}
	case settings.Approval:
		s.State, s.Message = StepWaiting, "waiting for approval"
	default:
		s.State, s.Message, s.FinishedAt = StepSucceeded, "approval not required", now
	}
	if s.State == StepWaiting {
		s.Message += e.quorumNote(*ex)
	}
	return nil
}
