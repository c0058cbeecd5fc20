package state

import (
	"context"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// AddAudit checks a record before it is appended: an action and an outcome
// of the two there are; a zero time is the store's now.
func (t checkedTx) AddAudit(ctx context.Context, r bot.AuditRecord) (int64, error) {
	switch {
	case r.Action == "":
		return 0, fmt.Errorf("add audit record: empty action")
	case r.Outcome != bot.AuditDone && r.Outcome != bot.AuditRefused:
		return 0, fmt.Errorf("add audit record %s: outcome %q, want %q or %q", r.Action, r.Outcome, bot.AuditDone, bot.AuditRefused)
	case r.ProgramID < 0 || r.ExecutionID < 0:
		return 0, fmt.Errorf("add audit record %s: negative program or execution id", r.Action)
	}
	if r.At.IsZero() {
		r.At = t.now()
	}
	r.At = r.At.UTC()
	return t.storeTx.AddAudit(ctx, r)
}

// AuditRecords checks the filter: a limit is not negative, and Until comes
// after Since.
func (t checkedTx) AuditRecords(ctx context.Context, f bot.AuditFilter) ([]bot.AuditRecord, error) {
	switch {
	case f.Limit < 0:
		return nil, fmt.Errorf("audit records: negative limit %d", f.Limit)
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		return nil, fmt.Errorf("audit records: until %s is not after since %s", f.Until, f.Since)
	}
	return t.storeTx.AuditRecords(ctx, f)
}

// PruneAudit checks the cutoff is set.
func (t checkedTx) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	if before.IsZero() {
		return 0, fmt.Errorf("prune audit records: no cutoff")
	}
	return t.storeTx.PruneAudit(ctx, before.UTC())
}
