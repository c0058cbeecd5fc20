package state

import (
	"context"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

var sqliteNotify = newNotifyQueries(func(int) string { return "?" })

func sqliteDBTime(t time.Time) any { return dbTime(t) }

// EnqueueNotification queues a notification in the outbox.
func (t *sqliteTx) EnqueueNotification(ctx context.Context, n bot.Notification) (int64, error) {
	res, err := t.tx.ExecContext(ctx, sqliteNotify.insert, notifyArgs(n, sqliteDBTime)...)
	if err != nil {
		return 0, fmt.Errorf("queue notification %s to %s: %w", n.Event, n.Target.Name, err)
	}
	return res.LastInsertId()
}

// DueNotifications lists pending notifications due at now, oldest first.
func (t *sqliteTx) DueNotifications(ctx context.Context, now time.Time, limit int) ([]bot.Notification, error) {
	ns, err := sqliteQueryAll(ctx, t, sqliteNotify.due, []any{dbTime(now), limit}, scanSQLiteNotification)
	if err != nil {
		return nil, fmt.Errorf("notifications due: %w", err)
	}
	return ns, nil
}

// ClaimNotification puts a due notification off until until, if it is
// still as the sender read it.
func (t *sqliteTx) ClaimNotification(ctx context.Context, id int64, attempts int, now, until time.Time) (bool, error) {
	res, err := t.tx.ExecContext(ctx, sqliteNotify.claim, dbTime(until), id, attempts, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("claim notification %d: %w", id, err)
	}
	n, err := rowsChanged(res)
	return n == 1, err
}

// RecordNotification stores an attempt's result; a zero NextAt keeps the one recorded.
func (t *sqliteTx) RecordNotification(ctx context.Context, n bot.Notification) error {
	res, err := t.tx.ExecContext(ctx, sqliteNotify.record, string(n.State), n.Attempts, dbTime(n.NextAt), n.Error, n.ID)
	if err != nil {
		return fmt.Errorf("record notification %d: %w", n.ID, err)
	}
	if rows, err := res.RowsAffected(); err == nil && rows == 0 {
		return fmt.Errorf("record notification %d: %w", n.ID, bot.ErrNotFound)
	}
	return nil
}

// NotificationsOf lists an execution's notifications, oldest first.
func (t *sqliteTx) NotificationsOf(ctx context.Context, executionID int64) ([]bot.Notification, error) {
	ns, err := sqliteQueryAll(ctx, t, sqliteNotify.of, []any{executionID}, scanSQLiteNotification)
	if err != nil {
		return nil, fmt.Errorf("notifications of execution %d: %w", executionID, err)
	}
	return ns, nil
}

func scanSQLiteNotification(row rowScanner) (bot.Notification, error) {
	return scanNotification(row, func(at *time.Time) any { return timeDest{at} })
}
