package web

import (
	"context"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

// A notification given up is shown on its execution's page with its
// reason; one sent or still pending is not.
func TestExecutionPageShowsFailedNotification(t *testing.T) {
	f := newDashFixture(t)
	ctx := context.Background()
	ex := f.ex[1]
	err := f.store.Update(ctx, func(tx bot.Tx) error {
		for i, st := range []bot.NotificationState{bot.NotificationGaveUp, bot.NotificationSent, bot.NotificationPending} {
			n := bot.Notification{ProgramID: f.prog.ID, ExecutionID: ex.ID, Event: bot.NotifyFailed, Delivery: bot.NewDeliveryID(),
				Target:    bot.NotificationTarget{Name: []string{"releases", "sent-ok", "pending-one"}[i], Type: bot.NotifySlack, URLSecret: "SLACK_URL"},
				CreatedAt: dashAt(10), State: bot.NotificationPending}
			id, err := tx.EnqueueNotification(ctx, n)
			if err != nil {
				return err
			}
			n.ID, n.State, n.Attempts, n.Error = id, st, 6, "target releases answered 502 Bad Gateway (gave up after 6 attempts)"
			if err := tx.RecordNotification(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	body := text(f.page("/programs/acme/app/executions/1"))
	mustContain(t, "execution page", body,
		"Notification failed to releases (slack) was given up after 6 attempts: target releases answered 502 Bad Gateway (gave up after 6 attempts)")
	mustNotContain(t, "execution page", body, "sent-ok")
	mustNotContain(t, "execution page", body, "pending-one")
}
