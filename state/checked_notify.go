package state

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// EnqueueNotification checks a notification before it is queued: pending,
// with a delivery id, an event, and a target of a known type with a URL
// secret's name.
func (t checkedTx) EnqueueNotification(ctx context.Context, n bot.Notification) (int64, error) {
	switch {
	case n.State != bot.NotificationPending:
		return 0, fmt.Errorf("queue notification: state %q, want %q", n.State, bot.NotificationPending)
	case n.Delivery == "" || n.Event == "" || n.ExecutionID == 0:
		return 0, fmt.Errorf("queue notification: delivery, event and execution are required")
	case n.Target.Name == "" || n.Target.URLSecret == "" || !slices.Contains(bot.NotifyTypes, n.Target.Type):
		return 0, fmt.Errorf("queue notification %s: target %+v is incomplete", n.Event, n.Target)
	}
	if n.NextAt.IsZero() {
		n.NextAt = n.CreatedAt
	}
	return t.storeTx.EnqueueNotification(ctx, n)
}

// ClaimNotification checks that the claim runs forward: until after now.
func (t checkedTx) ClaimNotification(ctx context.Context, id int64, attempts int, now, until time.Time) (bool, error) {
	if !until.After(now) || attempts < 0 {
		return false, fmt.Errorf("claim notification %d: until %s is not after now %s, or attempts %d < 0", id, until, now, attempts)
	}
	return t.storeTx.ClaimNotification(ctx, id, attempts, now, until)
}

// RecordNotification checks an attempt's result: a known state.
func (t checkedTx) RecordNotification(ctx context.Context, n bot.Notification) error {
	if !slices.Contains([]bot.NotificationState{bot.NotificationPending, bot.NotificationSent, bot.NotificationGaveUp}, n.State) {
		return fmt.Errorf("record notification %d: unknown state %q", n.ID, n.State)
	}
	return t.storeTx.RecordNotification(ctx, n)
}
