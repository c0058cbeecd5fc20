package bot

import (
	"context"
	"fmt"
	"strings"
)

// OverrideCommand is the slash command of the break-glass override.
const OverrideCommand = "deploy-now"

// RefusalBreakGlassOff: the environment forbids break-glass overrides
// (break_glass: false).
const RefusalBreakGlassOff RefusalCode = "break-glass-off"

// maxOverrideReason bounds the reason of an override, in bytes.
const maxOverrideReason = 1000

// Override is the break-glass (/stagehand deploy-now --override "reason"):
// a production approver lets the production deploy of an active execution
// start inside a freeze or outside a deploy window. It is refused without
// a reason, to anyone who is not a production approver (SPEC §5), and
// where the policy says break_glass: false. It changes no other gate: the
// approval (and its quorum) and a schedule still apply. The override is an
// event of the execution (EventPolicyOverride, the reason its detail), so
// the check run, the dashboard and the API show who overrode and why.
func (e *Engine) Override(ctx context.Context, req Request, programID int64, number int, reason string) (Result, error) {
	actor := req.Actor
	if err := requireProductionApprover(req, "override production's deploy windows and freezes (break-glass)"); err != nil {
		return Result{}, err
	}
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" {
		return Result{}, &Refusal{Code: RefusalBadRequest, Message: `a break-glass override needs a reason, which is recorded and shown: /stagehand deploy-now --override "why it cannot wait"`}
	}
	if len(reason) > maxOverrideReason {
		return Result{}, &Refusal{Code: RefusalBadRequest, Message: fmt.Sprintf("the reason is %d bytes long; keep it under %d and link to the details", len(reason), maxOverrideReason)}
	}
	var res Result
	err := e.updateWithPolicy(ctx, req, programID, func(tx EngineTx, prog Program, pol Policy) error {
		if pol.Config == nil || pol.Config.Production == nil {
			return &Refusal{Code: RefusalNotConfigured, Message: fmt.Sprintf("%s has no production environment in .github/stagehand.yml on its default branch (%s); there is nothing to override", prog.FullName(), pol.Describe())}
		}
		if pol.Config.Production.BreakGlassOff {
			return &Refusal{Code: RefusalBreakGlassOff, Message: fmt.Sprintf("production has break_glass: false in .github/stagehand.yml (%s): its deploy windows and freezes cannot be overridden; wait for the window, or change the policy on the default branch", pol.Describe())}
		}
		ex, _, err := e.pick(ctx, tx, prog, number, "about to deploy to production", productionDeployAhead)
		if err != nil {
			return err
		}
		if err := e.event(ctx, tx, ex, actor, EventPolicyOverride, reason); err != nil {
			return err
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("%s: break-glass override by %s recorded (%q): its production deploy may start inside a freeze or outside a deploy window; its approval and schedule still apply: %s",
			ex, actor, reason, e.Link(prog, ex.Number))}
		return nil
	})
	return res, err
}

// productionDeployAhead accepts an active execution whose production
// deploy has not started yet.
func productionDeployAhead(ex Execution, steps []Step) bool {
	if !ex.State.Active() || !Holds(ex.Pipeline, Production) {
		return false
	}
	for _, s := range steps {
		if k := KindOf(s.Name); k.Deploy && k.Environment == Production {
			return s.State == StepPending || s.State == StepWaiting
		}
	}
	return false
}

// Overrides are the break-glass overrides of an execution, oldest first.
func Overrides(events []Event) []Event {
	var out []Event
	for _, ev := range events {
		if ev.Kind == EventPolicyOverride {
			out = append(out, ev)
		}
	}
	return out
}
