package handlers

import (
	"context"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

// notifyAll is a notifications: section whose one target wants every event.
const notifyAll = "notifications:\n  - {name: releases, type: slack, events: [started, waiting-for-approval, succeeded, failed, overridden, restored], url_secret: SLACK_URL}\n"

// queuedEvents lists what the outbox holds for execution number n: "event
// (detail)" in order.
func (e *surfaceEnv) queuedEvents(n int) []string {
	e.t.Helper()
	ctx := context.Background()
	var out []string
	err := e.store.View(ctx, func(tx bot.Tx) error {
		ex, err := tx.ExecutionByNumber(ctx, e.prog.ID, n)
		if err != nil {
			return err
		}
		ns, err := tx.NotificationsOf(ctx, ex.ID)
		for _, x := range ns {
			s := string(x.Event)
			if x.Detail != "" {
				s += " (" + x.Detail + ")"
			}
			out = append(out, s)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestOverrideAndRestoreAreNotified: a break-glass override queues
// overridden with its reason; a restore queues restored when it starts; a
// build that fails queues failed with the execution's message.
// Both in the transaction of the change, through comments only.
func TestOverrideAndRestoreAreNotified(t *testing.T) {
	t.Run("override", func(t *testing.T) {
		e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob]}\n"+centuryFreeze)+notifyAll)
		e.approvedAndHeld()
		if reply := e.comment("bob", `/stagehand deploy-now 2 --override "INC-42: payments down"`); !strings.HasPrefix(reply.Body, "✅") {
			t.Fatalf("bob's override was answered %q", reply.Body)
		}
		e.waitState(2, bot.ExecutionSucceeded)
		want := "started, waiting-for-approval, overridden (INC-42: payments down), succeeded"
		if got := strings.Join(e.queuedEvents(2), ", "); got != want {
			t.Errorf("#2 queued %s, want %s", got, want)
		}
	})
	t.Run("restore", func(t *testing.T) {
		e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob, alice]}\n")+notifyAll)
		e.deployBuilds(2)
		if reply := e.comment("bob", "/stagehand restore production 1"); !strings.HasPrefix(reply.Body, "✅") {
			t.Fatalf("bob's restore was answered %q", reply.Body)
		}
		e.waitStep(5, bot.StepApproval, bot.StepWaiting)
		want := "started, restored, waiting-for-approval"
		if got := strings.Join(e.queuedEvents(5), ", "); got != want {
			t.Errorf("#5 queued %s, want %s", got, want)
		}
		if got := strings.Join(e.queuedEvents(1), ", "); got != "started, succeeded" {
			t.Errorf("stage-only #1 queued %s", got)
		}
	})
	t.Run("failed", func(t *testing.T) {
		e := newSurfaceEnv(t, policyWith("")+notifyAll)
		e.repo.commit("break the build", map[string]string{"build.sh": "echo broken >&2; exit 3\n"})
		e.push()
		ex := e.waitState(1, bot.ExecutionFailed)
		want := "started, failed (" + ex.Message + ")"
		if got := strings.Join(e.queuedEvents(1), ", "); ex.Message == "" || got != want {
			t.Errorf("failed #1 queued %s, want %s", got, want)
		}
	})
}
