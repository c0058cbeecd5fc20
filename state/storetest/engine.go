package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

func testLockProgram(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	update(t, s, func(tx bot.Tx) error {
		if err := tx.LockProgram(ctx, p.ID); err != nil {
			return err
		}
		// The transaction goes on writing after the lock.
		_, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
		return err
	})
	// LockProgram of a missing program is in testNotFound.
}

// testConcurrentLockProgram has goroutines each read a counter and write it
// back incremented, after LockProgram: no increment may be lost.
func testConcurrentLockProgram(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				err := s.Update(ctx, func(tx bot.Tx) error {
					if err := tx.LockProgram(ctx, p.ID); err != nil {
						return err
					}
					vars, err := tx.Variables(ctx, p.ID, bot.Stage)
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(vars["N"]) // "" is 0
					return tx.SetVariable(ctx, p.ID, bot.Stage, "N", strconv.Itoa(n+1))
				})
				if err != nil {
					t.Errorf("worker %d round %d: %v", w, r, err)
				}
			}
		})
	}
	wg.Wait()
	var vars map[string]string
	view(t, s, func(tx bot.Tx) (err error) {
		vars, err = tx.Variables(ctx, p.ID, bot.Stage)
		return err
	})
	if want := strconv.Itoa(workers * rounds); vars["N"] != want {
		t.Errorf("counter = %q, want %s", vars["N"], want)
	}
}

func testDeployments(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	e1 := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: "c1", State: bot.ExecutionSucceeded})
	e2 := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.FullStack, Commit: "c2", State: bot.ExecutionRunning})
	otherE := newExecution(t, s, bot.Execution{ProgramID: other.ID, Pipeline: bot.StageOnly, State: bot.ExecutionSucceeded})

	get := func(programID int64, env bot.EnvironmentName) (bot.Deployment, error) {
		t.Helper()
		var d bot.Deployment
		err := s.View(ctx, func(tx bot.Tx) (err error) {
			d, err = tx.Deployment(ctx, programID, env)
			return err
		})
		return d, err
	}
	set := func(d bot.Deployment) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.SetDeployment(ctx, d) })
	}
	check := func(want bot.Deployment) {
		t.Helper()
		got, err := get(want.ProgramID, want.Environment)
		if err != nil {
			t.Errorf("Deployment(%d, %s): %v", want.ProgramID, want.Environment, err)
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Deployment(%d, %s) (-want +got):\n%s", want.ProgramID, want.Environment, diff)
		}
	}

	_, err := get(p.ID, bot.Stage)
	wantNotFound(t, err, "stage")

	stage1 := bot.Deployment{ProgramID: p.ID, Environment: bot.Stage, ExecutionID: e1.ID, Pipeline: bot.StageOnly,
		Number: e1.Number, Commit: "c1", ArtifactDigest: "sha256:aaaa", Since: t0.In(cet)}
	set(stage1)
	check(stage1)
	// Production is still empty, and so is the other program.
	_, err = get(p.ID, bot.Production)
	wantNotFound(t, err, "production")
	_, err = get(other.ID, bot.Stage)
	wantNotFound(t, err, strconv.FormatInt(other.ID, 10))

	// Setting again replaces.
	stage2 := bot.Deployment{ProgramID: p.ID, Environment: bot.Stage, ExecutionID: e2.ID, Pipeline: bot.FullStack,
		Number: e2.Number, Commit: "c2", ArtifactDigest: "sha256:bbbb", Since: t0.Add(time.Hour)}
	set(stage2)
	check(stage2)
	prod := stage2
	prod.Environment = bot.Production
	prod.Since = t0.Add(2 * time.Hour)
	set(prod)
	check(prod)
	check(stage2)
	otherStage := bot.Deployment{ProgramID: other.ID, Environment: bot.Stage, ExecutionID: otherE.ID,
		Pipeline: bot.StageOnly, Number: otherE.Number, Since: t0}
	set(otherStage)
	check(otherStage)
	check(stage2)

	// Refused: an unknown environment, another program's execution.
	for name, d := range map[string]bot.Deployment{
		"unknown environment":         {ProgramID: p.ID, Environment: "staging", ExecutionID: e1.ID, Pipeline: bot.StageOnly, Number: 1},
		"another program's execution": {ProgramID: p.ID, Environment: bot.Stage, ExecutionID: otherE.ID, Pipeline: bot.StageOnly, Number: 1},
	} {
		if err := s.Update(ctx, func(tx bot.Tx) error { return tx.SetDeployment(ctx, d) }); err == nil {
			t.Errorf("SetDeployment with %s: no error", name)
		}
	}
	if _, err := get(p.ID, "staging"); err == nil || errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Deployment(staging) = %v, want an error about the environment", err)
	}
	check(stage2)
}

