package bot

import (
	"context"
	"errors"
	"fmt"
)

// Promote is the Confirm button and /stagehand promote (rule D): it starts
// a prod-only execution that deploys the artifact set of stage-only
// execution number (0: the latest successful one), which must be the latest
// successful stage-only execution. Without a prod-only pipeline it is
// refused: see CreateAndPromote.
func (e *Engine) Promote(ctx context.Context, req Request, programID int64, number int) (Result, error) {
	return e.promote(ctx, req, programID, number, keepPipelines, CausePromotion)
}

// CreateAndPromote is the Create & Promote button: Promote, adding a
// prod-only pipeline with the default settings when there is none.
func (e *Engine) CreateAndPromote(ctx context.Context, req Request, programID int64, number int) (Result, error) {
	return e.promote(ctx, req, programID, number, createProdOnly, CausePromotion)
}

// prodOnlyMissing says what a promotion does without a prod-only pipeline.
type prodOnlyMissing bool

const (
	keepPipelines  prodOnlyMissing = false // refuse
	createProdOnly prodOnlyMissing = true  // add one with the default settings
)

func (e *Engine) promote(ctx context.Context, req Request, programID int64, number int, missing prodOnlyMissing, cause Cause) (Result, error) {
	actor := req.Actor
	var res Result
	err := e.updateWithPolicy(ctx, req, programID, func(tx EngineTx, prog Program, pol Policy) error {
		src, err := e.promotionSource(ctx, tx, prog, number, cause)
		if err != nil {
			return err
		}
		if err := e.ensureProdOnly(ctx, tx, prog, pol, missing); err != nil {
			return err
		}
		active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: programID, States: ActiveStates})
		if err != nil {
			return err
		}
		if b := manualBlocker(ProdOnly, active); b != nil {
			return blockedError(ProdOnly, *b, e.Link(prog, b.Number))
		}
		ex, err := tx.CreateExecution(ctx, Execution{
			ProgramID: programID, Pipeline: ProdOnly, Commit: src.Commit, Branch: src.Branch, State: ExecutionQueued,
			Message: fmt.Sprintf("%s %s by %s", promotionWord(cause), src, actor), Cause: cause, TriggeredBy: actor,
			SourceID: src.ID, Config: src.Config, Policy: pol.Raw, ArtifactDigest: src.ArtifactDigest, CreatedAt: e.Clock.Now(),
		})
		if err != nil {
			return err
		}
		verb, action := "promotes", AuditPromote
		if cause == CauseRestore {
			verb, action = "restores", AuditRestore
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("%s %s %s (%s, artifact set %s): %s", ex, verb, src, ShortSHA(src.Commit), ShortDigest(src.ArtifactDigest), e.Link(prog, ex.Number))}
		if err := e.audit(ctx, tx, req, action, ex, res.Message, "from "+src.String()); err != nil {
			return err
		}
		if err := e.event(ctx, tx, ex, actor, EventPromoted, fmt.Sprintf("from %s", src)); err != nil {
			return err
		}
		return e.event(ctx, tx, src, actor, EventPromoted, fmt.Sprintf("to %s", ex))
	})
	return res, err
}

