package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/runner"
)

// fakeDispatcher records the work it is given and answers with result.
type fakeDispatcher struct {
	got    []StepWork
	log    string // written to the step log
	result WorkResult
	err    error
}

func (f *fakeDispatcher) Dispatch(_ context.Context, work StepWork, log io.Writer) (WorkResult, error) {
	f.got = append(f.got, work)
	fmt.Fprint(log, f.log)
	return f.result, f.err
}

// TestRemoteStepWork: with a StepDispatcher, build, deploy and test steps
// go to a worker with the step's scripts, its SPEC §3 environment and a
// checkout token for the program's repository only, and the worker's result
// becomes the step's outcome with the same words as a step run in process.
func TestRemoteStepWork(t *testing.T) {
	const commit = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	cfg := &bot.Config{
		Build: &bot.Build{Run: "make", Artifacts: []string{"dist/**"}, Timeout: time.Minute},
		Stage: &bot.Environment{Deploy: "./deploy.sh stage", DeployTimeout: 2 * time.Minute, URL: "https://stage.example.com",
			Tests: []bot.Test{{Name: "smoke", Run: "./smoke.sh", Timeout: time.Second}, {Name: "e2e", Run: "./e2e.sh", Timeout: time.Second}}},
	}
	claim := func(step bot.StepName) bot.Claim {
		return bot.Claim{
			Program:   bot.Program{Owner: "octo", Repo: "app", InstallationID: 7, GitHubID: 99},
			Execution: bot.Execution{ID: 12, Number: 3, Pipeline: bot.StageOnly, Commit: commit, Branch: "main", ArtifactDigest: "sha256-set"},
			Step:      bot.Step{Name: step, Attempt: 2}, Config: cfg, Variables: map[string]string{"GREETING": "hi"},
		}
	}
	stageEnv := map[string]string{
		"STAGEHAND_REPOSITORY": "octo/app", "STAGEHAND_PIPELINE": "stage-only", "STAGEHAND_EXECUTION": "3",
		"STAGEHAND_COMMIT": commit, "STAGEHAND_BRANCH": "main", "STAGEHAND_ENVIRONMENT": "stage",
		"STAGEHAND_ENVIRONMENT_URL": "https://stage.example.com", "GREETING": "hi",
	}
	checkout := runner.CheckoutSpec{GitURL: "https://github.example/", Owner: "octo", Repo: "app", Commit: commit, Token: "token-for-99"}
	tests := []struct {
		name     string
		step     bot.StepName
		result   WorkResult
		err      error
		wantWork StepWork
		want     bot.Outcome
	}{
		{
			name: "build", step: bot.StepBuild,
			result: WorkResult{Succeeded: true, Command: -1, ArtifactDigest: "sha256-0123456789abcdef", Files: 2},
			wantWork: StepWork{ExecutionID: 12, Step: bot.StepBuild, Attempt: 2, Checkout: checkout,
				Commands: []WorkCommand{{Run: "make", Timeout: time.Minute}}, Collect: true, Globs: []string{"dist/**"},
				Env: map[string]string{"STAGEHAND_REPOSITORY": "octo/app", "STAGEHAND_PIPELINE": "stage-only", "STAGEHAND_EXECUTION": "3", "STAGEHAND_COMMIT": commit, "STAGEHAND_BRANCH": "main"}},
			want: bot.Outcome{Succeeded: true, ArtifactDigest: "sha256-0123456789abcdef", Message: "built artifact set sha256-01234 (2 files)", LogTail: "from the worker\n"},
		},
		{
			name: "deploy fails in its command", step: bot.StepDeployStage,
			result: WorkResult{Error: `"./deploy.sh stage" exited with status 1`, Command: 0},
			wantWork: StepWork{ExecutionID: 12, Step: bot.StepDeployStage, Attempt: 2, Checkout: checkout, Materialize: "sha256-set",
				Commands: []WorkCommand{{Run: "./deploy.sh stage", Timeout: 2 * time.Minute}}, Env: stageEnv},
			want: bot.Outcome{Message: `deploy to stage: "./deploy.sh stage" exited with status 1`, LogTail: "from the worker\n"},
		},
		{
			name: "the second test fails", step: bot.StepStageTests,
			result: WorkResult{Error: `"./e2e.sh" exited with status 2`, Command: 1},
			wantWork: StepWork{ExecutionID: 12, Step: bot.StepStageTests, Attempt: 2, Checkout: checkout, Materialize: "sha256-set",
				Commands: []WorkCommand{{Title: "== test smoke", Run: "./smoke.sh", Timeout: time.Second}, {Title: "== test e2e", Run: "./e2e.sh", Timeout: time.Second}}, Env: stageEnv},
			want: bot.Outcome{Message: `test e2e failed: "./e2e.sh" exited with status 2`, LogTail: "from the worker\n"},
		},
		{
			name: "no worker: tried again", step: bot.StepBuild, err: errors.New("no worker took the step within 30s"),
			wantWork: StepWork{ExecutionID: 12, Step: bot.StepBuild, Attempt: 2, Checkout: checkout,
				Commands: []WorkCommand{{Run: "make", Timeout: time.Minute}}, Collect: true, Globs: []string{"dist/**"},
				Env: map[string]string{"STAGEHAND_REPOSITORY": "octo/app", "STAGEHAND_PIPELINE": "stage-only", "STAGEHAND_EXECUTION": "3", "STAGEHAND_COMMIT": commit, "STAGEHAND_BRANCH": "main"}},
			want: bot.Outcome{Message: "no worker took the step within 30s", Retry: true, LogTail: "from the worker\nthe step's worker: no worker took the step within 30s\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDispatcher{log: "from the worker\n", result: tt.result, err: tt.err}
			var tokens []githubapp.Repository
			git := &GitRepos{BaseURL: "https://github.example/", Token: func(_ context.Context, inst int64, repo githubapp.Repository) (string, error) {
				tokens = append(tokens, repo)
				return fmt.Sprintf("token-for-%d", repo.ID), nil
			}}
			w := &StepWorker{Remote: d, Specs: git, DataDir: t.TempDir()}
			got := w.execute(t.Context(), claim(tt.step))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]StepWork{tt.wantWork}, d.got); diff != "" {
				t.Errorf("work sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]githubapp.Repository{{ID: 99, Name: "app"}}, tokens); diff != "" {
				t.Errorf("tokens asked for (-want +got):\n%s", diff)
			}
		})
	}
}
