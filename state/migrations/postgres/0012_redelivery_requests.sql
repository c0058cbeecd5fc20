-- Automatic redelivery (router.Redeliverer) asks GitHub to send a failed
-- delivery again once per GUID: a GUID is recorded here after GitHub
-- answered the request, so that no later pass, on this replica or another,
-- asks again. The SQLite migration 0015 makes the same table; the times
-- are TIMESTAMPTZ, as in 0001.

CREATE TABLE redelivery_requests (
    guid         TEXT        PRIMARY KEY,
    event        TEXT        NOT NULL,
    delivery_id  BIGINT      NOT NULL,
    outcome      TEXT        NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL
);
