-- Leases let one of several replicas do a job alone (the GitHub reporter):
-- AcquireLease gives the lease called name to holder until expires_at, and
-- refuses another holder until then. The SQLite migration 0005 makes the
-- same table; the times are TIMESTAMPTZ, as in 0001.

CREATE TABLE leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
