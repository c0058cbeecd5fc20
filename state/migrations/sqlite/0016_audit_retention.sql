-- Audit retention (--audit-retention): the retention pass deletes the
-- audit records older than a cutoff, and nothing else may delete one.
-- The pass's transaction first records its cutoff in audit_prune_cutoff
-- (one row at most), deletes the records older than it, and removes the
-- row again before it commits (state.PruneAudit). The DELETE trigger of
-- 0011 is replaced by one that refuses unless the row is older than the
-- recorded cutoff: with none recorded, which is the table's state outside
-- that transaction, every DELETE is refused, and a stray
-- `DELETE FROM audit_records` cannot remove a recent record. The UPDATE
-- trigger of 0011 stays. The PostgreSQL migration 0013 does the same.

CREATE TABLE audit_prune_cutoff (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff INTEGER NOT NULL
);

DROP TRIGGER audit_records_no_delete;

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_cutoff WHERE id = 1 AND OLD.at < cutoff)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
