package worker

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/runner"
)

// StepWork is a step's commands as a worker of the worker role (`stagehand
// worker`) receives them: everything it needs to check out one commit, run
// the scripts and collect or fetch the artifact set, and nothing of the
// server's: no App key, no webhook secret, no database. The token in
// Checkout is a short-lived installation token that may read that one
// repository's contents.
type StepWork struct {
	ExecutionID int64        `json:"execution_id"`
	Step        bot.StepName `json:"step"`
	Attempt     int          `json:"attempt"`
	// Checkout names the commit; its Dir is the worker's to choose.
	Checkout runner.CheckoutSpec `json:"checkout"`
	Commands []WorkCommand       `json:"commands"`
	// Env is the step's environment (SPEC §3) but STAGEHAND_ARTIFACTS,
	// which the worker sets to where it put Materialize.
	Env map[string]string `json:"env"`
	// Materialize is the artifact set to place in $STAGEHAND_ARTIFACTS
	// (deploy and test steps). A build has Collect set and keeps the files
	// matching Globs as its artifact set.
	Materialize string   `json:"materialize,omitempty"`
	Collect     bool     `json:"collect,omitempty"`
	Globs       []string `json:"globs,omitempty"`
}

// WorkCommand is one script of a step.
type WorkCommand struct {
	Title   string        `json:"title,omitempty"` // a line for the log before the script, e.g. "== test smoke"
	Run     string        `json:"run"`
	Timeout time.Duration `json:"timeout"`
}

// WorkResult is how a StepWork ended on its worker.
type WorkResult struct {
	Succeeded bool `json:"succeeded"`
	// Error says what failed; Command is the index of the command that
	// failed, -1 when it was the checkout or the artifact set.
	Error   string `json:"error,omitempty"`
	Command int    `json:"command"`
	// ArtifactDigest and Files: the set a build collected.
	ArtifactDigest string `json:"artifact_digest,omitempty"`
	Files          int    `json:"files,omitempty"`
	// Retry: the worker was stopped before the commands could finish.
	Retry bool `json:"retry,omitempty"`
}

// StepDispatcher hands a step's work to a worker of the worker role and
// waits for its result, writing the step's log to log as it arrives. Its
// error means no worker ran the work to its end (none took it, or the one
// that did went silent).
type StepDispatcher interface {
	Dispatch(ctx context.Context, work StepWork, log io.Writer) (WorkResult, error)
}

// CheckoutSpecs names a program's commit with a fresh checkout token
// (GitRepos.CheckoutSpec).
type CheckoutSpecs interface {
	CheckoutSpec(ctx context.Context, prog bot.Program, commit string) (runner.CheckoutSpec, error)
}

// CheckoutSpec names commit of prog with a token that may read that one
// repository's contents, for a worker to check out.
func (g *GitRepos) CheckoutSpec(ctx context.Context, prog bot.Program, commit string) (runner.CheckoutSpec, error) {
	s, err := g.spec(ctx, prog, "")
	s.Commit = commit
	return s, err
}

// remote runs a step on a worker of the worker role: the server keeps the
// claim and its lease; the worker gets the scripts, the environment and a
// checkout token for this one repository.
func (w *StepWorker) remote(ctx context.Context, c bot.Claim, sw stepWork, log io.Writer) bot.Outcome {
	work := StepWork{ExecutionID: c.Execution.ID, Step: c.Step.Name, Attempt: c.Step.Attempt, Env: stepEnv(c, "")}
	delete(work.Env, "STAGEHAND_ARTIFACTS")
	read, done := sw.remote(c, &work)
	if done != nil {
		return *done
	}
	spec, err := w.Specs.CheckoutSpec(ctx, c.Program, c.Execution.Commit)
	if err != nil {
		fmt.Fprintf(log, "checkout failed: %v\n", err)
		return failed("checking out %s: %v", bot.ShortSHA(c.Execution.Commit), err)
	}
	work.Checkout = spec
	r, err := w.Remote.Dispatch(ctx, work, log)
	switch {
	case err != nil:
		fmt.Fprintf(log, "the step's worker: %v\n", err)
		return bot.Outcome{Message: err.Error(), Retry: true}
	case r.Retry:
		return bot.Outcome{Message: "the worker stopped before the step's commands finished: " + r.Error, Retry: true}
	}
	return read(r)
}

