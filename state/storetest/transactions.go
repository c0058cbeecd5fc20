package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// writeEverything writes through every kind of Tx write, for the tests that
// check a transaction leaves nothing behind.
func writeEverything(ctx context.Context, tx bot.Tx) error {
	if err := tx.PutInstallation(ctx, bot.Installation{ID: 5, Account: "octo", UpdatedAt: t0}); err != nil {
		return err
	}
	p, err := tx.EnsureProgram(ctx, 5, bot.Repository{ID: 555, Owner: "octo", Name: "hello", DefaultBranch: "main"})
	if err != nil {
		return err
	}
	if err := tx.SetPipelines(ctx, p.ID, []bot.Pipeline{{Kind: bot.StageOnly}}); err != nil {
		return err
	}
	e, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: "c1", State: bot.ExecutionQueued})
	if err != nil {
		return err
	}
	if err := tx.AddTriggerRecord(ctx, bot.TriggerRecord{ProgramID: p.ID, Commit: "c1", ExecutionID: e.ID}); err != nil {
		return err
	}
	if err := tx.LockProgram(ctx, p.ID); err != nil {
		return err
	}
	err = tx.SetDeployment(ctx, bot.Deployment{ProgramID: p.ID, Environment: bot.Stage, ExecutionID: e.ID,
		Pipeline: bot.StageOnly, Number: e.Number, Commit: "c1", Since: t0})
	if err != nil {
		return err
	}
	if err := tx.SetVariable(ctx, p.ID, bot.Production, "K", "v"); err != nil {
		return err
	}
	if err := tx.AddEvent(ctx, bot.Event{ExecutionID: e.ID, Actor: "mona", Kind: "triggered"}); err != nil {
		return err
	}
	if err := tx.Touch(ctx, e.ID); err != nil {
		return err
	}
	if err := tx.MarkReported(ctx, e.ID, 3); err != nil {
		return err
	}
	if err := tx.PutGitHubRef(ctx, bot.GitHubRef{ExecutionID: e.ID, Key: "check-run/0", GitHubID: 7, Reported: "h"}); err != nil {
		return err
	}
	_, err = tx.MarkDelivery(ctx, bot.Delivery{GUID: "guid-1", Event: "push"})
	return err
}

// wantNothingWritten fails unless the store shows none of writeEverything's
// writes, and then checks that numbering starts at #1 and that the new
// program and execution (which may reuse the rolled-back IDs) have no
// deployments, variables or events.
func wantNothingWritten(t *testing.T, s bot.Store) {
	t.Helper()
	ctx := t.Context()
	view(t, s, func(tx bot.Tx) error {
		if _, err := tx.Installation(ctx, 5); !errors.Is(err, bot.ErrNotFound) {
			t.Errorf("Installation(5) = %v, want not found", err)
		}
		if _, err := tx.ProgramByName(ctx, "octo", "hello"); !errors.Is(err, bot.ErrNotFound) {
			t.Errorf("ProgramByName(octo/hello) = %v, want not found", err)
		}
		if _, err := tx.ProgramByGitHubID(ctx, 555); !errors.Is(err, bot.ErrNotFound) {
			t.Errorf("ProgramByGitHubID(555) = %v, want not found", err)
		}
		ps, err := tx.Programs(ctx)
		if err != nil {
			return err
		}
		es, err := tx.Executions(ctx, bot.ExecutionFilter{})
		if err != nil {
			return err
		}
		if len(ps) != 0 || len(es) != 0 {
			t.Errorf("found %d programs and %d executions, want none", len(ps), len(es))
		}
		done, err := tx.DeliveryProcessed(ctx, "guid-1")
		if err != nil {
			return err
		}
		if done {
			t.Errorf("DeliveryProcessed(guid-1) = true, want false")
		}
		return nil
	})
	p := newProgram(t, s, 5, "octo", "hello")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly})
	if e.Number != 1 {
		t.Errorf("first execution after the rollback is #%d, want #1", e.Number)
	}
	wantNoEngineState(t, s, p.ID, e.ID)
}

