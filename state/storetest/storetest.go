// Package storetest is the test suite every bot.Store passes. A store's own
// tests call Run with a function that opens a new, empty store:
//
//	func TestSQLite(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) bot.Store {
//			s, err := state.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "state.db"))
//			...
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite uses times in whole microseconds, the precision Postgres keeps.
package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot"
)

// Run runs the suite. open returns a new, empty store each time it is
// called and registers its closing with t.Cleanup. The subtests run in
// parallel, each with its own store.
func Run(t *testing.T, open func(t *testing.T) bot.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s bot.Store)
	}{
		{"Ping", testPing},
		{"Deliveries", testDeliveries},
		{"PoisonedDeliveries", testPoisonedDeliveries},
		{"RedeliveryRequests", testRedeliveryRequests},
		{"Installations", testInstallations},
		{"Programs", testPrograms},
		{"ProgramRenamed", testProgramRenamed},
		{"ProgramOfRecreatedRepository", testProgramOfRecreatedRepository},
		{"ProgramAdoptsGitHubID", testProgramAdoptsGitHubID},
		{"ConcurrentEnsureProgram", testConcurrentEnsureProgram},
		{"Pipelines", testPipelines},
		{"LatestPolicy", testLatestPolicy},
		{"Notifications", testNotifications},
		{"ClaimNotification", testClaimNotification},
		{"ExecutionRoundTrip", testExecutionRoundTrip},
		{"ExecutionNumbers", testExecutionNumbers},
		{"ExecutionFilters", testExecutionFilters},
		{"Steps", testSteps},
		{"NotFound", testNotFound},
		{"TriggerRecords", testTriggerRecords},
		{"LockProgram", testLockProgram},
		{"Deployments", testDeployments},
		{"EnvironmentHistory", testEnvironmentHistory},
		{"PrunedArtifacts", testPrunedArtifacts},
		{"Variables", testVariables},
		{"Events", testEvents},
		{"ExecutionVersions", testExecutionVersions},
		{"ExecutionsToReport", testExecutionsToReport},
		{"GitHubRefs", testGitHubRefs},
		{"RollbackOnError", testRollbackOnError},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentExclusion", testConcurrentExclusion},
		{"ConcurrentDeliveries", testConcurrentDeliveries},
		{"ConcurrentLockProgram", testConcurrentLockProgram},
		{"Leases", testLeases},
		{"ConcurrentLeases", testConcurrentLeases},
		{"Sessions", testSessions},
		{"Audit", testAudit},
		{"PruneAudit", testPruneAudit},
		{"Checks", testChecks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// t0 is the suite's base time, in whole microseconds.
var t0 = time.Date(2026, 11, 25, 9, 30, 0, 123456000, time.UTC)

// cet checks that times in another zone come back as the same instant.
var cet = time.FixedZone("CET", 60*60)

// equateEmpty lets a store return nil or an empty slice for nothing.
var equateEmpty = cmpopts.EquateEmpty()

func update(t *testing.T, s bot.Store, fn func(tx bot.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s bot.Store, fn func(tx bot.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func newProgram(t *testing.T, s bot.Store, installationID int64, owner, repo string) bot.Program {
	t.Helper()
	var p bot.Program
	update(t, s, func(tx bot.Tx) (err error) {
		p, err = tx.EnsureProgram(t.Context(), installationID, bot.Repository{Owner: owner, Name: repo})
		return err
	})
	return p
}

func newExecution(t *testing.T, s bot.Store, e bot.Execution) bot.Execution {
	t.Helper()
	update(t, s, func(tx bot.Tx) (err error) {
		e, err = tx.CreateExecution(t.Context(), e)
		return err
	})
	return e
}

// wantNotFound fails unless err wraps bot.ErrNotFound and names what is
// missing.
func wantNotFound(t *testing.T, err error, names string) {
	t.Helper()
	if !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("error = %v, want one wrapping bot.ErrNotFound", err)
		return
	}
	if !strings.Contains(err.Error(), names) {
		t.Errorf("error %q does not name %q", err, names)
	}
}

func testPing(t *testing.T, s bot.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testDeliveries(t *testing.T, s bot.Store) {
	ctx := t.Context()
	mark := func(d bot.Delivery) bool {
		t.Helper()
		var fresh bool
		update(t, s, func(tx bot.Tx) (err error) {
			fresh, err = tx.MarkDelivery(ctx, d)
			return err
		})
		return fresh
	}
	processed := func(guid string) bool {
		t.Helper()
		var ok bool
		view(t, s, func(tx bot.Tx) (err error) {
			ok, err = tx.DeliveryProcessed(ctx, guid)
			return err
		})
		return ok
	}

	if processed("guid-1") {
		t.Errorf("DeliveryProcessed(guid-1) before marking = true")
	}
	if !mark(bot.Delivery{GUID: "guid-1", Event: "push", ProcessedAt: t0}) {
		t.Errorf("first MarkDelivery(guid-1) = not fresh")
	}
	if mark(bot.Delivery{GUID: "guid-1", Event: "push", ProcessedAt: t0.Add(time.Minute)}) {
		t.Errorf("second MarkDelivery(guid-1) = fresh")
	}
	if !mark(bot.Delivery{GUID: "guid-2", Event: "issue_comment"}) { // zero ProcessedAt: the store stamps it
		t.Errorf("first MarkDelivery(guid-2) = not fresh")
	}
	if !processed("guid-1") || !processed("guid-2") {
		t.Errorf("DeliveryProcessed after marking = false")
	}
	if processed("guid-3") {
		t.Errorf("DeliveryProcessed(guid-3) = true, never marked")
	}

	err := s.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.MarkDelivery(ctx, bot.Delivery{Event: "push"})
		return err
	})
	if err == nil {
		t.Errorf("MarkDelivery with an empty GUID: no error")
	}
}

func testPoisonedDeliveries(t *testing.T, s bot.Store) {
	ctx := t.Context()
	record := func(guid string) bot.DeliveryRecord { t.Helper(); return deliveryRecord(t, s, guid) }
	poison := func(p bot.PoisonedDelivery) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.MarkPoisoned(ctx, p) })
	}

	if diff := cmp.Diff(bot.DeliveryRecord{}, record("unknown")); diff != "" {
		t.Errorf("DeliveryRecord(unknown) (-want +got):\n%s", diff)
	}
	poison(bot.PoisonedDelivery{GUID: "g-1", Event: "push", Reason: "GitHub answered 500", PoisonedAt: t0.In(cet)})
	if diff := cmp.Diff(bot.DeliveryRecord{PoisonedAt: t0, PoisonReason: "GitHub answered 500"}, record("g-1")); diff != "" {
		t.Errorf("after the first poisoning (-want +got):\n%s", diff)
	}
	// Poisoned again after a redelivery: the newer time and reason replace
	// the old ones (the time is part of the next redelivery's message id).
	poison(bot.PoisonedDelivery{GUID: "g-1", Event: "push", Reason: "config not found", PoisonedAt: t0.Add(time.Hour)})
	if diff := cmp.Diff(bot.DeliveryRecord{PoisonedAt: t0.Add(time.Hour), PoisonReason: "config not found"}, record("g-1")); diff != "" {
		t.Errorf("after the second poisoning (-want +got):\n%s", diff)
	}
	// Processed after a redelivery: both facts are kept.
	update(t, s, func(tx bot.Tx) error {
		_, err := tx.MarkDelivery(ctx, bot.Delivery{GUID: "g-1", Event: "push", ProcessedAt: t0.Add(2 * time.Hour)})
		return err
	})
	want := bot.DeliveryRecord{ProcessedAt: t0.Add(2 * time.Hour), PoisonedAt: t0.Add(time.Hour), PoisonReason: "config not found"}
	if diff := cmp.Diff(want, record("g-1")); diff != "" {
		t.Errorf("after processing (-want +got):\n%s", diff)
	}
	update(t, s, func(tx bot.Tx) error {
		_, err := tx.MarkDelivery(ctx, bot.Delivery{GUID: "g-2", Event: "push", ProcessedAt: t0})
		return err
	})
	if diff := cmp.Diff(bot.DeliveryRecord{ProcessedAt: t0}, record("g-2")); diff != "" {
		t.Errorf("processed, never poisoned (-want +got):\n%s", diff)
	}
	// The store stamps a zero time.
	poison(bot.PoisonedDelivery{GUID: "g-3", Event: "issue_comment", Reason: "r"})
	if record("g-3").PoisonedAt.IsZero() {
		t.Errorf("MarkPoisoned with a zero time: the store did not stamp it")
	}
	err := s.Update(ctx, func(tx bot.Tx) error { return tx.MarkPoisoned(ctx, bot.PoisonedDelivery{Event: "push"}) })
	if err == nil {
		t.Errorf("MarkPoisoned with an empty GUID: no error")
	}
}