// WorkRunner runs StepWork on a worker: a fresh workspace under DataDir,
// the checkout with the work's token, the artifact set, each command in
// the sandbox.
type WorkRunner struct {
	Artifacts ArtifactStore
	DataDir   string // workspaces/ live here
	Path      string // PATH for commands
	Sandbox   *runner.Sandbox
	// Checkouts, when set, keeps recent checkouts for the next step of the
	// same commit (GitRepos.Cache); its Dir lies under DataDir.
	Checkouts *runner.CheckoutCache
}

// Run runs work to its end and says how it went; log gets the step's log.
func (r *WorkRunner) Run(ctx context.Context, work StepWork, log io.Writer) WorkResult {
	fail := func(format string, args ...any) WorkResult {
		msg := fmt.Sprintf(format, args...)
		return WorkResult{Error: msg, Command: -1, Retry: ctx.Err() != nil}
	}
	ws, err := filepath.Abs(filepath.Join(r.DataDir, "workspaces", fmt.Sprintf("%d-%s-%d", work.ExecutionID, work.Step, work.Attempt)))
	if err != nil {
		return fail("locating the workspace: %v", err)
	}
	defer os.RemoveAll(ws)
	home := filepath.Join(ws, "home")
	if err := os.MkdirAll(home, 0o750); err != nil {
		return fail("creating the workspace: %v", err)
	}
	src := filepath.Join(ws, "src")
	spec := work.Checkout
	spec.Dir = src
	fmt.Fprintf(log, "$ checkout %s/%s at %s\n", spec.Owner, spec.Repo, spec.Commit)
	if err := checkout(ctx, r.Checkouts, spec); err != nil {
		fmt.Fprintf(log, "checkout failed: %v\n", err)
		return fail("checking out %s: %v", bot.ShortSHA(spec.Commit), err)
	}
	env := make(map[string]string, len(work.Env)+1)
	for k, v := range work.Env {
		env[k] = v
	}
	if work.Materialize != "" {
		dir := filepath.Join(ws, "artifacts")
		if err := r.Artifacts.Materialize(ctx, work.Materialize, dir); err != nil {
			fmt.Fprintf(log, "materializing artifacts failed: %v\n", err)
			return fail("artifact set %s: %v", bot.ShortDigest(work.Materialize), err)
		}
		fmt.Fprintf(log, "artifact set %s in $STAGEHAND_ARTIFACTS\n", work.Materialize)
		env["STAGEHAND_ARTIFACTS"] = dir
	}
	for i, cmd := range work.Commands {
		if cmd.Title != "" {
			fmt.Fprintln(log, cmd.Title)
		}
		fmt.Fprintf(log, "$ %s\n", cmd.Run)
		res, err := runner.Run(ctx, runner.Command{
			Script: cmd.Run, Dir: src, Env: env, Path: r.Path, Home: home, Timeout: cmd.Timeout, Log: log,
			Sandbox: r.Sandbox, Writable: []string{ws}, Nice: runner.StepNice,
		})
		if err := commandError(cmd.Run, cmd.Timeout, res, err); err != nil {
			return WorkResult{Error: err.Error(), Command: i, Retry: ctx.Err() != nil}
		}
	}
	if !work.Collect {
		return WorkResult{Succeeded: true, Command: -1}
	}
	set, err := r.Artifacts.Collect(ctx, src, work.Globs)
	if err != nil {
		fmt.Fprintf(log, "collecting artifacts failed: %v\n", err)
		return fail("%v", err)
	}
	logArtifactSet(log, set)
	return WorkResult{Succeeded: true, Command: -1, ArtifactDigest: set.Digest, Files: len(set.Files)}
}
