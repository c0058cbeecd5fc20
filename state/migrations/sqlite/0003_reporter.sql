-- What the GitHub reporter keeps: a version per execution that the store
-- bumps on every change to the execution, its steps or its events, the
-- version last brought to GitHub, and the check runs and deployments
-- Stagehand made on GitHub for each execution.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC;
-- column names avoid SQL keywords (key).

ALTER TABLE executions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN reported_version INTEGER NOT NULL DEFAULT 0;
-- changed_at is when version was last bumped; the reporter takes the
-- executions that waited longest first. Executions from before this
-- migration have version 0 = reported_version: nothing to report.
ALTER TABLE executions ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE executions SET changed_at = created_at;

-- Holds only the executions waiting for the reporter, so ExecutionsToReport
-- reads a short index in order rather than scanning every execution.
-- Postgres has partial indexes too: the same statement works there.
CREATE INDEX executions_to_report ON executions (changed_at, id) WHERE version > reported_version;

CREATE TABLE github_refs (
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    ref_key      TEXT    NOT NULL, -- the ref's key: "check-run/0", "deployment/deploy-stage"
    github_id    INTEGER NOT NULL,
    reported     TEXT    NOT NULL,
    PRIMARY KEY (execution_id, ref_key)
);
