package bot

import (
	"context"
	"fmt"
	"time"
)

// The deploy calendar gate: a deploy step whose environment declares
// windows or freezes (policy) starts only inside a window and outside every
// freeze. The windows and freezes are the program's latest default-branch
// policy's (Tx.LatestPolicy, recorded by the push handler), so a freeze
// merged to the default branch holds executions already queued or waiting,
// and one lifted there lets them go; a program with none recorded uses the
// policy the execution was created under. When the step becomes due at
// another time it waits (the execution is waiting and still holds its
// environments), saying why and until when, and Engine.advance (run by
// Reconcile every few seconds and at start) dispatches it when the
// calendar opens, or when a break-glass override (EventPolicyOverride) is
// recorded after it began to wait. Nothing else opens it: Deploy Now and
// /stagehand schedule pass the schedule gate, which comes before.

// calendarHold says why the deploy step of kind may not start at now, or
// "" when it may. An execution whose configuration cannot be read is not
// held here: its step's claim fails on the same configuration.
func (e *Engine) calendarHold(ctx context.Context, tx EngineTx, ex *Execution, kind StepKind, now time.Time) (string, error) {
	if !kind.Deploy || kind.Environment == "" || e.ParseConfig == nil || len(ex.Config) == 0 {
		return "", nil
	}
	latest, err := tx.LatestPolicy(ctx, ex.ProgramID)
	if err != nil {
		return "", err
	}
	var cfg *Config
	if len(latest.Raw) > 0 {
		// Only valid files are recorded, so an invalid file on the default
		// branch never lifts a freeze: the last valid one stays. One that
		// no longer parses (a newer Stagehand is stricter) leaves the
		// calendar unknown, and the deploy waits (fail closed).
		if cfg, err = e.config(latest.Raw); err != nil {
			return fmt.Sprintf("waiting: the policy on the default branch (%s) no longer parses, so the deploy windows and freezes of %s are unknown; push a valid .github/stagehand.yml there: %v", latest.Describe(), kind.Environment, err), nil
		}
	} else if cfg, err = e.executionConfig(*ex); err != nil {
		return "", nil
	}
	if why := cfg.Environment(kind.Environment).Calendar().Describe(kind.Environment, now); why != "" {
		return "waiting: " + why, nil
	}
	return "", nil
}

// HeldByCalendar is the deploy step of steps that waits for its
// environment's windows or the end of a freeze, or nil: what a break-glass
// override (EventPolicyOverride) would start.
func HeldByCalendar(ex Execution, steps []Step) *Step {
	if ex.State != ExecutionWaiting {
		return nil
	}
	for i := range steps {
		if steps[i].State == StepWaiting && KindOf(steps[i].Name).Deploy {
			return &steps[i]
		}
	}
	return nil
}

// overridden reports whether a break-glass override was recorded for the
// execution since its step s began to wait.
func overridden(ctx context.Context, tx EngineTx, ex *Execution, s *Step) (bool, error) {
	events, err := tx.Events(ctx, ex.ID)
	if err != nil {
		return false, err
	}
	for _, ev := range events {
		if ev.Kind == EventPolicyOverride && !ev.At.Before(s.StartedAt) {
			return true, nil
		}
	}
	return false, nil
}

// heldByCalendar moves a deploy step that waits for its calendar: it
// starts when the calendar opens or an override was recorded; otherwise
// its message is brought up to date ("opens … (in 3 h)").
func (e *Engine) heldByCalendar(ctx context.Context, tx EngineTx, ex *Execution, s *Step, kind StepKind, now time.Time) ([]Job, bool, error) {
	why, err := e.calendarHold(ctx, tx, ex, kind, now)
	if err != nil {
		return nil, false, err
	}
	open := why == ""
	if !open {
		if open, err = overridden(ctx, tx, ex, s); err != nil {
			return nil, false, err
		}
	}
	if open {
		return e.dispatch(ctx, tx, ex, s, now)
	}
	if s.Message != why {
		s.Message = why
		if err := tx.UpdateStep(ctx, *s); err != nil {
			return nil, false, err
		}
	}
	return nil, false, e.setState(ctx, tx, ex, ExecutionWaiting, s.Message)
}

// dispatch hands a step to the step workers: running, attempt 0, a job.
func (e *Engine) dispatch(ctx context.Context, tx EngineTx, ex *Execution, s *Step, now time.Time) ([]Job, bool, error) {
	s.State, s.StartedAt, s.Attempt, s.LeaseUntil, s.Message = StepRunning, now, 0, time.Time{}, "dispatched"
	if err := tx.UpdateStep(ctx, *s); err != nil {
		return nil, false, err
	}
	return []Job{jobFor(ex.ID, *s)}, true, nil
}