func testRollbackOnError(t *testing.T, s bot.Store) {
	ctx := t.Context()
	errBoom := errors.New("boom")
	err := s.Update(ctx, func(tx bot.Tx) error {
		if err := writeEverything(ctx, tx); err != nil {
			return fmt.Errorf("writeEverything: %w", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want %v", err, errBoom)
	}
	wantNothingWritten(t, s)
}

func testRollbackOnPanic(t *testing.T, s bot.Store) {
	// A panic that kept its connection would make the next Update wait for
	// one: the timeout turns that wait into a failure.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	type boom struct{ n int }
	// More panics than a small pool has connections: each must give its
	// connection back.
	for n := range 3 {
		func() {
			defer func() {
				if r := recover(); r != (boom{n}) {
					t.Errorf("recovered %v, want %v", r, boom{n})
				}
			}()
			_ = s.Update(ctx, func(tx bot.Tx) error {
				if err := writeEverything(ctx, tx); err != nil {
					t.Errorf("writeEverything: %v", err)
				}
				panic(boom{n})
			})
			t.Errorf("Update returned although fn panicked")
		}()
	}
	if err := s.Update(ctx, func(tx bot.Tx) error { return nil }); err != nil {
		t.Fatalf("Update after the panics: %v", err)
	}
	wantNothingWritten(t, s)
}

func testViewIsReadOnly(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")

	var writeErr error
	err := s.View(ctx, func(tx bot.Tx) error {
		got, err := tx.Program(ctx, p.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("Program in View (-want +got):\n%s", diff)
		}
		_, writeErr = tx.EnsureProgram(ctx, 1, bot.Repository{Owner: "octo", Name: "written-in-view"})
		return nil
	})
	if err != nil {
		t.Errorf("View: %v", err)
	}
	if writeErr == nil {
		t.Errorf("EnsureProgram in View: no error")
	}
	view(t, s, func(tx bot.Tx) error {
		if _, err := tx.ProgramByName(ctx, "octo", "written-in-view"); !errors.Is(err, bot.ErrNotFound) {
			t.Errorf("ProgramByName(octo/written-in-view) = %v, want not found", err)
		}
		return nil
	})

	errBoom := errors.New("boom")
	if err := s.View(ctx, func(tx bot.Tx) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("View = %v, want %v", err, errBoom)
	}
}

func testCancelledContext(t *testing.T, s bot.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Update(ctx, func(tx bot.Tx) error { return writeEverything(ctx, tx) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context = %v, want context.Canceled", err)
	}
	err = s.View(ctx, func(tx bot.Tx) error {
		_, err := tx.Programs(ctx)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("View with a cancelled context = %v, want context.Canceled", err)
	}
	wantNothingWritten(t, s)
}

// testConcurrentExclusion has many goroutines each start an execution only
// when none of the pipeline is active, and finish it in a later Update. The
// read-decide-write of the first Update must be atomic: every execution
// records, when it is created, which execution was the newest and in what
// state; without overlaps that is always the one before it, finished.
func testConcurrentExclusion(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	const workers, rounds = 16, 20
	filter := bot.ExecutionFilter{ProgramID: p.ID, Pipeline: bot.StageOnly}
	activeFilter := filter
	activeFilter.States = activeStates

	var writers, readers sync.WaitGroup
	var stop atomic.Bool
	// Readers check that no snapshot shows two active executions.
	for range 2 {
		readers.Go(func() {
			for !stop.Load() {
				err := s.View(ctx, func(tx bot.Tx) error {
					active, err := tx.Executions(ctx, activeFilter)
					if err != nil {
						return err
					}
					if len(active) > 1 {
						t.Errorf("a View saw %d active executions", len(active))
					}
					return nil
				})
				if err != nil {
					t.Errorf("View: %v", err)
					return
				}
			}
		})
	}
	for w := range workers {
		writers.Go(func() {
			for r := range rounds {
				var started bot.Execution
				err := s.Update(ctx, func(tx bot.Tx) error {
					started = bot.Execution{}
					active, err := tx.Executions(ctx, activeFilter)
					if err != nil || len(active) > 0 {
						return err
					}
					newest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Pipeline: bot.StageOnly, Limit: 1})
					if err != nil {
						return err
					}
					msg := "first"
					if len(newest) > 0 {
						msg = fmt.Sprintf("after #%d %s", newest[0].Number, newest[0].State)
					}
					started, err = tx.CreateExecution(ctx, bot.Execution{
						ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionRunning,
						Message: msg, TriggeredBy: fmt.Sprintf("worker-%d", w),
					})
					return err
				})
				if err != nil {
					t.Errorf("worker %d round %d: start: %v", w, r, err)
					continue
				}
				if started.ID == 0 {
					continue
				}
				err = s.Update(ctx, func(tx bot.Tx) error {
					e, err := tx.Execution(ctx, started.ID)
					if err != nil {
						return err
					}
					e.State = bot.ExecutionSucceeded
					return tx.UpdateExecution(ctx, e)
				})
				if err != nil {
					t.Errorf("worker %d round %d: finish %s: %v", w, r, started, err)
				}
			}
		})
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()

	var es []bot.Execution
	view(t, s, func(tx bot.Tx) (err error) {
		es, err = tx.Executions(ctx, filter)
		return err
	})
	if len(es) == 0 {
		t.Fatalf("no execution was started")
	}
	var got, want []string
	for i := len(es) - 1; i >= 0; i-- { // oldest first
		e := es[i]
		got = append(got, fmt.Sprintf("#%d %s: %s", e.Number, e.State, e.Message))
		msg := "first"
		if e.Number > 1 {
			msg = fmt.Sprintf("after #%d %s", e.Number-1, bot.ExecutionSucceeded)
		}
		want = append(want, fmt.Sprintf("#%d %s: %s", len(want)+1, bot.ExecutionSucceeded, msg))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("executions, oldest first (-want +got):\n%s", diff)
	}
	t.Logf("%d workers × %d rounds started %d executions", workers, rounds, len(es))
}

// testConcurrentDeliveries has several goroutines mark the same deliveries:
// each must be fresh exactly once.
func testConcurrentDeliveries(t *testing.T, s bot.Store) {
	ctx := t.Context()
	const workers, guids = 8, 50
	var fresh [guids]atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range guids {
				g := (i + w*7) % guids // each worker starts elsewhere
				var ok bool
				err := s.Update(ctx, func(tx bot.Tx) (err error) {
					ok, err = tx.MarkDelivery(ctx, bot.Delivery{GUID: fmt.Sprintf("guid-%02d", g), Event: "push"})
					return err
				})
				if err != nil {
					t.Errorf("worker %d: MarkDelivery(guid-%02d): %v", w, g, err)
					continue
				}
				if ok {
					fresh[g].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for g := range fresh {
		if n := fresh[g].Load(); n != 1 {
			t.Errorf("guid-%02d was fresh %d times, want once", g, n)
		}
	}
}
