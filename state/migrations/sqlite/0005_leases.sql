-- Leases let one of several replicas do a job alone (the GitHub reporter):
-- AcquireLease gives the lease called name to holder until expires_at, and
-- refuses another holder until then.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
