package bot

import (
	"context"
	"errors"
	"fmt"
)

// ArtifactSets says whether an artifact set is still kept (state.Artifacts
// and state.NATSArtifacts do): Get fails with ErrNotFound once retention
// removed it.
type ArtifactSets interface {
	Get(ctx context.Context, digest string) (ArtifactSet, error)
}

// Restore is /stagehand restore production N: a prod-only execution that
// deploys the artifact set of execution number, an earlier succeeded
// stage-only or full-stack build, through the same path as a promotion
// from it (rule F: the set is re-verified at artifact-preparation; rule G:
// going back needs Approve Rollback; the approval quorum, windows and
// freezes as usual). Only production can be restored, and only by its
// approvers (a production action).
func (e *Engine) Restore(ctx context.Context, req Request, programID int64, env EnvironmentName, number int) (Result, error) {
	if env != Production {
		return Result{}, &Refusal{Code: RefusalBadRequest, Message: restoreOnlyProduction(env)}
	}
	if number <= 0 {
		return Result{}, &Refusal{Code: RefusalBadRequest, Message: "restore needs the number of the execution whose build to restore: /stagehand restore production N"}
	}
	if err := requireProductionApprover(req, "restore an earlier build to production"); err != nil {
		return Result{}, err
	}
	return e.promote(ctx, req, programID, number, keepPipelines, CauseRestore)
}

// restoreOnlyProduction says why env cannot be restored.
func restoreOnlyProduction(env EnvironmentName) string {
	return fmt.Sprintf("only production can be restored, not %s: stage runs whatever the latest stage-only or full-stack build deployed there", env)
}

// restoreSource is the execution a restore of number deploys the build of:
// a succeeded stage-only or full-stack execution whose artifact set is
// still kept.
func (e *Engine) restoreSource(ctx context.Context, tx EngineTx, prog Program, number int) (Execution, error) {
	src, err := tx.ExecutionByNumber(ctx, prog.ID, number)
	if errors.Is(err, ErrNotFound) {
		return Execution{}, noSuchExecution(prog, number)
	}
	if err != nil {
		return Execution{}, err
	}
	if src.Pipeline != StageOnly && src.Pipeline != FullStack {
		return Execution{}, &Refusal{Code: RefusalNotPromotable, Rule: "F", Message: fmt.Sprintf("%s is a %s execution; only the build of a succeeded stage-only or full-stack execution can be restored (restore the execution it deployed from)", src, src.Pipeline)}
	}
	if src.State != ExecutionSucceeded || src.ArtifactDigest == "" {
		return Execution{}, &Refusal{Code: RefusalNotPromotable, Rule: "F", Message: fmt.Sprintf("%s is %s; only the build of a succeeded stage-only or full-stack execution can be restored", src, src.State)}
	}
	if e.Artifacts == nil {
		return Execution{}, fmt.Errorf("no artifact store is configured, so Stagehand cannot tell whether the build of %s is still kept; refusing", src)
	}
	if _, err := e.Artifacts.Get(ctx, src.ArtifactDigest); errors.Is(err, ErrNotFound) {
		when := ""
		if at, err := tx.PrunedAt(ctx, []string{src.ArtifactDigest}); err != nil {
			return Execution{}, err
		} else if t, ok := at[src.ArtifactDigest]; ok {
			when = " on " + t.UTC().Format("2006-01-02")
		}
		return Execution{}, &Refusal{Code: RefusalNotPromotable, Rule: "F", Message: fmt.Sprintf("%s cannot be restored: its artifact set %s was pruned by retention%s; restorable builds are listed on the environment history page: %s", src, ShortDigest(src.ArtifactDigest), when, e.historyLink(prog))}
	} else if err != nil {
		return Execution{}, fmt.Errorf("reading the artifact set %s of %s: %w", ShortDigest(src.ArtifactDigest), src, err)
	}
	return src, nil
}

// historyLink is the dashboard's page of production's history.
func (e *Engine) historyLink(prog Program) string {
	return ProgramURL(e.PublicURL, prog) + "/environments/" + string(Production) + "/deployments"
}

// slashRestore parses "production N".
func slashRestore(cmd *SlashCommand, _ string, args []slashToken) string {
	if len(args) == 0 {
		return "the environment is missing"
	}
	if slashOption(args[0].text) {
		return slashNotOption(args[0].text)
	}
	switch env := EnvironmentName(slashLower(args[0].text)); env {
	case Production:
		cmd.Environment = env
	case Stage:
		return restoreOnlyProduction(env)
	default:
		return fmt.Sprintf("%s is not an environment (only production can be restored)", slashQuote(args[0].text))
	}
	if len(args) == 1 {
		return "the execution number is missing"
	}
	var problem string
	if cmd.Number, problem = slashPositionalNumber(args[1]); problem != "" {
		return problem
	}
	if cmd.Number == 0 {
		return "the execution number is missing"
	}
	if len(args) > 2 {
		return slashExtra(args[2], "takes the environment and one execution number")
	}
	return ""
}
