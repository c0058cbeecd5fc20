-- A delivery that failed after all its retries goes to the poison queue and
-- is recorded here, so that GitHub's "Redeliver" of the same GUID is stored
-- and handled again instead of being dropped as a duplicate. PoisonedAt is
-- part of the redelivered message's id: redeliveries after one poisoning
-- are stored once, and a delivery poisoned again can be redelivered again.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE poisoned_deliveries (
    guid        TEXT    PRIMARY KEY,
    event       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    poisoned_at INTEGER NOT NULL
);
