-- The newest valid policy seen on each program's default branch
-- (.github/stagehand.yml at a pushed head of it, SPEC §3): the deploy
-- calendar gate reads its windows and freezes, so a freeze merged to the
-- default branch holds executions already queued or waiting. Only valid
-- files are kept (an invalid one never lifts a freeze); a program without a
-- row uses the policy each execution was created under.
-- The PostgreSQL migration 0009 creates the same table.

CREATE TABLE latest_policies (
    program_id  INTEGER PRIMARY KEY REFERENCES programs (id) ON DELETE CASCADE,
    branch      TEXT    NOT NULL,
    commit_sha  TEXT    NOT NULL,
    raw         BLOB    NOT NULL
);
