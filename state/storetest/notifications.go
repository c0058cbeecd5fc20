package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testNotifications checks the outbox: queued notifications come back
// whole, are due from their NextAt (oldest first, up to a limit), leave
// the due list once sent or given up, and are listed per execution.
func testNotifications(t *testing.T, s bot.Store) {
	ctx := t.Context()
	slack := bot.NotificationTarget{Name: "releases", Type: bot.NotifySlack, URLSecret: "SLACK_URL"}
	hook := bot.NotificationTarget{Name: "audit-hook", Type: bot.NotifyWebhook, URLSecret: "HOOK_URL", SigningSecret: "HOOK_KEY"}
	in := []bot.Notification{
		{ProgramID: 1, ExecutionID: 10, Target: slack, Event: bot.NotifyStarted, Delivery: "d-1", CreatedAt: t0, State: bot.NotificationPending},
		{ProgramID: 1, ExecutionID: 10, Target: hook, Event: bot.NotifyFailed, Detail: "build failed", Delivery: "d-2", CreatedAt: t0.Add(time.Second).In(cet), State: bot.NotificationPending},
		{ProgramID: 1, ExecutionID: 11, Target: slack, Event: bot.NotifyWaitingForApproval, Delivery: "d-3", CreatedAt: t0.Add(time.Minute), State: bot.NotificationPending},
	}
	var want []bot.Notification
	update(t, s, func(tx bot.Tx) error {
		want = want[:0]
		for _, n := range in {
			id, err := tx.EnqueueNotification(ctx, n)
			if err != nil {
				return err
			}
			n.ID, n.CreatedAt = id, n.CreatedAt.UTC()
			n.NextAt = n.CreatedAt
			want = append(want, n)
		}
		return nil
	})
	due := func(now time.Time, limit int) []bot.Notification {
		t.Helper()
		var got []bot.Notification
		view(t, s, func(tx bot.Tx) (err error) {
			got, err = tx.DueNotifications(ctx, now, limit)
			return err
		})
		return got
	}
	if diff := cmp.Diff(want[:2], due(t0.Add(time.Second), 10)); diff != "" {
		t.Errorf("due at t0+1s (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:1], due(t0.Add(time.Hour), 1)); diff != "" {
		t.Errorf("due, limit 1 (-want +got):\n%s", diff)
	}
	// The first is retried later, the second sent, the third given up.
	want[0].Attempts, want[0].NextAt, want[0].Error = 1, t0.Add(time.Hour), "target releases answered 500 Internal Server Error"
	want[1].Attempts, want[1].State = 1, bot.NotificationSent
	want[2].Attempts, want[2].State, want[2].Error = 6, bot.NotificationGaveUp, "gave up after 6 attempts"
	update(t, s, func(tx bot.Tx) error {
		for _, n := range want {
			if err := tx.RecordNotification(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if got := due(t0.Add(time.Hour-time.Second), 10); len(got) != 0 {
		t.Errorf("due before the retry's time: %+v", got)
	}
	if diff := cmp.Diff(want[:1], due(t0.Add(time.Hour), 10)); diff != "" {
		t.Errorf("due at the retry's time (-want +got):\n%s", diff)
	}
	var of []bot.Notification
	view(t, s, func(tx bot.Tx) (err error) {
		of, err = tx.NotificationsOf(ctx, 10)
		return err
	})
	if diff := cmp.Diff(want[:2], of); diff != "" {
		t.Errorf("NotificationsOf(10) (-want +got):\n%s", diff)
	}
	update(t, s, func(tx bot.Tx) error {
		if err := tx.RecordNotification(ctx, bot.Notification{ID: 999, State: bot.NotificationSent}); err == nil {
			t.Errorf("RecordNotification of an unknown id: no error")
		}
		if _, err := tx.EnqueueNotification(ctx, bot.Notification{ExecutionID: 10, Event: bot.NotifyFailed, Delivery: "d-4", State: bot.NotificationPending}); err == nil {
			t.Errorf("EnqueueNotification without a target: no error")
		}
		return nil
	})
}

// testClaimNotification: a due notification is claimed once for an
// attempt, and then is not due until the claim's end; a claim with stale
// attempts, of one not yet due, sent, or unknown claims nothing.
func testClaimNotification(t *testing.T, s bot.Store) {
	ctx := t.Context()
	slack := bot.NotificationTarget{Name: "releases", Type: bot.NotifySlack, URLSecret: "SLACK_URL"}
	var id int64
	update(t, s, func(tx bot.Tx) (err error) {
		id, err = tx.EnqueueNotification(ctx, bot.Notification{ProgramID: 1, ExecutionID: 10, Target: slack, Event: bot.NotifyStarted,
			Delivery: "d-claim", CreatedAt: t0, State: bot.NotificationPending})
		return err
	})
	claim := func(id int64, attempts int, now time.Time) bool {
		t.Helper()
		var ok bool
		update(t, s, func(tx bot.Tx) (err error) {
			ok, err = tx.ClaimNotification(ctx, id, attempts, now, now.Add(time.Minute))
			return err
		})
		return ok
	}
	for _, c := range []struct {
		name     string
		id       int64
		attempts int
		now      time.Time
		want     bool
	}{
		{"before it is due", id, 0, t0.Add(-time.Second), false},
		{"with stale attempts", id, 1, t0, false},
		{"an unknown one", id + 1000, 0, t0, false},
		{"due", id, 0, t0, true},
		{"again, while claimed", id, 0, t0.Add(30 * time.Second), false},
		{"after the claim ended", id, 0, t0.Add(time.Minute), true},
	} {
		if got := claim(c.id, c.attempts, c.now); got != c.want {
			t.Errorf("claim %s = %t, want %t", c.name, got, c.want)
		}
	}
	var due []bot.Notification
	view(t, s, func(tx bot.Tx) (err error) {
		due, err = tx.DueNotifications(ctx, t0.Add(time.Minute+30*time.Second), 10)
		return err
	})
	if len(due) != 0 {
		t.Errorf("due while claimed: %+v", due)
	}
	update(t, s, func(tx bot.Tx) error {
		return tx.RecordNotification(ctx, bot.Notification{ID: id, State: bot.NotificationSent, Attempts: 1})
	})
	if claim(id, 1, t0.Add(time.Hour)) {
		t.Error("a sent notification was claimed")
	}
}
