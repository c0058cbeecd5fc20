-- A delivery that failed after all its retries goes to the poison queue and
-- is recorded here, so that GitHub's "Redeliver" of the same GUID is stored
-- and handled again instead of being dropped as a duplicate. The SQLite
-- migration 0006 makes the same table; the times are TIMESTAMPTZ, as in 0001.

CREATE TABLE poisoned_deliveries (
    guid        TEXT        PRIMARY KEY,
    event       TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    poisoned_at TIMESTAMPTZ NOT NULL
);
