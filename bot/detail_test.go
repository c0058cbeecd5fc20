package bot_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// detailStore is a hand-written DetailReader over fixed values.
type detailStore struct {
	prog       bot.Program
	executions map[int64]bot.Execution
	steps      []bot.Step
	events     []bot.Event
	fail       error // returned by Events
}

func (f detailStore) Program(_ context.Context, id int64) (bot.Program, error) {
	if id != f.prog.ID {
		return bot.Program{}, bot.ErrNotFound
	}
	return f.prog, nil
}

func (f detailStore) Execution(_ context.Context, id int64) (bot.Execution, error) {
	ex, ok := f.executions[id]
	if !ok {
		return ex, bot.ErrNotFound
	}
	return ex, nil
}

func (f detailStore) Steps(context.Context, int64) ([]bot.Step, error) { return f.steps, nil }

func (f detailStore) Events(context.Context, int64) ([]bot.Event, error) { return f.events, f.fail }

func TestLoadExecutionDetail(t *testing.T) {
	ctx := context.Background()
	prog := bot.Program{ID: 7, Owner: "acme", Repo: "app"}
	src := bot.Execution{ID: 1, ProgramID: 7, Number: 1, Pipeline: bot.StageOnly}
	ex := bot.Execution{ID: 2, ProgramID: 7, Number: 2, Pipeline: bot.ProdOnly, SourceID: 1}
	f := detailStore{
		prog:       prog,
		executions: map[int64]bot.Execution{1: src, 2: ex},
		steps:      []bot.Step{{ExecutionID: 2, Name: bot.StepArtifactPreparation}, {ExecutionID: 2, Name: bot.StepApproval}},
		events:     []bot.Event{{ExecutionID: 2, Actor: "alice", Detail: "from stage-only #1"}},
	}
	got, err := bot.LoadExecutionDetail(ctx, f, ex)
	if err != nil {
		t.Fatal(err)
	}
	want := bot.ExecutionDetail{Program: prog, Execution: ex, Steps: f.steps, Events: f.events, Source: &src}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("detail (-want +got):\n%s", diff)
	}
	if err := got.NeedSource(); err != nil {
		t.Errorf("NeedSource() = %v with the source read", err)
	}
	if s, err := got.Step(bot.StepApproval); err != nil || s.Name != bot.StepApproval {
		t.Errorf("Step(approval) = %+v, %v", s, err)
	}
	if _, err := got.Step(bot.StepBuild); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Step(build) = %v, want ErrNotFound", err)
	}

	// A source that is gone leaves Source nil; NeedSource says so.
	delete(f.executions, 1)
	got, err = bot.LoadExecutionDetail(ctx, f, ex)
	if err != nil || got.Source != nil {
		t.Fatalf("without its source: %+v, %v; want no source, no error", got.Source, err)
	}
	if err := got.NeedSource(); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("NeedSource() = %v, want ErrNotFound", err)
	}

	// Any other failure is the load's.
	f.fail = errors.New("disk on fire")
	if _, err := bot.LoadExecutionDetail(ctx, f, ex); !errors.Is(err, f.fail) {
		t.Errorf("LoadExecutionDetail() = %v, want the store's error", err)
	}
}

func TestExecutionURL(t *testing.T) {
	p := bot.Program{Owner: "acme", Repo: "app"}
	for _, base := range []string{"https://stagehand.example", "https://stagehand.example/"} {
		if got, want := bot.ExecutionURL(base, p, 4), "https://stagehand.example/programs/acme/app/executions/4"; got != want {
			t.Errorf("ExecutionURL(%q) = %q, want %q", base, got, want)
		}
	}
	if got, want := bot.ProgramURL("https://stagehand.example/", p), "https://stagehand.example/programs/acme/app"; got != want {
		t.Errorf("ProgramURL() = %q, want %q", got, want)
	}
	if got, want := bot.ExecutionPath(p, 12), "/programs/acme/app/executions/12"; got != want {
		t.Errorf("ExecutionPath() = %q, want %q", got, want)
	}
	if got, want := bot.ProgramPath(bot.Program{Owner: "a b", Repo: "c/d"}), "/programs/a%20b/c%2Fd"; got != want {
		t.Errorf("ProgramPath() = %q, want %q", got, want)
	}
}
