package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// Dashboard sessions: the SQLite store's statements in Postgres's dialect.
const (
	pgUpsertSession = `INSERT INTO sessions (id, user_id, login, tokens, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, login = excluded.login, tokens = excluded.tokens,
    created_at = excluded.created_at, expires_at = excluded.expires_at`
	pgSelectSession         = `SELECT id, user_id, login, tokens, created_at, expires_at FROM sessions WHERE id = $1`
	pgDeleteSession         = `DELETE FROM sessions WHERE id = $1`
	pgDeleteExpiredSessions = `DELETE FROM sessions WHERE expires_at <= $1`
)

// PutSession stores s, replacing the session of the same ID. Times are
// truncated to the microseconds Postgres keeps.
func (t *postgresTx) PutSession(ctx context.Context, s bot.Session) error {
	if _, err := t.exec(ctx, pgUpsertSession, s.ID, s.UserID, s.Login, s.Tokens, micro(s.CreatedAt), micro(s.ExpiresAt)); err != nil {
		return fmt.Errorf("put session %.8s of %s: %w", s.ID, s.Login, err)
	}
	return nil
}

// Session returns the session of that ID, expired or not.
func (t *postgresTx) Session(ctx context.Context, id string) (bot.Session, error) {
	var s bot.Session
	err := t.queryRow(ctx, pgSelectSession, id).
		Scan(&s.ID, &s.UserID, &s.Login, &s.Tokens, pgTimeDest{&s.CreatedAt}, pgTimeDest{&s.ExpiresAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Session{}, fmt.Errorf("session %.8s: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Session{}, fmt.Errorf("session %.8s: %w", id, err)
	}
	return s, nil
}

// DeleteSession removes a session; one that is not there is not an error.
func (t *postgresTx) DeleteSession(ctx context.Context, id string) error {
	if _, err := t.exec(ctx, pgDeleteSession, id); err != nil {
		return fmt.Errorf("delete session %.8s: %w", id, err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired at or before now.
func (t *postgresTx) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := t.exec(ctx, pgDeleteExpiredSessions, micro(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(n), nil
}
