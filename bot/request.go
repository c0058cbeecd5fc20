package bot

import (
	"context"
	"fmt"
)

// Request is who asks the engine for a command, and on what grounds: every
// command takes one (rather than reading them from its context).
type Request struct {
	// Actor is the GitHub login of the person who asks.
	Actor string
	// Key, when set, makes the command take effect at most once: it is
	// recorded in the command's own transaction, and a command whose key
	// is recorded returns ErrAlreadyDone. A webhook handler derives it from
	// what it handles (the comment and the command's place in it, the
	// click's check run, gate and person), so a delivery handled again, or
	// replayed under a new GUID, does not repeat what was done. A refused
	// command records nothing.
	Key string
	// Source is where the request comes from.
	Source RequestSource
	// Delivery is the GUID of the webhook delivery the request came from,
	// for the audit trail (empty when it did not come from one).
	Delivery string
	// Authorization is what the webhook handler established about Actor
	// at that moment; production actions (SPEC §5) are refused, in the
	// command's own transaction, unless it says they are a production
	// approver. A request from GitHub without one is refused (fail
	// closed); one from FromStagehand is not checked.
	Authorization *Authorization
	// Policy is the policy the handler authorized against, so the engine
	// decides with the same one (and reads it only once). nil: the engine
	// reads it.
	Policy *Policy
}

// RequestSource says where a request comes from.
type RequestSource string

// The sources of requests.
const (
	// FromComment is a slash command in an issue or pull-request comment.
	FromComment RequestSource = "comment"
	// FromButton is a check-run button, or GitHub's re-run of a check
	// run or suite.
	FromButton RequestSource = "button"
	// FromDashboard is a form of the dashboard posted by a person signed
	// in with GitHub (the Restore button), authorized as a comment is.
	FromDashboard RequestSource = "dashboard"
	// FromStagehand is Stagehand itself: tests and tools. Its requests are
	// not checked for production approvers.
	FromStagehand RequestSource = "stagehand"
)

// Internal is a request of Stagehand's own (tests, tools) on behalf of
// actor.
func Internal(actor string) Request {
	return Request{Actor: actor, Source: FromStagehand}
}

// Authorization is what the webhook handlers established about the person
// behind a command or a click, at that moment, from GitHub: they have write
// permission (or the command would not have reached the engine), and
// whether they are a production approver under the policy.
type Authorization struct {
	// ProductionApprover: in the production approvers, or approvers are
	// not set and the person has write permission.
	ProductionApprover bool
	// Approvers describes the production approvers, for refusals
	// ("octocat, acme/release-managers").
	Approvers string
}

// requireProductionApprover refuses a production action by someone who is
// not a production approver (SPEC §5).
func requireProductionApprover(req Request, what string) error {
	switch {
	case req.Source == FromStagehand:
		return nil
	case req.Authorization == nil:
		return fmt.Errorf("@%s may not %s: the request from %q carries no authorization, so Stagehand cannot tell whether they are a production approver; refusing", req.Actor, what, req.Source)
	case req.Authorization.ProductionApprover:
		return nil
	}
	return &Refusal{Code: RefusalNotApprover, Message: fmt.Sprintf("@%s is not one of the production approvers (%s), and may not %s: that is a production action", req.Actor, req.Authorization.Approvers, what)}
}

// readPolicy reads the program's policy now through Engine.Policy. It
// fails closed: an unreadable or invalid policy is an error.
func (e *Engine) readPolicy(ctx context.Context, prog Program) (Policy, error) {
	if e.Policy == nil {
		return Policy{}, fmt.Errorf("no policy reader is configured; refusing")
	}
	return e.Policy.Policy(ctx, prog)
}
