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
// a production approver lets a deploy that its environment's deploy
// windows or freezes hold start now. It is refused without a reason, to
// anyone who is not a production approver (SPEC §5), where the policy says
// break_glass: false, and unless the deploy is held right now: an override
// cannot be given in advance. It changes no other gate (the approval and
// its quorum, and a schedule, come before the deploy). The override is an
// event of the execution (EventPolicyOverride, the reason its detail),
// recorded in the same transaction that lets the deploy start, so the
// check run, the dashboard and the API show who overrode and why.
func (e *Engine) Override(ctx context.Context, req Request, programID int64, number int, reason string) (Result, error) {
	actor := req.Actor
	if err := requireProductionApprover(req, "override the deploy windows and freezes (break-glass)"); err != nil {
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
		ex, steps, err := e.pick(ctx, tx, prog, number, "held by a deploy window or freeze", func(ex Execution, steps []Step) bool {
			return heldDeploy(ex, steps) != nil
		})
		if err != nil {
			return err
		}
		held := heldDeploy(ex, steps)
		env := KindOf(held.Name).Environment
		if pol.Config != nil {
			if ec := pol.Config.Environment(env); ec != nil && ec.BreakGlassOff {
				return &Refusal{Code: RefusalBreakGlassOff, Message: fmt.Sprintf("%s has break_glass: false in .github/stagehand.yml (%s): its deploy windows and freezes cannot be overridden; %s waits until they open, or change the policy on the default branch", env, pol.Describe(), ex)}
			}
		}
		if err := e.event(ctx, tx, ex, actor, EventPolicyOverride, reason); err != nil {
			return err
		}
		if err := e.notify(ctx, tx, ex, NotifyOverridden, reason); err != nil {
			return err
		}
		res = Result{Execution: ex, Message: fmt.Sprintf("%s: break-glass override by %s recorded (%q): %s starts now, although %s: %s",
			ex, actor, reason, held.Name, strings.TrimPrefix(held.Message, "waiting: "), e.Link(prog, ex.Number))}
		return e.audit(ctx, tx, req, AuditOverride, ex, res.Message, reason)
	})
	return res, err
}

// heldDeploy is the deploy step of an active execution that waits for its
// environment's calendar (windows and freezes), or nil.
func heldDeploy(ex Execution, steps []Step) *Step {
	if !ex.State.Active() {
		return nil
	}
	for i, s := range steps {
		if KindOf(s.Name).Deploy && s.State == StepWaiting {
			return &steps[i]
		}
	}
	return nil
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
