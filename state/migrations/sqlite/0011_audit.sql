-- The audit trail (bot.AuditRecord): one row per decision or refusal that
-- changed, or tried to change, something. Append-only: Stagehand never
-- updates or deletes a row, and the triggers below refuse to. program_id
-- and execution_id are 0 when the record is about none (a sign-in), and
-- carry no foreign keys: a record outlives what it is about.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE audit_records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    program_id   INTEGER NOT NULL,
    execution_id INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    code         TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    delivery     TEXT    NOT NULL
);

CREATE INDEX audit_records_by_program ON audit_records (program_id, id);
CREATE INDEX audit_records_by_time ON audit_records (at);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
