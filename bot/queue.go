package bot

import (
	"context"
	"fmt"
	"time"
)

// PushStart is a push that rule A decided starts a pipeline.
type PushStart struct {
	Program    Program
	Pipeline   PipelineKind
	Commit     string
	Branch     string
	Pusher     string
	DeliveryID string
	Config     []byte // .github/stagehand.yml at Commit: the commands
	Policy     []byte // the default branch's file: the policy
	At         time.Time
}

// pushQueuedMessage is the Message of an execution a push queued on branch,
// until the engine first looks at it.
func pushQueuedMessage(branch string) string { return "queued by a push to " + branch }

// AwaitsEngine reports whether ex was queued by a push and the engine has
// not looked at it yet: every look either starts it or says what it waits
// for (Engine.tryStart), which changes its Message. The push's handler asks
// the engine to look right after the push's transaction, and the reconcile
// loop looks every few seconds.
func AwaitsEngine(ex Execution) bool {
	return ex.State == ExecutionQueued && ex.Cause == CausePush && ex.Message == pushQueuedMessage(ex.Branch)
}

// QueuePushStart records a queued execution for a push-triggered start,
// inside the caller's transaction. Rule C keeps one queued slot per pipeline:
// an execution of the same pipeline still queued is superseded by the newer
// commit and ends skipped. The engine starts queued executions when rule B
// lets them run.
func QueuePushStart(ctx context.Context, tx EngineTx, s PushStart) (Execution, error) {
	queued, err := tx.Executions(ctx, ExecutionFilter{
		ProgramID: s.Program.ID, Pipeline: s.Pipeline, States: []ExecutionState{ExecutionQueued},
	})
	if err != nil {
		return Execution{}, fmt.Errorf("looking up queued %s executions of %s: %w", s.Pipeline, s.Program.FullName(), err)
	}
	for _, old := range queued {
		steps, err := tx.Steps(ctx, old.ID)
		if err != nil {
			return Execution{}, err
		}
		for _, st := range steps {
			st.State, st.Message = StepSkipped, "not run: superseded by "+ShortSHA(s.Commit)
			if err := tx.UpdateStep(ctx, st); err != nil {
				return Execution{}, err
			}
		}
		old.State = ExecutionSkipped
		old.Message = "superseded by " + ShortSHA(s.Commit)
		old.FinishedAt = s.At
		if err := tx.UpdateExecution(ctx, old); err != nil {
			return Execution{}, fmt.Errorf("superseding %s: %w", old, err)
		}
	}
	e, err := tx.CreateExecution(ctx, Execution{
		ProgramID:   s.Program.ID,
		Pipeline:    s.Pipeline,
		Commit:      s.Commit,
		Branch:      s.Branch,
		State:       ExecutionQueued,
		Message:     pushQueuedMessage(s.Branch),
		Cause:       CausePush,
		TriggeredBy: s.Pusher,
		DeliveryID:  s.DeliveryID,
		Config:      s.Config,
		Policy:      s.Policy,
		CreatedAt:   s.At,
	})
	if err != nil {
		return Execution{}, fmt.Errorf("queueing %s for %s at %s: %w", s.Pipeline, s.Program.FullName(), ShortSHA(s.Commit), err)
	}
	return e, tx.AddEvent(ctx, Event{ExecutionID: e.ID, At: s.At, Actor: s.Pusher, Kind: EventTriggered, Detail: "push to " + s.Branch})
}

// ShortSHA is the first seven characters of a commit id.
func ShortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
