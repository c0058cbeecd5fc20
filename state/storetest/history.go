package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testEnvironmentHistory: the deploys of one environment that started,
// newest first (by the step's start, then the execution), with the
// execution's commit, artifacts, source, trigger and approvals; paged
// before and after a position.
func testEnvironmentHistory(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	run := func(e bot.Execution, steps []bot.Step, events ...bot.Event) bot.Execution {
		t.Helper()
		e = newExecution(t, s, e)
		update(t, s, func(tx bot.Tx) error {
			for _, st := range steps {
				st.ExecutionID = e.ID
				if err := tx.UpdateStep(ctx, st); err != nil {
					return err
				}
			}
			for _, ev := range events {
				ev.ExecutionID = e.ID
				if err := tx.AddEvent(ctx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		return e
	}
	step := func(name bot.StepName, st bot.StepState, attempt, from, to int) bot.Step {
		s := bot.Step{Name: name, State: st, Message: string(st), Attempt: attempt, StartedAt: at(from)}
		if to > 0 {
			s.FinishedAt = at(to)
		}
		return s
	}
	stageOnly := func(commit, digest, by string) bot.Execution {
		return bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionSucceeded, Commit: commit,
			ArtifactDigest: digest, Cause: bot.CausePush, TriggeredBy: by}
	}
	e1 := run(stageOnly("c1", "d1", "mona"), []bot.Step{step(bot.StepDeployStage, bot.StepSucceeded, 1, 1, 2)})
	failed := stageOnly("c2", "d2", "hubot")
	failed.State = bot.ExecutionFailed
	e2 := run(failed, []bot.Step{step(bot.StepDeployStage, bot.StepFailed, 1, 2, 3)})
	full := stageOnly("c3", "d3", "mona")
	full.Pipeline = bot.FullStack
	e3 := run(full, []bot.Step{step(bot.StepDeployStage, bot.StepSucceeded, 1, 3, 4), step(bot.StepDeployProduction, bot.StepSucceeded, 1, 5, 6)},
		bot.Event{At: at(4), Actor: "mona", Kind: bot.EventTriggered},
		bot.Event{At: at(4), Actor: "alice", Kind: bot.EventApproved, Detail: "1 of 2 approvals: @alice"},
		bot.Event{At: at(5), Actor: "bob", Kind: bot.EventApproved, Detail: "2 of 2 approvals: @alice, @bob"})
	promote := func(by string) bot.Execution {
		return bot.Execution{ProgramID: p.ID, Pipeline: bot.ProdOnly, State: bot.ExecutionFailed, Commit: "c1",
			ArtifactDigest: "d1", SourceID: e1.ID, Cause: bot.CausePromotion, TriggeredBy: by}
	}
	// Held by its windows, then cancelled while it waited: it never ran.
	run(promote("carol"), []bot.Step{step(bot.StepDeployProduction, bot.StepCancelled, 0, 6, 7)})
	// Dispatched, then cancelled before a worker took it: it never ran.
	run(promote("carol"), []bot.Step{{Name: bot.StepDeployProduction, State: bot.StepCancelled, StartedAt: at(6)}})
	// Cancelled while its command ran: it counts.
	e6 := run(promote("carol"), []bot.Step{step(bot.StepDeployProduction, bot.StepCancelled, 1, 7, 8)},
		bot.Event{At: at(7), Actor: "dave", Kind: bot.EventApprovedRollback})
	// Started at the same time as e3's: the later execution is newer.
	e7 := run(promote("erin"), []bot.Step{{Name: bot.StepDeployProduction, State: bot.StepRunning, Message: "dispatched", StartedAt: at(5)}})
	// Waiting for its window: not in the history.
	run(promote("erin"), []bot.Step{{Name: bot.StepDeployProduction, State: bot.StepWaiting, StartedAt: at(9)}})
	// Another program's deploy.
	newExecutionWithStage := bot.Execution{ProgramID: other.ID, Pipeline: bot.StageOnly, State: bot.ExecutionSucceeded, Commit: "x"}
	run(newExecutionWithStage, []bot.Step{step(bot.StepDeployStage, bot.StepSucceeded, 1, 10, 11)})

	stage := []bot.EnvironmentDeployment{
		{Environment: bot.Stage, ExecutionID: e3.ID, Number: e3.Number, Pipeline: bot.FullStack, Commit: "c3", ArtifactDigest: "d3",
			BuildState: bot.ExecutionSucceeded, Cause: bot.CausePush, TriggeredBy: "mona", Outcome: bot.StepSucceeded, Message: "succeeded", StartedAt: at(3), FinishedAt: at(4),
			Approvals: []bot.Event{
				{ExecutionID: e3.ID, At: at(4), Actor: "alice", Kind: bot.EventApproved, Detail: "1 of 2 approvals: @alice"},
				{ExecutionID: e3.ID, At: at(5), Actor: "bob", Kind: bot.EventApproved, Detail: "2 of 2 approvals: @alice, @bob"}}},
		{Environment: bot.Stage, ExecutionID: e2.ID, Number: e2.Number, Pipeline: bot.StageOnly, Commit: "c2", ArtifactDigest: "d2",
			BuildState: bot.ExecutionFailed, Cause: bot.CausePush, TriggeredBy: "hubot", Outcome: bot.StepFailed, Message: "failed", StartedAt: at(2), FinishedAt: at(3)},
		{Environment: bot.Stage, ExecutionID: e1.ID, Number: e1.Number, Pipeline: bot.StageOnly, Commit: "c1", ArtifactDigest: "d1",
			BuildState: bot.ExecutionSucceeded, Cause: bot.CausePush, TriggeredBy: "mona", Outcome: bot.StepSucceeded, Message: "succeeded", StartedAt: at(1), FinishedAt: at(2)},
	}
	prodRow := func(e bot.Execution, by string, outcome bot.StepState, from, to int, approvals ...bot.Event) bot.EnvironmentDeployment {
		r := bot.EnvironmentDeployment{Environment: bot.Production, ExecutionID: e.ID, Number: e.Number, Pipeline: bot.ProdOnly, Commit: "c1",
			ArtifactDigest: "d1", SourceNumber: e1.Number, BuildState: bot.ExecutionSucceeded, Cause: bot.CausePromotion, TriggeredBy: by, Outcome: outcome, Message: string(outcome),
			StartedAt: at(from), Approvals: approvals}
		if to > 0 {
			r.FinishedAt = at(to)
		}
		return r
	}
	prod3 := stage[0]
	prod3.Environment, prod3.StartedAt, prod3.FinishedAt = bot.Production, at(5), at(6)
	running := prodRow(e7, "erin", bot.StepRunning, 5, 0)
	running.Message = "dispatched"
	production := []bot.EnvironmentDeployment{
		prodRow(e6, "carol", bot.StepCancelled, 7, 8, bot.Event{ExecutionID: e6.ID, At: at(7), Actor: "dave", Kind: bot.EventApprovedRollback}),
		running,
		prod3,
	}

	tests := []struct {
		name string
		q    bot.HistoryQuery
		want []bot.EnvironmentDeployment
	}{
		{"stage, all", bot.HistoryQuery{Environment: bot.Stage}, stage},
		{"stage, first page", bot.HistoryQuery{Environment: bot.Stage, Limit: 2}, stage[:2]},
		{"stage, older than the first page", bot.HistoryQuery{Environment: bot.Stage, Before: stage[1].Position(), Limit: 2}, stage[2:]},
		{"stage, older than the oldest", bot.HistoryQuery{Environment: bot.Stage, Before: stage[2].Position(), Limit: 2}, nil},
		{"stage, just newer than the oldest", bot.HistoryQuery{Environment: bot.Stage, After: stage[2].Position(), Limit: 1}, stage[1:2]},
		{"stage, newer than the oldest", bot.HistoryQuery{Environment: bot.Stage, After: stage[2].Position(), Limit: 5}, stage[:2]},
		{"stage, newer than the newest", bot.HistoryQuery{Environment: bot.Stage, After: stage[0].Position(), Limit: 5}, nil},
		{"production, all", bot.HistoryQuery{Environment: bot.Production}, production},
		{"production, the newest", bot.HistoryQuery{Environment: bot.Production, Limit: 1}, production[:1]},
		{"production, same start: the later execution first", bot.HistoryQuery{Environment: bot.Production, Before: production[0].Position(), Limit: 1}, production[1:2]},
		{"production, same start: then the earlier", bot.HistoryQuery{Environment: bot.Production, Before: production[1].Position(), Limit: 5}, production[2:]},
		{"production, same start: newer", bot.HistoryQuery{Environment: bot.Production, After: production[2].Position(), Limit: 1}, production[1:2]},
	}
	for _, tt := range tests {
		tt.q.ProgramID = p.ID
		var got []bot.EnvironmentDeployment
		view(t, s, func(tx bot.Tx) (err error) {
			got, err = tx.EnvironmentHistory(ctx, tt.q)
			return err
		})
		if diff := cmp.Diff(tt.want, got, equateEmpty); diff != "" {
			t.Errorf("%s: EnvironmentHistory (-want +got):\n%s", tt.name, diff)
		}
	}

	for _, q := range []bot.HistoryQuery{
		{ProgramID: p.ID, Environment: "qa"},
		{ProgramID: p.ID, Environment: bot.Stage, Limit: -1},
		{ProgramID: p.ID, Environment: bot.Stage, Before: stage[1].Position(), After: stage[2].Position()},
	} {
		err := s.View(ctx, func(tx bot.Tx) error {
			_, err := tx.EnvironmentHistory(ctx, q)
			return err
		})
		if err == nil {
			t.Errorf("EnvironmentHistory(%+v) = nil error, want one", q)
		}
	}
}
