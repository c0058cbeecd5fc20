-- Automatic redelivery (router.Redeliverer) asks GitHub to send a failed
-- delivery again once per GUID: a GUID is recorded here after GitHub
-- answered the request (accepted it, or refused it for good), so that no
-- later pass, on this replica or another, asks again. delivery_id is the
-- id of the attempt named in the request; outcome is GitHub's answer in
-- words ("requested", or why it refused).
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE redelivery_requests (
    guid         TEXT    PRIMARY KEY,
    event        TEXT    NOT NULL,
    delivery_id  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    requested_at INTEGER NOT NULL
);
