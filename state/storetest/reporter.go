package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// versionOf reads an execution's Version and ReportedVersion.
func versionOf(t *testing.T, s bot.Store, id int64) (version, reported int64) {
	t.Helper()
	view(t, s, func(tx bot.Tx) error {
		e, err := tx.Execution(t.Context(), id)
		version, reported = e.Version, e.ReportedVersion
		return err
	})
	return version, reported
}

// toReport lists the IDs ExecutionsToReport(limit) returns, checking that
// each is ahead of what was reported.
func toReport(t *testing.T, s bot.Store, limit int) []int64 {
	t.Helper()
	var ids []int64
	view(t, s, func(tx bot.Tx) error {
		es, err := tx.ExecutionsToReport(t.Context(), limit)
		for _, e := range es {
			if e.Version <= e.ReportedVersion {
				t.Errorf("ExecutionsToReport returned %d at version %d, reported %d", e.ID, e.Version, e.ReportedVersion)
			}
			ids = append(ids, e.ID)
		}
		return err
	})
	return ids
}

// testExecutionVersions checks that every kind of write to an execution
// bumps its Version by one, and that Version and ReportedVersion belong to
// the store.
func testExecutionVersions(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued,
		Version: 41, ReportedVersion: 40})
	other := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
	if e.Version != 1 || e.ReportedVersion != 0 {
		t.Errorf("CreateExecution returned version %d, reported %d; want 1, 0", e.Version, e.ReportedVersion)
	}
	want := func(step string, version, reported int64) {
		t.Helper()
		if v, r := versionOf(t, s, e.ID); v != version || r != reported {
			t.Errorf("after %s: version %d, reported %d; want %d, %d", step, v, r, version, reported)
		}
	}
	want("create", 1, 0)

	e.State = bot.ExecutionRunning
	e.Version, e.ReportedVersion = 100, 100 // ignored
	update(t, s, func(tx bot.Tx) error { return tx.UpdateExecution(ctx, e) })
	want("update execution", 2, 0)

	update(t, s, func(tx bot.Tx) error {
		return tx.UpdateStep(ctx, bot.Step{ExecutionID: e.ID, Name: bot.StepBuild, State: bot.StepRunning, Attempt: 1})
	})
	want("update step", 3, 0)

	update(t, s, func(tx bot.Tx) error {
		return tx.AddEvent(ctx, bot.Event{ExecutionID: e.ID, At: t0, Actor: "mona", Kind: "approved"})
	})
	want("add event", 4, 0)

	update(t, s, func(tx bot.Tx) error { return tx.Touch(ctx, e.ID) })
	want("touch", 5, 0)

	// Two writes in one transaction bump twice.
	update(t, s, func(tx bot.Tx) error {
		if err := tx.Touch(ctx, e.ID); err != nil {
			return err
		}
		return tx.UpdateExecution(ctx, e)
	})
	want("touch and update in one transaction", 7, 0)

	// Reporting and refs are not changes of the execution.
	update(t, s, func(tx bot.Tx) error {
		if err := tx.MarkReported(ctx, e.ID, 7); err != nil {
			return err
		}
		return tx.PutGitHubRef(ctx, bot.GitHubRef{ExecutionID: e.ID, Key: "check-run/0", GitHubID: 1, Reported: "h"})
	})
	want("mark reported and put github ref", 7, 7)

	// A failed write bumps nothing: the transaction rolls back.
	err := s.Update(ctx, func(tx bot.Tx) error {
		if err := tx.Touch(ctx, e.ID); err != nil {
			return err
		}
		return tx.UpdateStep(ctx, bot.Step{ExecutionID: e.ID, Name: "no-such-step", State: bot.StepRunning})
	})
	if !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("UpdateStep of a missing step = %v, want not found", err)
	}
	want("a rolled-back touch", 7, 7)

	if v, r := versionOf(t, s, other.ID); v != 1 || r != 0 {
		t.Errorf("the other execution has version %d, reported %d; want 1, 0", v, r)
	}

	// The listings return the versions too.
	view(t, s, func(tx bot.Tx) error {
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID})
		if err != nil {
			return err
		}
		got := map[int64][2]int64{}
		for _, x := range es {
			got[x.ID] = [2]int64{x.Version, x.ReportedVersion}
		}
		if diff := cmp.Diff(map[int64][2]int64{e.ID: {7, 7}, other.ID: {1, 0}}, got); diff != "" {
			t.Errorf("Executions versions (-want +got):\n%s", diff)
		}
		byNumber, err := tx.ExecutionByNumber(ctx, p.ID, e.Number)
		if err != nil {
			return err
		}
		if byNumber.Version != 7 || byNumber.ReportedVersion != 7 {
			t.Errorf("ExecutionByNumber: version %d, reported %d; want 7, 7", byNumber.Version, byNumber.ReportedVersion)
		}
		return nil
	})

	// Touch and MarkReported of a missing execution.
	const missing = 999999
	err = s.Update(ctx, func(tx bot.Tx) error { return tx.Touch(ctx, missing) })
	wantNotFound(t, err, "execution 999999")
	err = s.Update(ctx, func(tx bot.Tx) error { return tx.MarkReported(ctx, missing, 1) })
	wantNotFound(t, err, "execution 999999")
}