func testVariables(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	vars := func(programID int64, env bot.EnvironmentName) map[string]string {
		t.Helper()
		var m map[string]string
		view(t, s, func(tx bot.Tx) (err error) {
			m, err = tx.Variables(ctx, programID, env)
			return err
		})
		if m == nil {
			t.Errorf("Variables(%d, %s) = nil, want a map", programID, env)
		}
		return m
	}
	setVar := func(programID int64, env bot.EnvironmentName, key, value string) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.SetVariable(ctx, programID, env, key, value) })
	}
	unsetVar := func(programID int64, env bot.EnvironmentName, key string) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.UnsetVariable(ctx, programID, env, key) })
	}
	check := func(step string, want map[bot.EnvironmentName]map[string]string, wantOther map[string]string) {
		t.Helper()
		for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
			if diff := cmp.Diff(want[env], vars(p.ID, env)); diff != "" {
				t.Errorf("%s: Variables(%s) (-want +got):\n%s", step, env, diff)
			}
		}
		if diff := cmp.Diff(wantOther, vars(other.ID, bot.Stage)); diff != "" {
			t.Errorf("%s: Variables of the other program (-want +got):\n%s", step, diff)
		}
	}

	check("none", map[bot.EnvironmentName]map[string]string{bot.Stage: {}, bot.Production: {}}, map[string]string{})

	setVar(p.ID, bot.Stage, "API_URL", "https://stage.example.com")
	setVar(p.ID, bot.Stage, "EMPTY", "")
	setVar(p.ID, bot.Production, "API_URL", "https://example.com")
	setVar(other.ID, bot.Stage, "API_URL", "https://other.example.com")
	check("set", map[bot.EnvironmentName]map[string]string{
		bot.Stage:      {"API_URL": "https://stage.example.com", "EMPTY": ""},
		bot.Production: {"API_URL": "https://example.com"},
	}, map[string]string{"API_URL": "https://other.example.com"})

	setVar(p.ID, bot.Stage, "API_URL", "https://stage2.example.com")
	check("replaced", map[bot.EnvironmentName]map[string]string{
		bot.Stage:      {"API_URL": "https://stage2.example.com", "EMPTY": ""},
		bot.Production: {"API_URL": "https://example.com"},
	}, map[string]string{"API_URL": "https://other.example.com"})

	unsetVar(p.ID, bot.Stage, "API_URL")
	unsetVar(p.ID, bot.Stage, "NEVER_SET") // not an error
	check("unset", map[bot.EnvironmentName]map[string]string{
		bot.Stage:      {"EMPTY": ""},
		bot.Production: {"API_URL": "https://example.com"},
	}, map[string]string{"API_URL": "https://other.example.com"})

	unsetVar(p.ID, bot.Stage, "EMPTY")
	check("all unset", map[bot.EnvironmentName]map[string]string{
		bot.Stage:      {},
		bot.Production: {"API_URL": "https://example.com"},
	}, map[string]string{"API_URL": "https://other.example.com"})

	// Only stage and production exist.
	for name, fn := range map[string]func(tx bot.Tx) error{
		"Variables":     func(tx bot.Tx) error { _, err := tx.Variables(ctx, p.ID, "staging"); return err },
		"SetVariable":   func(tx bot.Tx) error { return tx.SetVariable(ctx, p.ID, "staging", "K", "v") },
		"UnsetVariable": func(tx bot.Tx) error { return tx.UnsetVariable(ctx, p.ID, "", "K") },
	} {
		err := s.Update(ctx, fn)
		if err == nil {
			t.Errorf("%s of an unknown environment: no error", name)
		} else if errors.Is(err, bot.ErrNotFound) {
			t.Errorf("%s of an unknown environment = %v, want an error other than not found", name, err)
		}
	}
}

