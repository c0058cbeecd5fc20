-- When retention last removed each artifact set (bot.PruneTx): the history
-- says "pruned by retention on <date>" of a build it can no longer restore.
-- A set is named by its digest (the sha256 of its manifest); a set removed
-- again later (an identical build kept it meanwhile) takes the new time.
-- The PostgreSQL migration 0011 creates the same table.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE pruned_artifacts (
    digest    TEXT    PRIMARY KEY,
    pruned_at INTEGER NOT NULL
);
