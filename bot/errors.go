package bot

import (
	"errors"
	"fmt"
)

// Stagehand's errors are of two kinds. A *Refusal is a decision: Stagehand
// would not do what someone asked, and says why in words they can act on;
// handlers reply with it, and count it. Everything else is a failure
// (a store, GitHub or a worker did not answer), wrapped with %w on its way
// up so errors.Is finds its cause; handlers log it, and the request is
// retried or answered "failed".

// ErrNotFound is returned by stores when the asked-for value does not exist.
var ErrNotFound = errors.New("not found")

// RefusalCode says what kind of refusal a *Refusal is, for code that must
// tell them apart (tests, metrics, the web pages' status codes) without
// reading the words.
type RefusalCode string

// The refusal codes.
const (
	// RefusalBadRequest: the request names something that cannot be
	// (an unknown pipeline, environment, command, flag or variable name).
	RefusalBadRequest RefusalCode = "bad-request"
	// RefusalNoSuchExecution: no execution has the number given.
	RefusalNoSuchExecution RefusalCode = "no-such-execution"
	// RefusalNotConfigured: the repository's configuration does not
	// declare what the request needs (rule H), or its file is invalid.
	RefusalNotConfigured RefusalCode = "not-configured"
	// RefusalInvalidPolicy: the default branch's file does not parse, so
	// there is no policy and nothing is allowed until it is fixed.
	RefusalInvalidPolicy RefusalCode = "invalid-policy"
	// RefusalBlocked: another execution holds the pipeline or environment
	// (rules B and E).
	RefusalBlocked RefusalCode = "blocked"
	// RefusalNotPromotable: there is no, or not this, execution to promote
	// (rules D and F).
	RefusalNotPromotable RefusalCode = "not-promotable"
	// RefusalWrongState: the execution named, or none, or several, are in
	// the state the command acts on.
	RefusalWrongState RefusalCode = "wrong-state"
	// RefusalNeedsRollbackApproval: the deploy would roll production back
	// and needs Approve Rollback (rule G).
	RefusalNeedsRollbackApproval RefusalCode = "needs-rollback-approval"
	// RefusalSelfApproval: production's prevent_self_approval keeps the
	// person who started or promoted an execution from approving it.
	RefusalSelfApproval RefusalCode = "self-approval"
	// RefusalNotApprover: a production action by someone who is not one of
	// the production approvers (SPEC §5).
	RefusalNotApprover RefusalCode = "not-approver"
	// RefusalNoPermission: the person has less than write permission on
	// the repository.
	RefusalNoPermission RefusalCode = "no-permission"
	// RefusalStale: a click on a button its check run no longer offers.
	RefusalStale RefusalCode = "stale"
	// RefusalNotFound: a page or API request names something that does not
	// exist, or that the person may not see (answered alike).
	RefusalNotFound RefusalCode = "not-found"
	// RefusalSignIn: the person must sign in (again) to see it.
	RefusalSignIn RefusalCode = "sign-in"
	// RefusalUnavailable: Stagehand could not ask GitHub whether the
	// person may see it, and shows nothing until it can (fail closed).
	RefusalUnavailable RefusalCode = "unavailable"
	// RefusalForged: a dashboard form that did not come from Stagehand's
	// own page in the sender's sign-in (no or another session's token,
	// another site's Origin, a GitHub token instead of a sign-in).
	RefusalForged RefusalCode = "forged"
)

// Refusal explains why Stagehand refused to do something, in words a user
// can act on. Code tells the kinds apart; Rule is the letter of the rule in
// the specification ("B", "C", "E", ...), empty when the refusal is not
// about one of them. A command that is refused changes nothing.
type Refusal struct {
	Code    RefusalCode
	Rule    string
	Message string
}

// RuleError is the former name of Refusal.
type RuleError = Refusal

func (e *Refusal) Error() string {
	if e.Rule == "" {
		return e.Message
	}
	return fmt.Sprintf("%s (rule %s)", e.Message, e.Rule)
}

// Refused returns the refusal err is or wraps, or nil when err is a failure
// (or nil).
func Refused(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return nil
}