func testInstallations(t *testing.T, s bot.Store) {
	ctx := t.Context()
	get := func(id int64) (bot.Installation, error) {
		var inst bot.Installation
		err := s.View(ctx, func(tx bot.Tx) (err error) {
			inst, err = tx.Installation(ctx, id)
			return err
		})
		return inst, err
	}
	put := func(inst bot.Installation) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.PutInstallation(ctx, inst) })
	}

	for _, want := range []bot.Installation{
		{ID: 42, Account: "octo-org", UpdatedAt: t0},
		{ID: 42, Account: "octo-renamed", Suspended: true, UpdatedAt: t0.Add(time.Hour).In(cet)}, // replaces
		{ID: 7, Account: "someone"},
	} {
		put(want)
		got, err := get(want.ID)
		if err != nil {
			t.Fatalf("Installation(%d): %v", want.ID, err)
		}
		if want.UpdatedAt.IsZero() {
			if got.UpdatedAt.IsZero() {
				t.Errorf("Installation(%d).UpdatedAt is zero, want the store's time", want.ID)
			}
			want.UpdatedAt = got.UpdatedAt
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Installation(%d) (-want +got):\n%s", want.ID, diff)
		}
	}

	p := newProgram(t, s, 42, "octo-org", "hello")
	update(t, s, func(tx bot.Tx) error { return tx.DeleteInstallation(ctx, 42) })
	_, err := get(42)
	wantNotFound(t, err, "42")
	if _, err := get(7); err != nil {
		t.Errorf("Installation(7) after deleting 42: %v", err)
	}
	// Deleting again changes nothing: a redelivered webhook is harmless.
	update(t, s, func(tx bot.Tx) error { return tx.DeleteInstallation(ctx, 42) })
	// The programs stay, with their history.
	view(t, s, func(tx bot.Tx) error {
		got, err := tx.Program(ctx, p.ID)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("program after deleting its installation (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testPrograms(t *testing.T, s bot.Store) {
	ctx := t.Context()
	hello := newProgram(t, s, 1, "octo", "hello")
	if hello.ID == 0 {
		t.Fatalf("EnsureProgram returned ID 0")
	}
	if diff := cmp.Diff(bot.Program{ID: hello.ID, InstallationID: 1, Owner: "octo", Repo: "hello"}, hello); diff != "" {
		t.Errorf("EnsureProgram (-want +got):\n%s", diff)
	}
	world := newProgram(t, s, 1, "octo", "world")
	if world.ID == hello.ID {
		t.Fatalf("two repositories share program ID %d", world.ID)
	}
	if again := newProgram(t, s, 1, "octo", "hello"); again != hello {
		t.Errorf("EnsureProgram again = %+v, want %+v", again, hello)
	}

	// Removing and ensuring again re-activates it, on the new installation.
	update(t, s, func(tx bot.Tx) error { return tx.SetProgramRemoved(ctx, hello.ID, true) })
	view(t, s, func(tx bot.Tx) error {
		got, err := tx.Program(ctx, hello.ID)
		if err != nil {
			return err
		}
		if !got.Removed {
			t.Errorf("Program after SetProgramRemoved(true): Removed = false")
		}
		return nil
	})
	moved := newProgram(t, s, 2, "octo", "hello")
	wantMoved := bot.Program{ID: hello.ID, InstallationID: 2, Owner: "octo", Repo: "hello"}
	if diff := cmp.Diff(wantMoved, moved); diff != "" {
		t.Errorf("EnsureProgram of a removed program (-want +got):\n%s", diff)
	}
	update(t, s, func(tx bot.Tx) error { return tx.SetProgramRemoved(ctx, world.ID, true) })
	world.Removed = true

	view(t, s, func(tx bot.Tx) error {
		for _, tc := range []struct {
			name string
			get  func() (bot.Program, error)
			want bot.Program
		}{
			{"Program", func() (bot.Program, error) { return tx.Program(ctx, hello.ID) }, wantMoved},
			{"ProgramByName", func() (bot.Program, error) { return tx.ProgramByName(ctx, "octo", "world") }, world},
			// GitHub names ignore case.
			{"ProgramByName other case", func() (bot.Program, error) { return tx.ProgramByName(ctx, "Octo", "HELLO") }, wantMoved},
		} {
			got, err := tc.get()
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
		}
		all, err := tx.Programs(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]bot.Program{wantMoved, world}, all); diff != "" {
			t.Errorf("Programs (-want +got):\n%s", diff)
		}
		return nil
	})

	// A repository whose name changed case stays the same program.
	if got := newProgram(t, s, 2, "Octo", "Hello"); got.ID != hello.ID {
		t.Errorf("EnsureProgram(Octo/Hello) ID = %d, want %d", got.ID, hello.ID)
	}
}

func testPipelines(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	get := func(programID int64) []bot.Pipeline {
		t.Helper()
		var ps []bot.Pipeline
		view(t, s, func(tx bot.Tx) (err error) {
			ps, err = tx.Pipelines(ctx, programID)
			return err
		})
		return ps
	}
	set := func(programID int64, ps []bot.Pipeline) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.SetPipelines(ctx, programID, ps) })
	}
	stage := bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerOnGitChanges}
	full := bot.PipelineConfig{Branch: "release", Trigger: bot.TriggerManual, Approval: true, Scheduled: true}
	prod := bot.PipelineConfig{Approval: true}

	set(other.ID, []bot.Pipeline{{Kind: bot.StageOnly, PipelineConfig: stage}})
	steps := []struct {
		name string
		set  []bot.Pipeline
		want []bot.Pipeline
	}{
		{
			name: "first",
			set:  []bot.Pipeline{{Kind: bot.StageOnly, PipelineConfig: stage}, {ProgramID: p.ID, Kind: bot.FullStack, PipelineConfig: full}},
			want: []bot.Pipeline{{ProgramID: p.ID, Kind: bot.FullStack, PipelineConfig: full}, {ProgramID: p.ID, Kind: bot.StageOnly, PipelineConfig: stage}},
		},
		{
			name: "replaced",
			set:  []bot.Pipeline{{Kind: bot.ProdOnly, PipelineConfig: prod}, {Kind: bot.StageOnly, PipelineConfig: full}},
			want: []bot.Pipeline{{ProgramID: p.ID, Kind: bot.StageOnly, PipelineConfig: full}, {ProgramID: p.ID, Kind: bot.ProdOnly, PipelineConfig: prod}},
		},
		{name: "emptied", set: nil, want: nil},
	}
	for _, st := range steps {
		set(p.ID, st.set)
		if diff := cmp.Diff(st.want, get(p.ID), equateEmpty); diff != "" {
			t.Errorf("%s: Pipelines (-want +got):\n%s", st.name, diff)
		}
	}
	want := []bot.Pipeline{{ProgramID: other.ID, Kind: bot.StageOnly, PipelineConfig: stage}}
	if diff := cmp.Diff(want, get(other.ID)); diff != "" {
		t.Errorf("Pipelines of the other program (-want +got):\n%s", diff)
	}
}