// testExecutionsToReport checks the reporter's queue: executions ahead of
// what was reported, the one changed longest ago first.
func testExecutionsToReport(t *testing.T, s bot.Store) {
	ctx := t.Context()
	if got := toReport(t, s, 0); len(got) != 0 {
		t.Errorf("ExecutionsToReport of an empty store = %v, want none", got)
	}
	p := newProgram(t, s, 1, "octo", "hello")
	q := newProgram(t, s, 1, "octo", "world")
	a := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
	b := newExecution(t, s, bot.Execution{ProgramID: q.ID, Pipeline: bot.ProdOnly, State: bot.ExecutionQueued})
	c := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.FullStack, State: bot.ExecutionQueued})
	check := func(step string, limit int, want ...int64) {
		t.Helper()
		if diff := cmp.Diff(want, toReport(t, s, limit), equateEmpty); diff != "" {
			t.Errorf("ExecutionsToReport(%d) %s (-want +got):\n%s", limit, step, diff)
		}
	}
	mark := func(id, version int64) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.MarkReported(ctx, id, version) })
	}

	check("after creating a, b, c", 0, a.ID, b.ID, c.ID)
	check("after creating a, b, c", -1, a.ID, b.ID, c.ID)
	check("after creating a, b, c", 2, a.ID, b.ID)
	check("after creating a, b, c", 5, a.ID, b.ID, c.ID)

	// The whole execution comes back, at its current version.
	view(t, s, func(tx bot.Tx) error {
		es, err := tx.ExecutionsToReport(ctx, 1)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]bot.Execution{a}, es); diff != "" {
			t.Errorf("ExecutionsToReport(1) (-want +got):\n%s", diff)
		}
		return nil
	})

	update(t, s, func(tx bot.Tx) error { return tx.Touch(ctx, a.ID) })
	check("after touching a", 0, b.ID, c.ID, a.ID)

	mark(b.ID, 1)
	check("after reporting b", 0, c.ID, a.ID)

	// Reporting an older version leaves a pending.
	mark(a.ID, 1)
	check("after reporting a's first version", 0, c.ID, a.ID)
	mark(a.ID, 2)
	check("after reporting a", 0, c.ID)

	// ReportedVersion never moves backwards.
	mark(a.ID, 1)
	mark(a.ID, 0)
	if v, r := versionOf(t, s, a.ID); v != 2 || r != 2 {
		t.Errorf("a after marking older versions: version %d, reported %d; want 2, 2", v, r)
	}
	check("after marking a's older versions", 0, c.ID)

	// A change makes a reported execution pending again, as the newest.
	update(t, s, func(tx bot.Tx) error {
		return tx.AddEvent(ctx, bot.Event{ExecutionID: b.ID, Actor: "mona", Kind: "approved"})
	})
	check("after an event of b", 0, c.ID, b.ID)
	update(t, s, func(tx bot.Tx) error {
		return tx.UpdateStep(ctx, bot.Step{ExecutionID: a.ID, Name: bot.StepBuild, State: bot.StepRunning})
	})
	check("after a step of a", 0, c.ID, b.ID, a.ID)
	check("after a step of a", 1, c.ID)

	// A version marked ahead (as a reporter that read a newer snapshot
	// might) keeps the execution off the list until it is passed.
	mark(c.ID, 3)
	check("after marking c ahead", 0, b.ID, a.ID)
	update(t, s, func(tx bot.Tx) error { return tx.Touch(ctx, c.ID) })
	check("after touching c once", 0, b.ID, a.ID)
	update(t, s, func(tx bot.Tx) error { return tx.Touch(ctx, c.ID) })
	check("after touching c twice", 0, b.ID, a.ID)
	update(t, s, func(tx bot.Tx) error { return tx.Touch(ctx, c.ID) })
	check("after touching c three times", 0, b.ID, a.ID, c.ID)
}

