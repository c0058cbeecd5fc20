-- Audit retention (--audit-retention): the retention pass deletes the
-- audit records older than a cutoff, and nothing else may delete one.
-- The pass's transaction first records its cutoff in audit_prune_cutoff
-- (one row at most), deletes the records older than it, and removes the
-- row again before it commits (state.PruneAudit); no other transaction
-- sees the row. The trigger function of 0008 is replaced by one that lets
-- a DELETE through only when the row is older than the recorded cutoff:
-- with none recorded every DELETE is refused, and a stray
-- `DELETE FROM audit_records` cannot remove a recent record. UPDATE is
-- refused as before. The SQLite migration 0016 does the same.

CREATE TABLE audit_prune_cutoff (
    id     SMALLINT    PRIMARY KEY CHECK (id = 1),
    cutoff TIMESTAMPTZ NOT NULL
);

CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_prune_cutoff WHERE id = 1 AND OLD.at < cutoff) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit records are append-only';
END;
$$;