// promotionSource is the execution whose artifact set a promotion of
// number deploys (rule F): the latest successful stage-only execution
// (number 0, or its number); another successful stage-only execution only
// for prod-only --from (cause CauseManual); for a restore (CauseRestore),
// a successful stage-only or full-stack execution whose set is still kept.
func (e *Engine) promotionSource(ctx context.Context, tx EngineTx, prog Program, number int, cause Cause) (Execution, error) {
	if cause == CauseRestore {
		return e.restoreSource(ctx, tx, prog, number)
	}
	succeeded, err := latestSuccessfulStageOnly(ctx, tx, prog.ID)
	if err != nil {
		return Execution{}, err
	}
	if len(succeeded) == 0 {
		return Execution{}, &Refusal{Code: RefusalNotPromotable, Rule: "F", Message: fmt.Sprintf("%s has no successful stage-only execution to promote yet", prog.FullName())}
	}
	src := succeeded[0]
	if number == 0 || number == src.Number {
		return src, nil
	}
	if src, err = tx.ExecutionByNumber(ctx, prog.ID, number); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Execution{}, noSuchExecution(prog, number)
		}
		return Execution{}, err
	}
	if src.Pipeline != StageOnly || src.State != ExecutionSucceeded {
		return Execution{}, &Refusal{Code: RefusalNotPromotable, Rule: "F", Message: fmt.Sprintf("%s is %s; only a succeeded stage-only execution can be promoted", src, src.State)}
	}
	if cause == CausePromotion { // Promote Build: only the latest successful one
		return Execution{}, &Refusal{Code: RefusalNotPromotable, Rule: "D", Message: fmt.Sprintf("%s is no longer the latest successful stage-only execution (%s is); promote that one, or start prod-only with --from %d", src, succeeded[0], src.Number)}
	}
	return src, nil
}

// promotionWord is how a prod-only execution's message says what it does.
func promotionWord(cause Cause) string {
	if cause == CauseRestore {
		return "restores"
	}
	return "promotes"
}

// ensureProdOnly makes sure the program has a prod-only pipeline, creating
// one with the default settings when missing says so.
func (e *Engine) ensureProdOnly(ctx context.Context, tx EngineTx, prog Program, pol Policy, missing prodOnlyMissing) error {
	if pol.Config != nil && pol.Config.Has(ProdOnly) {
		return nil
	}
	ps, err := tx.Pipelines(ctx, prog.ID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Kind == ProdOnly {
			return nil
		}
	}
	if missing != createProdOnly {
		return &Refusal{Code: RefusalNotPromotable, Rule: "D", Message: fmt.Sprintf("%s has no prod-only pipeline yet; Create & Promote (or /stagehand promote after adding prod-only to .github/stagehand.yml) creates one with the default settings: approval on, no schedule", prog.FullName())}
	}
	return tx.SetPipelines(ctx, prog.ID, append(ps, Pipeline{ProgramID: prog.ID, Kind: ProdOnly, PipelineConfig: PipelineConfig{Approval: true}}))
}

// RequestPromotion is a click on Promote Build (rule D): it is allowed
// only on the latest successful stage-only execution, number; the check
// run then asks to confirm (Confirm, or Create & Promote) or dismiss.
func (e *Engine) RequestPromotion(ctx context.Context, req Request, programID int64, number int) error {
	return e.update(ctx, req, programID, func(tx EngineTx, prog Program) error {
		latest, err := latestSuccessfulStageOnly(ctx, tx, programID)
		if err != nil {
			return err
		}
		ex, err := tx.ExecutionByNumber(ctx, programID, number)
		if errors.Is(err, ErrNotFound) {
			return noSuchExecution(prog, number)
		}
		if err != nil {
			return err
		}
		if len(latest) == 0 || latest[0].ID != ex.ID {
			return &Refusal{Code: RefusalNotPromotable, Rule: "D", Message: fmt.Sprintf("%s is no longer the latest successful stage-only execution", ex)}
		}
		if err := e.audit(ctx, tx, req, AuditPromoteRequest, ex, "promotion of "+ex.String()+" requested", ""); err != nil {
			return err
		}
		return e.event(ctx, tx, ex, req.Actor, EventPromoteRequested, "")
	})
}

// latestSuccessfulStageOnly is the one stage-only execution Promote Build
// may promote (rule D), in a slice: empty when there is none.
func latestSuccessfulStageOnly(ctx context.Context, tx EngineTx, programID int64) ([]Execution, error) {
	return tx.Executions(ctx, ExecutionFilter{ProgramID: programID, Pipeline: StageOnly, States: []ExecutionState{ExecutionSucceeded}, Limit: 1})
}
