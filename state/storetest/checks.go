package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testChecks: a store refuses what it cannot keep, with an error other than
// ErrNotFound, and writes nothing.
func testChecks(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued, CreatedAt: t0})
	for _, tc := range []struct {
		name string
		fn   func(tx bot.Tx) error
	}{
		{"PutInstallation with a zero ID", func(tx bot.Tx) error {
			return tx.PutInstallation(ctx, bot.Installation{Account: "octo"})
		}},
		{"EnsureProgram without an owner", func(tx bot.Tx) error {
			_, err := tx.EnsureProgram(ctx, 1, bot.Repository{Name: "hello"})
			return err
		}},
		{"SetPipelines with another program's pipeline", func(tx bot.Tx) error {
			return tx.SetPipelines(ctx, p.ID, []bot.Pipeline{{ProgramID: other.ID, Kind: bot.StageOnly}})
		}},
		{"SetLatestPolicy without a file", func(tx bot.Tx) error {
			return tx.SetLatestPolicy(ctx, p.ID, bot.Policy{Branch: "main", Commit: "aaa"})
		}},
		{"CreateExecution of an unknown pipeline", func(tx bot.Tx) error {
			_, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: "nightly", State: bot.ExecutionQueued})
			return err
		}},
		{"AddEvent without a kind", func(tx bot.Tx) error {
			return tx.AddEvent(ctx, bot.Event{ExecutionID: e.ID, At: t0, Actor: "octocat"})
		}},
		{"SetVariable without a key", func(tx bot.Tx) error {
			return tx.SetVariable(ctx, p.ID, bot.Stage, "", "v")
		}},
		{"RecordPruned of something that is not a digest", func(tx bot.Tx) error {
			return tx.RecordPruned(ctx, []string{"dist/app.js"}, t0)
		}},
		{"PutSession without a login", func(tx bot.Tx) error {
			return tx.PutSession(ctx, bot.Session{ID: "s1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
		}},
	} {
		err := s.Update(ctx, tc.fn)
		if err == nil || errors.Is(err, bot.ErrNotFound) {
			t.Errorf("%s = %v, want an error other than not found", tc.name, err)
		}
	}
	view(t, s, func(tx bot.Tx) error {
		ps, err := tx.Programs(ctx)
		if err != nil {
			return err
		}
		if len(ps) != 2 {
			t.Errorf("Programs after refusals = %v, want the 2 created before", ps)
		}
		pipes, err := tx.Pipelines(ctx, p.ID)
		if err != nil {
			return err
		}
		if len(pipes) != 0 {
			t.Errorf("Pipelines after refusals = %v, want none", pipes)
		}
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]int64{e.ID}, executionIDs(es)); diff != "" {
			t.Errorf("Executions after refusals (-want +got):\n%s", diff)
		}
		evs, err := tx.Events(ctx, e.ID)
		if err != nil {
			return err
		}
		if len(evs) != 0 {
			t.Errorf("Events after refusals = %v, want none", evs)
		}
		vars, err := tx.Variables(ctx, p.ID, bot.Stage)
		if err != nil {
			return err
		}
		if len(vars) != 0 {
			t.Errorf("Variables after refusals = %v, want none", vars)
		}
		return nil
	})
}

func executionIDs(es []bot.Execution) []int64 {
	ids := make([]int64, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}
