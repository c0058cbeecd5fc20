-- Dashboard sessions: a person signed in with GitHub. id is the hex SHA-256
-- of the cookie's secret (the secret itself is not stored); tokens are the
-- user's GitHub tokens sealed with the server's session key.
--
-- The conventions of 0001 hold: times are INTEGER unix nanoseconds in UTC.

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    login      TEXT    NOT NULL,
    tokens     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX sessions_by_expiry ON sessions (expires_at);
