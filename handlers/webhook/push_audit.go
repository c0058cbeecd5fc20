package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// auditTrigger appends a push's decision for one pipeline (or for the whole
// push) to the audit trail, in the push's transaction: done when it queued
// an execution, refused (with the trigger reason's code and words) when it
// did not.
func auditTrigger(ctx context.Context, tx bot.Tx, base bot.AuditRecord, r bot.TriggerRecord) error {
	rec := base
	rec.Action, rec.ProgramID, rec.ExecutionID = bot.AuditTrigger, r.ProgramID, r.ExecutionID
	rec.Code, rec.Reason, rec.Detail = string(r.Code), r.Reason, string(r.Pipeline)
	rec.Outcome = bot.AuditRefused
	if r.ExecutionID != 0 {
		rec.Outcome = bot.AuditDone
	}
	_, err := tx.AddAudit(ctx, rec)
	return err
}

// auditPolicy appends a policy-change record when a push to the default
// branch brings a policy file that differs from the one the audit trail
// saw last (the first one seen is a change too). The record holds the
// file's SHA-256 ("none": no file; "invalid": a file that does not parse),
// never its contents.
func auditPolicy(ctx context.Context, tx bot.Tx, programID int64, base bot.AuditRecord, commit string, raw []byte, invalid bool) error {
	state := "none"
	switch {
	case invalid:
		state = "invalid"
	case raw != nil:
		sum := sha256.Sum256(raw)
		state = "sha256:" + hex.EncodeToString(sum[:])
	}
	last, err := tx.AuditRecords(ctx, bot.AuditFilter{ProgramIDs: []int64{programID}, Action: bot.AuditPolicyChange, Limit: 1})
	if err != nil {
		return err
	}
	before := "none"
	if len(last) > 0 {
		before = last[0].Detail
	}
	if before == state {
		return nil
	}
	rec := base
	rec.Action, rec.ProgramID, rec.Outcome, rec.Detail = bot.AuditPolicyChange, programID, bot.AuditDone, state
	rec.Reason = fmt.Sprintf("%s on the default branch changed at %s (%s → %s)", bot.ConfigPath, bot.ShortSHA(commit), short(before), short(state))
	_, err = tx.AddAudit(ctx, rec)
	return err
}

// short abbreviates a policy state's digest for the record's words.
func short(state string) string {
	if len(state) > len("sha256:")+12 {
		return state[:len("sha256:")+12]
	}
	return state
}
