-- The notification outbox (bot.Notification): one row per message to one
-- target, written in the transaction of the change it tells of and
-- updated by the sender after each attempt (state pending, sent or
-- gave-up). The target is kept as the policy declared it then: its name,
-- type and the names (never the values) of its secrets.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE notifications (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id     INTEGER NOT NULL,
    execution_id   INTEGER NOT NULL,
    target         TEXT    NOT NULL,
    target_type    TEXT    NOT NULL,
    url_secret     TEXT    NOT NULL,
    signing_secret TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    delivery       TEXT    NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    next_at        INTEGER NOT NULL,
    error          TEXT    NOT NULL
);

CREATE INDEX notifications_due ON notifications (state, next_at);
CREATE INDEX notifications_by_execution ON notifications (execution_id, id);
