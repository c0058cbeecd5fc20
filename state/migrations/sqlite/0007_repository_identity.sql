-- Programs are keyed by GitHub's immutable repository id, so a renamed or
-- re-created repository never inherits another's variables, approvals or
-- history:
--   github_id      the repository's id on GitHub; 0 = unknown (a program
--                  recorded before this migration: it adopts the id of the
--                  next repository seen under its name). Unique when known.
--   default_branch as the last payload named it; '' = unknown.
--   holds_name     whether the program holds its owner/repo. A program whose
--                  repository was deleted and created again (a new id under
--                  the same name) keeps its name for the record but gives it
--                  up: the name is unique only among the programs holding it.
-- Nothing is backfilled.
--
-- SQLite cannot drop the table's UNIQUE (owner, repo), so the table is built
-- again (https://www.sqlite.org/lang_altertable.html#otheralter): migrate
-- runs with foreign key enforcement off and checks the references before it
-- commits. The new table is renamed to programs after the old one is
-- dropped, so the other tables' REFERENCES programs (id) name it.

CREATE TABLE programs_new (
    id              INTEGER PRIMARY KEY,
    installation_id INTEGER NOT NULL,
    owner           TEXT    NOT NULL COLLATE NOCASE, -- GitHub names ignore case
    repo            TEXT    NOT NULL COLLATE NOCASE,
    removed         INTEGER NOT NULL DEFAULT 0,
    github_id       INTEGER NOT NULL DEFAULT 0,
    default_branch  TEXT    NOT NULL DEFAULT '',
    holds_name      INTEGER NOT NULL DEFAULT 1
);

INSERT INTO programs_new (id, installation_id, owner, repo, removed)
SELECT id, installation_id, owner, repo, removed FROM programs;

DROP TABLE programs;
ALTER TABLE programs_new RENAME TO programs;

CREATE INDEX programs_installation ON programs (installation_id);
-- EnsureProgram's ON CONFLICT clauses name these two indexes.
CREATE UNIQUE INDEX programs_name ON programs (owner, repo) WHERE holds_name;
CREATE UNIQUE INDEX programs_github_id ON programs (github_id) WHERE github_id <> 0;