func testNotFound(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
	const missing = 987654

	tests := []struct {
		name  string
		fn    func(tx bot.Tx) error
		names string // what the error must mention
	}{
		{"Installation", func(tx bot.Tx) error { _, err := tx.Installation(ctx, missing); return err }, "987654"},
		{"Program", func(tx bot.Tx) error { _, err := tx.Program(ctx, missing); return err }, "987654"},
		{"ProgramByName", func(tx bot.Tx) error { _, err := tx.ProgramByName(ctx, "octo", "nope"); return err }, "octo/nope"},
		{"ProgramByGitHubID", func(tx bot.Tx) error { _, err := tx.ProgramByGitHubID(ctx, missing); return err }, "987654"},
		{"SetProgramRemoved", func(tx bot.Tx) error { return tx.SetProgramRemoved(ctx, missing, true) }, "987654"},
		{"SetPipelines", func(tx bot.Tx) error { return tx.SetPipelines(ctx, missing, nil) }, "987654"},
		{"CreateExecution", func(tx bot.Tx) error {
			_, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: missing, Pipeline: bot.StageOnly})
			return err
		}, "987654"},
		{"Execution", func(tx bot.Tx) error { _, err := tx.Execution(ctx, missing); return err }, "987654"},
		{"ExecutionByNumber", func(tx bot.Tx) error { _, err := tx.ExecutionByNumber(ctx, p.ID, 2); return err }, "2"},
		{"UpdateExecution", func(tx bot.Tx) error {
			return tx.UpdateExecution(ctx, bot.Execution{ID: missing, ProgramID: p.ID, State: bot.ExecutionFailed})
		}, "987654"},
		{"Steps", func(tx bot.Tx) error { _, err := tx.Steps(ctx, missing); return err }, "987654"},
		{"UpdateStep of a missing execution", func(tx bot.Tx) error {
			return tx.UpdateStep(ctx, bot.Step{ExecutionID: missing, Name: bot.StepBuild, State: bot.StepRunning})
		}, "987654"},
		{"UpdateStep not in the pipeline", func(tx bot.Tx) error {
			return tx.UpdateStep(ctx, bot.Step{ExecutionID: e.ID, Name: bot.StepApproval, State: bot.StepRunning})
		}, string(bot.StepApproval)},
		{"AddTriggerRecord", func(tx bot.Tx) error {
			return tx.AddTriggerRecord(ctx, bot.TriggerRecord{ProgramID: missing, Commit: "abc"})
		}, "987654"},
		{"LockProgram", func(tx bot.Tx) error { return tx.LockProgram(ctx, missing) }, "987654"},
		{"Deployment", func(tx bot.Tx) error { _, err := tx.Deployment(ctx, p.ID, bot.Production); return err }, "production"},
		{"SetDeployment of a missing program", func(tx bot.Tx) error {
			return tx.SetDeployment(ctx, bot.Deployment{ProgramID: missing, Environment: bot.Stage, Pipeline: bot.StageOnly, Number: 1})
		}, "987654"},
		{"SetDeployment of a missing execution", func(tx bot.Tx) error {
			return tx.SetDeployment(ctx, bot.Deployment{ProgramID: p.ID, Environment: bot.Stage, ExecutionID: missing})
		}, "987654"},
		{"SetVariable", func(tx bot.Tx) error { return tx.SetVariable(ctx, missing, bot.Stage, "K", "v") }, "987654"},
		{"AddEvent", func(tx bot.Tx) error {
			return tx.AddEvent(ctx, bot.Event{ExecutionID: missing, Actor: "mona", Kind: "approved"})
		}, "987654"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each runs in an Update that is rolled back, so the writes are
			// tried for real.
			errRollback := errors.New("roll back")
			var got error
			err := s.Update(ctx, func(tx bot.Tx) error {
				got = tc.fn(tx)
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Update = %v, want %v", err, errRollback)
			}
			wantNotFound(t, got, tc.names)
		})
	}
}
