package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// A notification given up is shown on its execution's page with its
// reason; one sent or still pending is not. The API lists all three with
// their state, attempts and last error, never the target's secrets.
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

	var got APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/1", http.StatusOK, &got)
	_, _, raw := f.get("/api/v1/programs/acme/app/executions/1")
	var states []string
	for _, n := range got.Notifications {
		states = append(states, fmt.Sprintf("%s %s %s %s %d %q", n.Target, n.TargetType, n.Event, n.State, n.Attempts, n.LastError))
		if n.Delivery == "" || !n.CreatedAt.Equal(dashAt(10)) {
			t.Errorf("notification to %s: delivery %q, created %s", n.Target, n.Delivery, n.CreatedAt)
		}
	}
	want := []string{
		`releases slack failed gave-up 6 "target releases answered 502 Bad Gateway (gave up after 6 attempts)"`,
		`sent-ok slack failed sent 6 "target releases answered 502 Bad Gateway (gave up after 6 attempts)"`,
		`pending-one slack failed pending 6 "target releases answered 502 Bad Gateway (gave up after 6 attempts)"`,
	}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("the API's notifications (-want +got):\n%s", diff)
	}
	mustNotContain(t, "the API's execution", raw, "SLACK_URL")
}