// testGitHubRefs checks that refs are kept per execution and key, replaced
// by key and listed by key.
func testGitHubRefs(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.FullStack, State: bot.ExecutionQueued})
	otherE := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
	refs := func(id int64) []bot.GitHubRef {
		t.Helper()
		var rs []bot.GitHubRef
		view(t, s, func(tx bot.Tx) (err error) {
			rs, err = tx.GitHubRefs(ctx, id)
			return err
		})
		return rs
	}
	put := func(r bot.GitHubRef) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.PutGitHubRef(ctx, r) })
	}
	if diff := cmp.Diff([]bot.GitHubRef(nil), refs(e.ID), equateEmpty); diff != "" {
		t.Errorf("GitHubRefs of a new execution (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bot.GitHubRef(nil), refs(999999), equateEmpty); diff != "" {
		t.Errorf("GitHubRefs of a missing execution (-want +got):\n%s", diff)
	}

	deploy := bot.GitHubRef{ExecutionID: e.ID, Key: "deployment/deploy-stage", GitHubID: 1 << 40, Reported: "in_progress"}
	run1 := bot.GitHubRef{ExecutionID: e.ID, Key: "check-run/1", GitHubID: 22, Reported: "sha256:bb"}
	run0 := bot.GitHubRef{ExecutionID: e.ID, Key: "check-run/0", GitHubID: 11, Reported: "sha256:aa"}
	other := bot.GitHubRef{ExecutionID: otherE.ID, Key: "check-run/0", GitHubID: 33, Reported: "sha256:cc"}
	put(deploy)
	put(run1)
	put(run0)
	put(other)
	if diff := cmp.Diff([]bot.GitHubRef{run0, run1, deploy}, refs(e.ID)); diff != "" {
		t.Errorf("GitHubRefs ordered by key (-want +got):\n%s", diff)
	}

	// A put replaces the ref of its key, and only that one.
	run0.GitHubID, run0.Reported = 44, "sha256:dd"
	put(run0)
	deploy.Reported = "success"
	put(deploy)
	if diff := cmp.Diff([]bot.GitHubRef{run0, run1, deploy}, refs(e.ID)); diff != "" {
		t.Errorf("GitHubRefs after replacing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bot.GitHubRef{other}, refs(otherE.ID)); diff != "" {
		t.Errorf("GitHubRefs of the other execution (-want +got):\n%s", diff)
	}

	// A put for a missing execution, or without a key, fails and writes
	// nothing.
	err := s.Update(ctx, func(tx bot.Tx) error {
		return tx.PutGitHubRef(ctx, bot.GitHubRef{ExecutionID: 999999, Key: "check-run/0", GitHubID: 1})
	})
	wantNotFound(t, err, "execution 999999")
	err = s.Update(ctx, func(tx bot.Tx) error {
		return tx.PutGitHubRef(ctx, bot.GitHubRef{ExecutionID: e.ID, GitHubID: 1})
	})
	if err == nil || errors.Is(err, bot.ErrNotFound) {
		t.Errorf("PutGitHubRef with an empty key = %v, want an error other than not found", err)
	}
	if diff := cmp.Diff([]bot.GitHubRef{run0, run1, deploy}, refs(e.ID)); diff != "" {
		t.Errorf("GitHubRefs after failed puts (-want +got):\n%s", diff)
	}
}
