package state

import (
	"context"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

const pgInsertAudit = `INSERT INTO audit_records (` + auditColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`

// AddAudit appends a record to the audit trail. Times are truncated to the
// microseconds Postgres keeps.
func (t *postgresTx) AddAudit(ctx context.Context, r bot.AuditRecord) (int64, error) {
	var id int64
	if err := t.queryRow(ctx, pgInsertAudit, auditArgs(r, micro(r.At))...).Scan(&id); err != nil {
		return 0, fmt.Errorf("add audit record %s: %w", r.Action, err)
	}
	return id, nil
}

// AuditRecords lists the audit records f selects.
func (t *postgresTx) AuditRecords(ctx context.Context, f bot.AuditFilter) ([]bot.AuditRecord, error) {
	q, args := auditQuery(f, func(n int) string { return fmt.Sprintf("$%d", n) }, func(at time.Time) any { return micro(at) })
	rs, err := queryAll(ctx, t, q, args, func(row rowScanner) (bot.AuditRecord, error) {
		return scanAudit(row, func(at *time.Time) any { return pgTimeDest{at} })
	})
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	return rs, nil
}

// The audit retention's statements (migration 0013): the cutoff the
// trigger lets through, recorded for the delete and removed after it, in
// the same transaction (no other transaction sees it).
const (
	pgSetAuditCutoff   = `INSERT INTO audit_prune_cutoff (id, cutoff) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET cutoff = excluded.cutoff`
	pgPruneAudit       = `DELETE FROM audit_records WHERE at < $1`
	pgClearAuditCutoff = `DELETE FROM audit_prune_cutoff`
)

// PruneAudit deletes the records older than before. The cutoff is
// truncated to the microseconds Postgres keeps, as AddAudit's times are.
func (t *postgresTx) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	at := micro(before)
	if _, err := t.exec(ctx, pgSetAuditCutoff, at); err != nil {
		return 0, fmt.Errorf("prune audit records: record the cutoff: %w", err)
	}
	n, err := t.exec(ctx, pgPruneAudit, at)
	if err != nil {
		return 0, fmt.Errorf("prune audit records: %w", err)
	}
	if _, err := t.exec(ctx, pgClearAuditCutoff); err != nil {
		return 0, fmt.Errorf("prune audit records: clear the cutoff: %w", err)
	}
	return int(n), nil
}
