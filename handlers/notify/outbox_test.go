package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

// outboxWith is a SQLite store (closed with the test) holding acme/shop,
// a running execution of it, and a started notification to releases for
// each execution id that ids gives (of that execution's id); the time its
// story starts, and the execution's id.
func outboxWith(t *testing.T, ids func(exID int64) []int64) (*state.SQLite, time.Time, int64) {
	t.Helper()
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
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
		for _, id := range ids(ex.ID) {
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
	return store, at, exID
}

// TestStoreOutboxGivesUpOrphans: a notification whose execution is gone
// is given up, and the one after it is still listed.
func TestStoreOutboxGivesUpOrphans(t *testing.T) {
	ctx := context.Background()
	store, at, exID := outboxWith(t, func(exID int64) []int64 { return []int64{exID + 100, exID} })
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

// gatedOutbox lets two senders read what is due before either goes on, as
// two replicas do when one's lease ran out during a pause while the other
// took it over.
type gatedOutbox struct {
	StoreOutbox
	read *sync.WaitGroup
}

func (g gatedOutbox) Due(ctx context.Context, now time.Time, limit int) ([]Pending, error) {
	due, err := g.StoreOutbox.Due(ctx, now, limit)
	g.read.Done()
	g.read.Wait()
	return due, err
}

// TestOverlappingSendersPostOnce: two senders that both read a due
// notification post it once: the first to claim it makes the attempt, the
// other finds it claimed. It is recorded sent after one attempt.
func TestOverlappingSendersPostOnce(t *testing.T) {
	ctx := context.Background()
	store, at, exID := outboxWith(t, func(exID int64) []int64 { return []int64{exID} })
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { posts.Add(1) }))
	defer srv.Close()
	var read sync.WaitGroup
	read.Add(2)
	var wg sync.WaitGroup
	for range 2 {
		s := &Sender{Outbox: gatedOutbox{StoreOutbox{Store: store, PublicURL: "https://stagehand.example.com"}, &read},
			Secrets: fakeSecrets{"SLACK_URL": srv.URL}, Now: func() time.Time { return at }}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Pass(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := posts.Load(); n != 1 {
		t.Errorf("the receiver got %d posts, want 1", n)
	}
	var ns []bot.Notification
	if err := store.View(ctx, func(tx bot.Tx) (err error) {
		ns, err = tx.NotificationsOf(ctx, exID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].State != bot.NotificationSent || ns[0].Attempts != 1 {
		t.Errorf("the outbox holds %+v, want one sent after one attempt", ns)
	}
}
