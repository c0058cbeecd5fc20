package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AuditAction says what an audit record is about. The actions are stored as
// their string values, so the strings are a contract with the stores' data
// and the API. A refused command or click is recorded under the name it was
// asked by (the slash command's name, the button's action).
type AuditAction string

// The actions Stagehand records.
const (
	AuditTrigger        AuditAction = "trigger"         // a push's decision for one pipeline (rule A)
	AuditStart          AuditAction = "start"           // a manual start
	AuditStarted        AuditAction = "started"         // an execution began to run (Stagehand's decision under rule B)
	AuditRerun          AuditAction = "rerun"           // a re-run
	AuditPromoteRequest AuditAction = "promote-request" // a click on Promote Build
	AuditPromoteDismiss AuditAction = "promote-dismiss" // a click on Dismiss
	AuditPromote        AuditAction = "promote"         // a promotion (Confirm, /stagehand promote)
	AuditRestore        AuditAction = "restore"         // a restore of an earlier build to production
	AuditApprove        AuditAction = "approve"         // an approval; Detail holds the quorum state
	AuditReject         AuditAction = "reject"          // a rejection
	AuditSchedule       AuditAction = "schedule"        // a schedule or Deploy Now
	AuditOverride       AuditAction = "override"        // a break-glass override (EventPolicyOverride)
	AuditCancel         AuditAction = "cancel"          // a cancel
	AuditVariableSet    AuditAction = "variable-set"    // a variable set: its name, never its value
	AuditVariableUnset  AuditAction = "variable-unset"  // a variable removed
	AuditPolicyChange   AuditAction = "policy-change"   // a push to the default branch that changes the policy file
	AuditSignIn         AuditAction = "sign-in"         // a sign-in to the dashboard
	AuditPrune          AuditAction = "audit-prune"     // retention removed the records older than --audit-retention
)

// AuditOutcome says whether what was asked was done.
type AuditOutcome string

// The outcomes.
const (
	AuditDone    AuditOutcome = "done"
	AuditRefused AuditOutcome = "refused"
)

// AuditRecord is one entry of the audit trail: a decision or refusal that
// changed, or tried to change, something. Records are append-only:
// Stagehand never updates one, and deletes one only when it is older than
// the audit retention (--audit-retention; default never, AuditTx.PruneAudit). Nothing in a record is a secret:
// variables are named, their values never recorded.
type AuditRecord struct {
	ID     int64 // set by the store, increasing
	At     time.Time
	Actor  string // the GitHub login; empty for Stagehand itself
	Action AuditAction
	// ProgramID and ExecutionID: what it is about (0: none, as for a
	// sign-in).
	ProgramID   int64
	ExecutionID int64
	Outcome     AuditOutcome
	// Code is the refusal's code (a RefusalCode, or a trigger reason's
	// code); Reason its words, or what was done.
	Code   string
	Reason string
	// Detail adds what the action needs: the quorum state of an approval
	// ("1 of 2"), a variable's environment and name, the policy file's
	// digest.
	Detail string
	// Delivery is the GitHub delivery GUID the request came from (empty
	// for the dashboard and Stagehand's own requests).
	Delivery string
}

// AuditFilter selects audit records. Zero fields match everything.
type AuditFilter struct {
	// ProgramIDs: records of these programs only (nil: of any program,
	// and of none).
	ProgramIDs []int64
	// OwnBy, with ProgramIDs, also selects the records of no program
	// whose actor it is (any case): a person's own sign-ins.
	OwnBy       string
	ExecutionID int64
	Actor       string
	Action      AuditAction
	// Since and Until bound At: Since <= At < Until.
	Since, Until time.Time
	// Oldest lists oldest first (by ID); otherwise newest first.
	Oldest bool
	// After continues a listing: records after the record of this ID in
	// the listing's order (0: from the start).
	After int64
	// Limit caps how many (0: no cap).
	Limit int
}

// AuditTx is the audit trail: written in the transaction of what it records,
// never changed, removed only by the audit retention.
type AuditTx interface {
	// AddAudit appends a record and returns its ID.
	AddAudit(ctx context.Context, r AuditRecord) (int64, error)
	// PruneAudit deletes the records older than before (At < before) and
	// returns how many. It is the one way a record leaves the store: the
	// tables refuse any other DELETE (the migrations' triggers), and
	// every UPDATE.
	PruneAudit(ctx context.Context, before time.Time) (int, error)
	// AuditRecords lists records matching f.
	AuditRecords(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
}

// audit records a command's effect in its transaction.
func (e *Engine) audit(ctx context.Context, tx EngineTx, req Request, action AuditAction, ex Execution, reason, detail string) error {
	_, err := tx.AddAudit(ctx, AuditRecord{
		At: e.Clock.Now(), Actor: req.Actor, Action: action, ProgramID: ex.ProgramID, ExecutionID: ex.ID,
		Outcome: AuditDone, Reason: reason, Detail: detail, Delivery: req.Delivery,
	})
	if err != nil {
		return fmt.Errorf("recording %s in the audit trail: %w", action, err)
	}
	return nil
}

// RefusalRecord is the audit record of a refused request: err's code (a
// *Refusal's; "already-done" for ErrAlreadyDone, a replay of what was
// done; "failed" for anything else: it was not carried out either) and
// words.
func RefusalRecord(at time.Time, req Request, action string, programID, executionID int64, err error) AuditRecord {
	code := "failed"
	if re := Refused(err); re != nil {
		code = string(re.Code)
	} else if errors.Is(err, ErrAlreadyDone) {
		code = "already-done"
	}
	return AuditRecord{
		At: at, Actor: req.Actor, Action: AuditAction(action), ProgramID: programID, ExecutionID: executionID,
		Outcome: AuditRefused, Code: code, Reason: err.Error(), Delivery: req.Delivery,
	}
}
