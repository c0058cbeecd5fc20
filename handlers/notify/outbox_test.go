package notify

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

// TestStoreOutboxGivesUpOrphans: a notification whose execution is gone
// is given up, and the one after it is still listed.
func TestStoreOutboxGivesUpOrphans(t *testing.T) {
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var exID int64
	err = store.Update(ctx, func(tx bot.Tx) error {
		prog, err := tx.EnsureProgram(ctx, 7, bot.Repository{Owner: "acme", Name: "shop", DefaultBranch: "main"})
		if err != nil {
			return err
		}
		ex, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: prog.ID, Pipeline: bot.StageOnly, Commit: "0123456789abcdef0123456789abcdef01234567", State: bot.ExecutionRunning, Cause: bot.CausePush, CreatedAt: at})
		if err != nil {
			return err
		}
		exID = ex.ID
		target := bot.NotificationTarget{Name: "releases", Type: bot.NotifySlack, URLSecret: "SLACK_URL"}
		for _, id := range []int64{ex.ID + 100, ex.ID} {
			if _, err := tx.EnqueueNotification(ctx, bot.Notification{ProgramID: prog.ID, ExecutionID: id, Target: target, Event: bot.NotifyStarted,
				Delivery: bot.NewDeliveryID(), CreatedAt: at, State: bot.NotificationPending}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	o := StoreOutbox{Store: store, PublicURL: "https://stagehand.example.com"}
	due, err := o.Due(ctx, at, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Message.Execution.ID != exID || due[0].Message.URL != "https://stagehand.example.com/programs/acme/shop/executions/1" {
		t.Fatalf("due = %+v", due)
	}
	if due, _ := o.Due(ctx, at, 10); len(due) != 1 {
		t.Errorf("the orphan is due again: %+v", due)
	}
}
