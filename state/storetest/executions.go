package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

func testExecutionRoundTrip(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	source := newExecution(t, s, bot.Execution{
		ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: "c0ffee", Branch: "main",
		State: bot.ExecutionSucceeded, Cause: bot.CausePush, CreatedAt: t0,
	})

	in := bot.Execution{
		ProgramID:   p.ID,
		Pipeline:    bot.ProdOnly,
		Commit:      "c0ffee",
		Branch:      "main",
		State:       bot.ExecutionRunning,
		Message:     "deploying to production",
		Cause:       bot.CausePromotion,
		TriggeredBy: "mona",
		DeliveryID:  "delivery-1",
		SourceID:    source.ID,
		// Config holds bytes a text column would mangle.
		Config: []byte("version: 1\nbuild:\n  run: make\n\x00\xff"),
		// Policy, the default branch's file, is kept apart from Config.
		Policy:         []byte("version: 1\npipelines: {stage-only: {branch: main}}\n\x00"),
		ArtifactDigest: "sha256:0123abcd",
		ScheduledAt:    t0.Add(time.Hour).In(cet),
		Rollback:       "production runs #7 from a newer commit",
		CreatedAt:      t0.Add(time.Minute).In(cet),
		StartedAt:      t0.Add(2 * time.Minute),
		// The store owns the versions: a new execution is at 1, unreported.
		Version:         9,
		ReportedVersion: 8,
	}
	created := newExecution(t, s, in)
	if created.ID == 0 || created.ID == source.ID {
		t.Fatalf("CreateExecution ID = %d (source %d)", created.ID, source.ID)
	}
	want := in
	want.ID = created.ID
	want.Number = 2
	want.Version, want.ReportedVersion = 1, 0
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("CreateExecution (-want +got):\n%s", diff)
	}

	check := func(want bot.Execution) {
		t.Helper()
		view(t, s, func(tx bot.Tx) error {
			byID, err := tx.Execution(ctx, want.ID)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, byID); diff != "" {
				t.Errorf("Execution(%d) (-want +got):\n%s", want.ID, diff)
			}
			byNumber, err := tx.ExecutionByNumber(ctx, want.ProgramID, want.Number)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, byNumber); diff != "" {
				t.Errorf("ExecutionByNumber(%d, %d) (-want +got):\n%s", want.ProgramID, want.Number, diff)
			}
			return nil
		})
	}
	check(want)

	// Every field an update may change comes back.
	want.Commit = "decade"
	want.Branch = "release"
	want.State = bot.ExecutionFailed
	want.Message = "deploy-production failed: exit status 1"
	want.Cause = bot.CauseRerun
	want.TriggeredBy = "hubot"
	want.DeliveryID = "delivery-2"
	want.SourceID = 0
	want.Config = []byte("version: 1\n")
	want.ArtifactDigest = "sha256:4567ef01"
	want.ScheduledAt = t0.Add(2 * time.Hour)
	want.Rollback = "production runs #8 from a newer commit"
	want.StartedAt = t0.Add(3 * time.Minute)
	want.FinishedAt = t0.Add(4 * time.Minute).In(cet)
	want.Version = 2 // bumped by the store, not written from the value
	update(t, s, func(tx bot.Tx) error { return tx.UpdateExecution(ctx, want) })
	check(want)

	// And an update clears them again.
	want.Config = nil
	want.ArtifactDigest = ""
	want.ScheduledAt = time.Time{}
	want.Rollback = ""
	want.Version = 3
	update(t, s, func(tx bot.Tx) error { return tx.UpdateExecution(ctx, want) })
	check(want)

	// A zero CreatedAt becomes the store's time; other zero times stay zero.
	stamped := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.FullStack, State: bot.ExecutionQueued})
	if stamped.CreatedAt.IsZero() {
		t.Errorf("CreateExecution with a zero CreatedAt returned a zero CreatedAt")
	}
	check(stamped)
}

func testExecutionNumbers(t *testing.T, s bot.Store) {
	a := newProgram(t, s, 1, "octo", "a")
	b := newProgram(t, s, 1, "octo", "b")
	var got []string
	for _, p := range []bot.Program{a, b, a, b, a} {
		e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued})
		got = append(got, fmt.Sprintf("%s #%d", p.Repo, e.Number))
	}
	want := []string{"a #1", "b #1", "a #2", "b #2", "a #3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("numbers (-want +got):\n%s", diff)
	}
}

