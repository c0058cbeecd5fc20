-- Dashboard sessions: a person signed in with GitHub. id is the hex SHA-256
-- of the cookie's secret (the secret itself is not stored); tokens are the
-- user's GitHub tokens sealed with the server's session key. The SQLite
-- migration 0009 makes the same table; the times are TIMESTAMPTZ, as in 0001.

CREATE TABLE sessions (
    id         TEXT        PRIMARY KEY,
    user_id    BIGINT      NOT NULL,
    login      TEXT        NOT NULL,
    tokens     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX sessions_by_expiry ON sessions (expires_at);
