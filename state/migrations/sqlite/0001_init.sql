-- The first schema of Stagehand's state.
--
-- Times are INTEGER unix nanoseconds in UTC; NULL is the zero time.
-- Booleans are INTEGER 0 or 1. An id of 0 in Go is NULL here.
-- Column names avoid SQL keywords (commit, trigger) so the Postgres port can
-- keep them.

CREATE TABLE installations (
    id         INTEGER PRIMARY KEY, -- GitHub's installation id
    account    TEXT    NOT NULL,
    suspended  INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER
);

CREATE TABLE programs (
    id              INTEGER PRIMARY KEY,
    installation_id INTEGER NOT NULL,
    owner           TEXT    NOT NULL COLLATE NOCASE, -- GitHub names ignore case
    repo            TEXT    NOT NULL COLLATE NOCASE,
    removed         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (owner, repo)
);

CREATE INDEX programs_installation ON programs (installation_id);

CREATE TABLE pipelines (
    program_id   INTEGER NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    branch       TEXT    NOT NULL,
    trigger_kind TEXT    NOT NULL,
    approval     INTEGER NOT NULL,
    scheduled    INTEGER NOT NULL,
    PRIMARY KEY (program_id, kind)
);

CREATE TABLE executions (
    id           INTEGER PRIMARY KEY,
    program_id   INTEGER NOT NULL REFERENCES programs (id),
    number       INTEGER NOT NULL,
    pipeline     TEXT    NOT NULL,
    commit_sha   TEXT    NOT NULL,
    branch       TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    cause        TEXT    NOT NULL,
    triggered_by TEXT    NOT NULL,
    delivery_id  TEXT    NOT NULL,
    source_id    INTEGER REFERENCES executions (id),
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    UNIQUE (program_id, number)
);

CREATE INDEX executions_pipeline_state ON executions (program_id, pipeline, state);
CREATE INDEX executions_state ON executions (state);

CREATE TABLE steps (
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    PRIMARY KEY (execution_id, name),
    UNIQUE (execution_id, position)
);

CREATE TABLE trigger_records (
    id           INTEGER PRIMARY KEY,
    program_id   INTEGER NOT NULL REFERENCES programs (id),
    delivery_id  TEXT    NOT NULL,
    commit_sha   TEXT    NOT NULL,
    branch       TEXT    NOT NULL,
    pipeline     TEXT    NOT NULL, -- empty for a record about the whole push
    execution_id INTEGER REFERENCES executions (id),
    reason       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE INDEX trigger_records_commit ON trigger_records (program_id, commit_sha);

CREATE TABLE processed_deliveries (
    guid         TEXT    PRIMARY KEY,
    event        TEXT    NOT NULL,
    processed_at INTEGER NOT NULL
);
