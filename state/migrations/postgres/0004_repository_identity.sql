-- Programs are keyed by GitHub's immutable repository id, so a renamed or
-- re-created repository never inherits another's variables, approvals or
-- history. The SQLite migration 0007 makes the same change:
--   github_id      the repository's id on GitHub; 0 = unknown (a program
--                  recorded before this migration: it adopts the id of the
--                  next repository seen under its name). Unique when known.
--   default_branch as the last payload named it; '' = unknown.
--   holds_name     whether the program holds its owner/repo. A program whose
--                  repository was deleted and created again (a new id under
--                  the same name) keeps its name for the record but gives it
--                  up: the name is unique only among the programs holding it.
-- Nothing is backfilled.

ALTER TABLE programs ADD COLUMN github_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE programs ADD COLUMN default_branch TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE programs ADD COLUMN holds_name BOOLEAN NOT NULL DEFAULT TRUE;

-- EnsureProgram's ON CONFLICT clauses name these two indexes.
DROP INDEX programs_name;
CREATE UNIQUE INDEX programs_name ON programs (lower(owner), lower(repo)) WHERE holds_name;
CREATE UNIQUE INDEX programs_github_id ON programs (github_id) WHERE github_id <> 0;
