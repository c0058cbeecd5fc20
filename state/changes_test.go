package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// feedStore is a store with a change feed.
type feedStore interface {
	bot.Store
	ExecutionChanges(ctx context.Context) <-chan struct{}
}

// signalled reports whether ch holds a signal, taking it.
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitSignal waits for a signal on ch.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second): // a bound for a hang, not a performance limit
		t.Fatalf("no signal: %s", what)
	}
}

// testChangeFeed checks the store's own feed: a signal is there when an
// Update that changed an execution returns (the feed is told after the
// commit, before Update returns), and none after one that changed none,
// rolled back, or only recorded what the reporter sent.
func testChangeFeed(t *testing.T, s feedStore, listens bool) {
	ctx := t.Context()
	ch := s.ExecutionChanges(ctx)
	if listens {
		waitSignal(t, ch, "the listener says it listens (and may have missed something before)")
	}
	p := pgNewProgram(t, s, "acme", "app")
	var ex bot.Execution
	steps := []struct {
		name string
		fn   func(tx bot.Tx) error
		want bool
	}{
		{"a program's pipelines only", func(tx bot.Tx) error {
			return tx.SetPipelines(ctx, p.ID, []bot.Pipeline{{ProgramID: p.ID, Kind: bot.StageOnly}})
		}, false},
		{"an execution created", func(tx bot.Tx) (err error) {
			ex, err = tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
			return err
		}, true},
		{"an execution created, then rolled back", func(tx bot.Tx) error {
			if _, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued}); err != nil {
				return err
			}
			return errors.New("roll back")
		}, false},
		{"an execution updated", func(tx bot.Tx) error {
			ex.State = bot.ExecutionRunning
			return tx.UpdateExecution(ctx, ex)
		}, true},
		{"an event added (the version bumped)", func(tx bot.Tx) error {
			return tx.AddEvent(ctx, bot.Event{ExecutionID: ex.ID, Actor: "alice", Kind: bot.EventTriggered})
		}, true},
		{"reported (the reporter's own bookkeeping)", func(tx bot.Tx) error {
			return tx.MarkReported(ctx, ex.ID, 3)
		}, false},
		{"touched", func(tx bot.Tx) error { return tx.Touch(ctx, ex.ID) }, true},
	}
	for _, st := range steps {
		_ = s.Update(ctx, st.fn)
		if got := signalled(ch); got != st.want {
			t.Errorf("after %s: signalled = %v, want %v", st.name, got, st.want)
		}
	}
}

func TestSQLiteExecutionChanges(t *testing.T) {
	testChangeFeed(t, openTestSQLite(t, filepath.Join(t.TempDir(), "state.db")), false)
}

func TestPostgresExecutionChanges(t *testing.T) {
	testChangeFeed(t, openTestPostgres(t, newPostgresSchema(t)), true)
}

// TestPostgresExecutionChangesAcrossStores: a change committed through one
// store (a replica) reaches another store's subscribers through
// LISTEN/NOTIFY, and by then that store reads it.
func TestPostgresExecutionChangesAcrossStores(t *testing.T) {
	url := newPostgresSchema(t)
	a, b := openTestPostgres(t, url), openTestPostgres(t, url)
	ctx := t.Context()
	ch := b.ExecutionChanges(ctx)
	waitSignal(t, ch, "b's listener says it listens (and may have missed something before)")
	p := pgNewProgram(t, a, "acme", "app")
	var ex bot.Execution
	if err := a.Update(ctx, func(tx bot.Tx) (err error) {
		ex, err = tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "a's execution, created")
	var pending []bot.Execution
	if err := b.View(ctx, func(tx bot.Tx) (err error) {
		pending, err = tx.ExecutionsToReport(ctx, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != ex.ID {
		t.Errorf("b, signalled, reads %d executions to report, want a's #%d", len(pending), ex.Number)
	}
}
