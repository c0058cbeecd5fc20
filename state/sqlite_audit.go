package state

import (
	"context"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

const insertAudit = `INSERT INTO audit_records (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// AddAudit appends a record to the audit trail.
func (t *sqliteTx) AddAudit(ctx context.Context, r bot.AuditRecord) (int64, error) {
	res, err := t.tx.ExecContext(ctx, insertAudit, auditArgs(r, dbTime(r.At))...)
	if err != nil {
		return 0, fmt.Errorf("add audit record %s: %w", r.Action, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("add audit record %s: %w", r.Action, err)
	}
	return id, nil
}

// AuditRecords lists the audit records f selects.
func (t *sqliteTx) AuditRecords(ctx context.Context, f bot.AuditFilter) ([]bot.AuditRecord, error) {
	q, args := auditQuery(f, func(int) string { return "?" }, func(at time.Time) any { return dbTime(at) })
	rs, err := sqliteQueryAll(ctx, t, q, args, func(row rowScanner) (bot.AuditRecord, error) {
		return scanAudit(row, func(at *time.Time) any { return timeDest{at} })
	})
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	return rs, nil
}

// The audit retention's statements (migration 0016): the cutoff the
// DELETE trigger lets through, recorded for the delete and removed after
// it, in the same transaction.
const (
	sqliteSetAuditCutoff   = `INSERT INTO audit_prune_cutoff (id, cutoff) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET cutoff = excluded.cutoff`
	sqlitePruneAudit       = `DELETE FROM audit_records WHERE at < ?`
	sqliteClearAuditCutoff = `DELETE FROM audit_prune_cutoff`
)

// PruneAudit deletes the records older than before.
func (t *sqliteTx) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	at := dbTime(before)
	if _, err := t.tx.ExecContext(ctx, sqliteSetAuditCutoff, at); err != nil {
		return 0, fmt.Errorf("prune audit records: record the cutoff: %w", err)
	}
	res, err := t.tx.ExecContext(ctx, sqlitePruneAudit, at)
	if err != nil {
		return 0, fmt.Errorf("prune audit records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune audit records: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, sqliteClearAuditCutoff); err != nil {
		return 0, fmt.Errorf("prune audit records: clear the cutoff: %w", err)
	}
	return int(n), nil
}