func testEvents(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.FullStack, State: bot.ExecutionWaiting})
	otherE := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionRunning})
	events := func(id int64) []bot.Event {
		t.Helper()
		var evs []bot.Event
		view(t, s, func(tx bot.Tx) (err error) {
			evs, err = tx.Events(ctx, id)
			return err
		})
		return evs
	}

	if diff := cmp.Diff([]bot.Event(nil), events(e.ID), equateEmpty); diff != "" {
		t.Errorf("Events before any (-want +got):\n%s", diff)
	}

	// Added out of time order, over two transactions: they come back in the
	// order they were added.
	want := []bot.Event{
		{ExecutionID: e.ID, At: t0.Add(time.Minute), Actor: "mona", Kind: "triggered", Detail: "push to main"},
		{ExecutionID: e.ID, At: t0.In(cet), Actor: "hubot", Kind: "approved"},
		{ExecutionID: e.ID, Actor: "stagehand", Kind: "scheduled", Detail: "for 18:00 UTC"}, // zero At
		{ExecutionID: e.ID, At: t0.Add(time.Minute), Actor: "mona", Kind: "cancelled"},
	}
	other := bot.Event{ExecutionID: otherE.ID, At: t0, Actor: "mona", Kind: "triggered"}
	update(t, s, func(tx bot.Tx) error {
		for _, ev := range []bot.Event{want[0], other, want[1]} {
			if err := tx.AddEvent(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx bot.Tx) error {
		for _, ev := range want[2:] {
			if err := tx.AddEvent(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})

	got := events(e.ID)
	if len(got) == len(want) {
		if got[2].At.IsZero() {
			t.Errorf("Events: the event added with a zero At has a zero At, want the store's time")
		}
		want[2].At = got[2].At
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bot.Event{other}, events(otherE.ID)); diff != "" {
		t.Errorf("Events of the other execution (-want +got):\n%s", diff)
	}
	// AddEvent of a missing execution is in testNotFound.
}

// wantNoEngineState fails if the program or execution shows any of the
// deployments, variables, events, GitHub refs and versions writeEverything
// writes.
func wantNoEngineState(t *testing.T, s bot.Store, programID, executionID int64) {
	t.Helper()
	ctx := t.Context()
	view(t, s, func(tx bot.Tx) error {
		for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
			if d, err := tx.Deployment(ctx, programID, env); !errors.Is(err, bot.ErrNotFound) {
				t.Errorf("Deployment(%s) = %+v, %v; want not found", env, d, err)
			}
			vars, err := tx.Variables(ctx, programID, env)
			if err != nil {
				return err
			}
			if len(vars) != 0 {
				t.Errorf("Variables(%s) = %v, want none", env, vars)
			}
		}
		evs, err := tx.Events(ctx, executionID)
		if err != nil {
			return err
		}
		if len(evs) != 0 {
			t.Errorf("Events = %v, want none", evs)
		}
		refs, err := tx.GitHubRefs(ctx, executionID)
		if err != nil {
			return err
		}
		if len(refs) != 0 {
			t.Errorf("GitHubRefs = %v, want none", refs)
		}
		e, err := tx.Execution(ctx, executionID)
		if err != nil {
			return err
		}
		if e.Version != 1 || e.ReportedVersion != 0 {
			t.Errorf("new execution: version %d, reported %d; want 1, 0", e.Version, e.ReportedVersion)
		}
		return nil
	})
}