var activeStates = []bot.ExecutionState{bot.ExecutionQueued, bot.ExecutionRunning, bot.ExecutionWaiting}

func testExecutionFilters(t *testing.T, s bot.Store) {
	ctx := t.Context()
	a := newProgram(t, s, 1, "octo", "a")
	b := newProgram(t, s, 1, "octo", "b")
	names := map[int64]string{}
	for _, e := range []bot.Execution{
		{ProgramID: a.ID, Pipeline: bot.FullStack, State: bot.ExecutionSucceeded}, // a #1
		{ProgramID: a.ID, Pipeline: bot.StageOnly, State: bot.ExecutionRunning},   // a #2
		{ProgramID: b.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued},    // b #1
		{ProgramID: a.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued},    // a #3
		{ProgramID: a.ID, Pipeline: bot.ProdOnly, State: bot.ExecutionWaiting},    // a #4
		{ProgramID: a.ID, Pipeline: bot.StageOnly, State: bot.ExecutionFailed},    // a #5
		{ProgramID: b.ID, Pipeline: bot.StageOnly, State: bot.ExecutionRunning},   // b #2
	} {
		created := newExecution(t, s, e)
		names[created.ID] = fmt.Sprintf("%s #%d", map[int64]string{a.ID: "a", b.ID: "b"}[e.ProgramID], created.Number)
	}

	tests := []struct {
		name string
		f    bot.ExecutionFilter
		want []string
	}{
		{"program", bot.ExecutionFilter{ProgramID: a.ID}, []string{"a #5", "a #4", "a #3", "a #2", "a #1"}},
		{"pipeline", bot.ExecutionFilter{ProgramID: a.ID, Pipeline: bot.StageOnly}, []string{"a #5", "a #3", "a #2"}},
		{"states", bot.ExecutionFilter{ProgramID: a.ID, States: activeStates}, []string{"a #4", "a #3", "a #2"}},
		{"pipeline and states", bot.ExecutionFilter{ProgramID: a.ID, Pipeline: bot.StageOnly, States: activeStates}, []string{"a #3", "a #2"}},
		{"one state", bot.ExecutionFilter{ProgramID: a.ID, States: []bot.ExecutionState{bot.ExecutionFailed}}, []string{"a #5"}},
		{"limit", bot.ExecutionFilter{ProgramID: a.ID, Limit: 2}, []string{"a #5", "a #4"}},
		{"limit with filters", bot.ExecutionFilter{ProgramID: a.ID, Pipeline: bot.StageOnly, Limit: 1}, []string{"a #5"}},
		{"other program", bot.ExecutionFilter{ProgramID: b.ID}, []string{"b #2", "b #1"}},
		{"every program", bot.ExecutionFilter{States: []bot.ExecutionState{bot.ExecutionRunning}}, []string{"b #2", "a #2"}},
		{"nothing matches", bot.ExecutionFilter{ProgramID: b.ID, Pipeline: bot.FullStack}, nil},
	}
	for _, tc := range tests {
		var es []bot.Execution
		view(t, s, func(tx bot.Tx) (err error) {
			es, err = tx.Executions(ctx, tc.f)
			return err
		})
		var got []string
		for _, e := range es {
			got = append(got, names[e.ID])
		}
		if diff := cmp.Diff(tc.want, got, equateEmpty); diff != "" {
			t.Errorf("%s: Executions(%+v) (-want +got):\n%s", tc.name, tc.f, diff)
		}
	}
}

