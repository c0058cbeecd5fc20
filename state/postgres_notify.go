package state

import (
	"context"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

var pgNotify = newNotifyQueries(func(n int) string { return fmt.Sprintf("$%d", n) })

// EnqueueNotification queues a notification in the outbox. Times are
// truncated to the microseconds Postgres keeps.
func (t *postgresTx) EnqueueNotification(ctx context.Context, n bot.Notification) (int64, error) {
	var id int64
	if err := t.queryRow(ctx, pgNotify.insert+" RETURNING id", notifyArgs(n, func(tt time.Time) any { return micro(tt) })...).Scan(&id); err != nil {
		return 0, fmt.Errorf("queue notification %s to %s: %w", n.Event, n.Target.Name, err)
	}
	return id, nil
}

// DueNotifications lists pending notifications due at now, oldest first.
func (t *postgresTx) DueNotifications(ctx context.Context, now time.Time, limit int) ([]bot.Notification, error) {
	ns, err := queryAll(ctx, t, pgNotify.due, []any{micro(now), limit}, scanPGNotification)
	if err != nil {
		return nil, fmt.Errorf("notifications due: %w", err)
	}
	return ns, nil
}

// ClaimNotification puts a due notification off until until, if it is
// still as the sender read it.
func (t *postgresTx) ClaimNotification(ctx context.Context, id int64, attempts int, now, until time.Time) (bool, error) {
	n, err := t.exec(ctx, pgNotify.claim, micro(until), id, attempts, micro(now))
	if err != nil {
		return false, fmt.Errorf("claim notification %d: %w", id, err)
	}
	return n == 1, nil
}

// RecordNotification stores an attempt's result; a zero NextAt keeps the one recorded.
func (t *postgresTx) RecordNotification(ctx context.Context, n bot.Notification) error {
	rows, err := t.exec(ctx, pgNotify.record, string(n.State), n.Attempts, pgTime(micro(n.NextAt)), n.Error, n.ID)
	if err != nil {
		return fmt.Errorf("record notification %d: %w", n.ID, err)
	}
	if rows == 0 {
		return fmt.Errorf("record notification %d: %w", n.ID, bot.ErrNotFound)
	}
	return nil
}

// NotificationsOf lists an execution's notifications, oldest first.
func (t *postgresTx) NotificationsOf(ctx context.Context, executionID int64) ([]bot.Notification, error) {
	ns, err := queryAll(ctx, t, pgNotify.of, []any{executionID}, scanPGNotification)
	if err != nil {
		return nil, fmt.Errorf("notifications of execution %d: %w", executionID, err)
	}
	return ns, nil
}

func scanPGNotification(row rowScanner) (bot.Notification, error) {
	return scanNotification(row, func(at *time.Time) any { return pgTimeDest{at} })
}
