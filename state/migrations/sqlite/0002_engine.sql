-- What the execution engine keeps: the configuration and artifacts an
-- execution runs with, step attempts and leases, what runs on each
-- environment, the variables set with /stagehand env set, and the record of
-- what people and Stagehand did to executions.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC,
-- NULL for the zero time; column names avoid SQL keywords (rollback, key, at).

ALTER TABLE executions ADD COLUMN config BLOB; -- NULL: none kept
ALTER TABLE executions ADD COLUMN artifact_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN scheduled_at INTEGER;
ALTER TABLE executions ADD COLUMN rollback_reason TEXT NOT NULL DEFAULT '';

ALTER TABLE steps ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN lease_until INTEGER;
ALTER TABLE steps ADD COLUMN log_tail TEXT NOT NULL DEFAULT '';

CREATE TABLE deployments (
    program_id      INTEGER NOT NULL REFERENCES programs (id),
    environment     TEXT    NOT NULL CHECK (environment IN ('stage', 'production')),
    execution_id    INTEGER REFERENCES executions (id),
    pipeline        TEXT    NOT NULL,
    number          INTEGER NOT NULL,
    commit_sha      TEXT    NOT NULL,
    artifact_digest TEXT    NOT NULL,
    since           INTEGER,
    PRIMARY KEY (program_id, environment)
);

CREATE TABLE variables (
    program_id  INTEGER NOT NULL REFERENCES programs (id),
    environment TEXT    NOT NULL CHECK (environment IN ('stage', 'production')),
    name        TEXT    NOT NULL, -- the variable's key
    value       TEXT    NOT NULL,
    PRIMARY KEY (program_id, environment, name)
);

CREATE TABLE execution_events (
    id           INTEGER PRIMARY KEY, -- insertion order
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    occurred_at  INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);

CREATE INDEX execution_events_execution ON execution_events (execution_id);