func testSteps(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	steps := func(id int64) []bot.Step {
		t.Helper()
		var ss []bot.Step
		view(t, s, func(tx bot.Tx) (err error) {
			ss, err = tx.Steps(ctx, id)
			return err
		})
		return ss
	}
	pending := func(id int64, kind bot.PipelineKind) []bot.Step {
		var ss []bot.Step
		for _, name := range bot.StepsOf(kind) {
			ss = append(ss, bot.Step{ExecutionID: id, Name: name, State: bot.StepPending})
		}
		return ss
	}

	ids := map[bot.PipelineKind]int64{}
	for _, kind := range bot.PipelineKinds {
		e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: kind, State: bot.ExecutionQueued})
		ids[kind] = e.ID
		if diff := cmp.Diff(pending(e.ID, kind), steps(e.ID)); diff != "" {
			t.Errorf("Steps of a new %s execution (-want +got):\n%s", kind, diff)
		}
	}

	id := ids[bot.StageOnly]
	want := pending(id, bot.StageOnly)
	for _, st := range []bot.Step{
		{ExecutionID: id, Name: bot.StepBuild, State: bot.StepRunning, Attempt: 1, LeaseUntil: t0.Add(30 * time.Second).In(cet), StartedAt: t0},
		{ExecutionID: id, Name: bot.StepBuild, State: bot.StepRunning, Attempt: 2, LeaseUntil: t0.Add(time.Minute), LogTail: "compiling…\n", StartedAt: t0},
		{ExecutionID: id, Name: bot.StepBuild, State: bot.StepSucceeded, Message: "built 3 artifacts", Attempt: 2, LogTail: "done\n", StartedAt: t0, FinishedAt: t0.Add(time.Minute).In(cet)},
		{ExecutionID: id, Name: bot.StepDeployStage, State: bot.StepFailed, Message: "exit status 2", Attempt: 1, StartedAt: t0.Add(time.Minute), FinishedAt: t0.Add(2 * time.Minute)},
	} {
		update(t, s, func(tx bot.Tx) error { return tx.UpdateStep(ctx, st) })
		for i := range want {
			if want[i].Name == st.Name {
				want[i] = st
			}
		}
		if diff := cmp.Diff(want, steps(id)); diff != "" {
			t.Errorf("Steps after updating %s to %s (-want +got):\n%s", st.Name, st.State, diff)
		}
	}
	// The other executions' steps did not move.
	if diff := cmp.Diff(pending(ids[bot.FullStack], bot.FullStack), steps(ids[bot.FullStack])); diff != "" {
		t.Errorf("Steps of the full-stack execution (-want +got):\n%s", diff)
	}
}

func testTriggerRecords(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	e := newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: "c1", State: bot.ExecutionQueued})

	c1 := []bot.TriggerRecord{
		{ProgramID: p.ID, DeliveryID: "d1", Commit: "c1", Branch: "main", Pipeline: bot.StageOnly, ExecutionID: e.ID, CreatedAt: t0},
		{ProgramID: p.ID, DeliveryID: "d1", Commit: "c1", Branch: "main", Pipeline: bot.FullStack, Code: bot.ReasonPriority,
			Reason: "full-stack not started: stage-only has priority on main", CreatedAt: t0.In(cet)},
		{ProgramID: p.ID, DeliveryID: "d2", Commit: "c1", Branch: "main", Reason: "invalid configuration", CreatedAt: t0.Add(time.Second)},
	}
	c2 := bot.TriggerRecord{ProgramID: p.ID, DeliveryID: "d3", Commit: "c2", Branch: "dev", Pipeline: bot.StageOnly, Code: bot.ReasonOtherBranch,
		Reason: "stage-only not started: it follows branch main, the push was to dev"} // zero CreatedAt
	otherC1 := bot.TriggerRecord{ProgramID: other.ID, DeliveryID: "d4", Commit: "c1", Branch: "main", Reason: "x", CreatedAt: t0}
	update(t, s, func(tx bot.Tx) error {
		for _, r := range append([]bot.TriggerRecord{c1[0], c2, c1[1], otherC1}, c1[2]) {
			if err := tx.AddTriggerRecord(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})

	records := func(programID int64, commit string) []bot.TriggerRecord {
		t.Helper()
		var rs []bot.TriggerRecord
		view(t, s, func(tx bot.Tx) (err error) {
			rs, err = tx.TriggerRecords(ctx, programID, commit)
			return err
		})
		return rs
	}
	if diff := cmp.Diff(c1, records(p.ID, "c1")); diff != "" {
		t.Errorf("TriggerRecords(c1) (-want +got):\n%s", diff)
	}
	gotC2 := records(p.ID, "c2")
	if len(gotC2) == 1 {
		if gotC2[0].CreatedAt.IsZero() {
			t.Errorf("TriggerRecords(c2): CreatedAt is zero, want the store's time")
		}
		c2.CreatedAt = gotC2[0].CreatedAt
	}
	if diff := cmp.Diff([]bot.TriggerRecord{c2}, gotC2); diff != "" {
		t.Errorf("TriggerRecords(c2) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bot.TriggerRecord{otherC1}, records(other.ID, "c1")); diff != "" {
		t.Errorf("TriggerRecords of the other program (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bot.TriggerRecord(nil), records(p.ID, "c3"), equateEmpty); diff != "" {
		t.Errorf("TriggerRecords(c3) (-want +got):\n%s", diff)
	}
}
