package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// Dashboard sessions. The Postgres port is the same statements with $n
// placeholders.
const (
	upsertSession = `INSERT INTO sessions (id, user_id, login, tokens, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, login = excluded.login, tokens = excluded.tokens,
    created_at = excluded.created_at, expires_at = excluded.expires_at`
	selectSession         = `SELECT id, user_id, login, tokens, created_at, expires_at FROM sessions WHERE id = ?`
	deleteSession         = `DELETE FROM sessions WHERE id = ?`
	deleteExpiredSessions = `DELETE FROM sessions WHERE expires_at <= ?`
)

// PutSession stores s, replacing the session of the same ID.
func (t *sqliteTx) PutSession(ctx context.Context, s bot.Session) error {
	_, err := t.tx.ExecContext(ctx, upsertSession, s.ID, s.UserID, s.Login, s.Tokens, dbTime(s.CreatedAt), dbTime(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("put session %.8s of %s: %w", s.ID, s.Login, err)
	}
	return nil
}

// Session returns the session of that ID, expired or not.
func (t *sqliteTx) Session(ctx context.Context, id string) (bot.Session, error) {
	var s bot.Session
	err := t.tx.QueryRowContext(ctx, selectSession, id).
		Scan(&s.ID, &s.UserID, &s.Login, &s.Tokens, timeDest{&s.CreatedAt}, timeDest{&s.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Session{}, fmt.Errorf("session %.8s: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Session{}, fmt.Errorf("session %.8s: %w", id, err)
	}
	return s, nil
}

// DeleteSession removes a session; one that is not there is not an error.
func (t *sqliteTx) DeleteSession(ctx context.Context, id string) error {
	if _, err := t.tx.ExecContext(ctx, deleteSession, id); err != nil {
		return fmt.Errorf("delete session %.8s: %w", id, err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired at or before now.
func (t *sqliteTx) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, deleteExpiredSessions, dbTime(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(n), nil
}
