package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/stagehand-dev/stagehand/bot"
)

// stepWork is what a step worker runs for one kind of step a worker
// claims (bot.StepKinds, Worker set). Adding such a step kind is adding
// its entry in bot.StepKinds and here.
type stepWork struct {
	// local runs the step in this process, in workspace ws, writing its
	// log to log.
	local func(w *StepWorker, ctx context.Context, c bot.Claim, ws string, log io.Writer) bot.Outcome
	// remote, when set, runs the step on a worker of the worker role
	// when there are such workers (--step-runner remote): it fills in the
	// commands of work and returns how the worker's result reads, or the
	// outcome at once when there is nothing to run (done set).
	remote func(c bot.Claim, work *StepWork) (read func(WorkResult) bot.Outcome, done *bot.Outcome)
}

// stepWorks are the step kinds' work, by name.
var stepWorks = map[bot.StepName]stepWork{
	bot.StepBuild:               {local: (*StepWorker).build, remote: remoteBuild},
	bot.StepDeployStage:         {local: (*StepWorker).deploy, remote: remoteDeploy},
	bot.StepStageTests:          {local: (*StepWorker).tests, remote: remoteTests},
	bot.StepDeployProduction:    {local: (*StepWorker).deploy, remote: remoteDeploy},
	bot.StepArtifactPreparation: {local: (*StepWorker).prepare},
	bot.StepApproval:            {local: (*StepWorker).rollbackCheck},
}

// work runs the claimed step here or on a worker of the worker role.
func (w *StepWorker) work(ctx context.Context, c bot.Claim, ws string, log io.Writer) bot.Outcome {
	sw, ok := stepWorks[c.Step.Name]
	switch {
	case !ok:
		return failed("step %s has no worker", c.Step.Name)
	case w.Remote != nil && sw.remote != nil:
		return w.remote(ctx, c, sw, log)
	}
	return sw.local(w, ctx, c, ws, log)
}

func remoteBuild(c bot.Claim, work *StepWork) (func(WorkResult) bot.Outcome, *bot.Outcome) {
	b := c.Config.Build
	if b == nil {
		return nil, outcome(failed("the configuration has no build section"))
	}
	work.Commands = []WorkCommand{{Run: b.Run, Timeout: b.Timeout}}
	work.Collect, work.Globs = true, b.Artifacts
	return func(r WorkResult) bot.Outcome {
		if !r.Succeeded {
			return failed("%s", r.Error)
		}
		return bot.Outcome{Succeeded: true, ArtifactDigest: r.ArtifactDigest, Message: fmt.Sprintf("built artifact set %s (%s)", bot.ShortDigest(r.ArtifactDigest), bot.FileCount(r.Files))}
	}, nil
}

func remoteDeploy(c bot.Claim, work *StepWork) (func(WorkResult) bot.Outcome, *bot.Outcome) {
	envName := c.Environment()
	ec := c.Config.Environment(envName)
	if ec == nil {
		return nil, outcome(failed("the configuration has no environments.%s", envName))
	}
	work.Commands = []WorkCommand{{Run: ec.Deploy, Timeout: ec.DeployTimeout}}
	if o := materialize(c, work); o != nil {
		return nil, o
	}
	return func(r WorkResult) bot.Outcome {
		switch {
		case !r.Succeeded && r.Command < 0:
			return failed("%s", r.Error)
		case !r.Succeeded:
			return failed("deploy to %s: %s", envName, r.Error)
		}
		return bot.Outcome{Succeeded: true, Message: fmt.Sprintf("deployed %s (artifact set %s) to %s", bot.ShortSHA(c.Execution.Commit), bot.ShortDigest(c.Execution.ArtifactDigest), envName)}
	}, nil
}

func remoteTests(c bot.Claim, work *StepWork) (func(WorkResult) bot.Outcome, *bot.Outcome) {
	ec := c.Config.Stage
	if ec == nil || len(ec.Tests) == 0 {
		return nil, &bot.Outcome{Succeeded: true, Message: "no stage tests configured"}
	}
	for _, t := range ec.Tests {
		work.Commands = append(work.Commands, WorkCommand{Title: "== test " + t.Name, Run: t.Run, Timeout: t.Timeout})
	}
	if o := materialize(c, work); o != nil {
		return nil, o
	}
	return func(r WorkResult) bot.Outcome {
		switch {
		case !r.Succeeded && (r.Command < 0 || r.Command >= len(ec.Tests)):
			return failed("%s", r.Error)
		case !r.Succeeded:
			return failed("test %s failed: %s", ec.Tests[r.Command].Name, r.Error)
		}
		return bot.Outcome{Succeeded: true, Message: fmt.Sprintf("%d stage test(s) passed", len(ec.Tests))}
	}, nil
}

// materialize asks the worker for the execution's artifact set in
// $STAGEHAND_ARTIFACTS; it is the failed outcome when there is none.
func materialize(c bot.Claim, work *StepWork) *bot.Outcome {
	if c.Execution.ArtifactDigest == "" {
		return outcome(failed("the execution has no artifact set"))
	}
	work.Materialize = c.Execution.ArtifactDigest
	return nil
}

func outcome(o bot.Outcome) *bot.Outcome { return &o }

func (w *StepWorker) build(ctx context.Context, c bot.Claim, ws string, log io.Writer) bot.Outcome {
	b := c.Config.Build
	if b == nil {
		return failed("the configuration has no build section")
	}
	if err := w.checkout(ctx, c, ws, log); err != nil {
		return failed("%v", err)
	}
	fmt.Fprintf(log, "$ %s\n", b.Run)
	if err := w.command(ctx, c, ws, b.Run, b.Timeout, log, ""); err != nil {
		return failed("%v", err)
	}
	set, err := w.Artifacts.Collect(ctx, filepath.Join(ws, "src"), b.Artifacts)
	if err != nil {
		fmt.Fprintf(log, "collecting artifacts failed: %v\n", err)
		return failed("%v", err)
	}
	logArtifactSet(log, set)
	return bot.Outcome{Succeeded: true, ArtifactDigest: set.Digest, Message: fmt.Sprintf("built artifact set %s (%s)", bot.ShortDigest(set.Digest), bot.FileCount(len(set.Files)))}
}

// logArtifactSet lists a collected set in the step log.
func logArtifactSet(log io.Writer, set bot.ArtifactSet) {
	fmt.Fprintf(log, "artifact set %s: %s, %d bytes\n", set.Digest, bot.FileCount(len(set.Files)), set.Size())
	for _, f := range set.Files {
		fmt.Fprintf(log, "  %s  %8d  %s\n", f.SHA256[:12], f.Size, f.Path)
	}
}

// prepareEnv checks out the commit and materializes the artifact set.
func (w *StepWorker) prepareEnv(ctx context.Context, c bot.Claim, ws string, log io.Writer) (string, error) {
	if c.Execution.ArtifactDigest == "" {
		return "", errors.New("the execution has no artifact set")
	}
	if err := w.checkout(ctx, c, ws, log); err != nil {
		return "", err
	}
	dir := filepath.Join(ws, "artifacts")
	if err := w.Artifacts.Materialize(ctx, c.Execution.ArtifactDigest, dir); err != nil {
		fmt.Fprintf(log, "materializing artifacts failed: %v\n", err)
		return "", fmt.Errorf("artifact set %s: %w", bot.ShortDigest(c.Execution.ArtifactDigest), err)
	}
	fmt.Fprintf(log, "artifact set %s in $STAGEHAND_ARTIFACTS\n", c.Execution.ArtifactDigest)
	return dir, nil
}

func (w *StepWorker) deploy(ctx context.Context, c bot.Claim, ws string, log io.Writer) bot.Outcome {
	envName := c.Environment()
	ec := c.Config.Environment(envName)
	if ec == nil {
		return failed("the configuration has no environments.%s", envName)
	}
	dir, err := w.prepareEnv(ctx, c, ws, log)
	if err != nil {
		return failed("%v", err)
	}
	fmt.Fprintf(log, "$ %s\n", ec.Deploy)
	if err := w.command(ctx, c, ws, ec.Deploy, ec.DeployTimeout, log, dir); err != nil {
		return failed("deploy to %s: %v", envName, err)
	}
	return bot.Outcome{Succeeded: true, Message: fmt.Sprintf("deployed %s (artifact set %s) to %s", bot.ShortSHA(c.Execution.Commit), bot.ShortDigest(c.Execution.ArtifactDigest), envName)}
}

func (w *StepWorker) tests(ctx context.Context, c bot.Claim, ws string, log io.Writer) bot.Outcome {
	ec := c.Config.Stage
	if ec == nil || len(ec.Tests) == 0 {
		return bot.Outcome{Succeeded: true, Message: "no stage tests configured"}
	}
	dir, err := w.prepareEnv(ctx, c, ws, log)
	if err != nil {
		return failed("%v", err)
	}
	for _, t := range ec.Tests {
		fmt.Fprintf(log, "== test %s\n$ %s\n", t.Name, t.Run)
		if err := w.command(ctx, c, ws, t.Run, t.Timeout, log, dir); err != nil {
			return failed("test %s failed: %v", t.Name, err)
		}
	}
	return bot.Outcome{Succeeded: true, Message: fmt.Sprintf("%d stage test(s) passed", len(ec.Tests))}
}

// prepare is artifact-preparation: it names the source execution and
// re-verifies every file of its artifact set (rule F).
func (w *StepWorker) prepare(ctx context.Context, c bot.Claim, _ string, log io.Writer) bot.Outcome {
	src := c.Source
	if src == nil {
		return failed("this prod-only execution has no source stage-only execution")
	}
	fmt.Fprintf(log, "source: %s at %s, artifact set %s\n", src, src.Commit, src.ArtifactDigest)
	set, err := w.Artifacts.Verify(ctx, src.ArtifactDigest)
	if err != nil {
		fmt.Fprintf(log, "verification failed: %v\n", err)
		return failed("the artifact set %s of %s failed verification: %v", bot.ShortDigest(src.ArtifactDigest), src, err)
	}
	fmt.Fprintf(log, "verified %s, %d bytes\n", bot.FileCount(len(set.Files)), set.Size())
	return bot.Outcome{Succeeded: true, ArtifactDigest: src.ArtifactDigest,
		Message: fmt.Sprintf("source %s (%s), artifact set %s: %s verified", src, bot.ShortSHA(src.Commit), bot.ShortDigest(src.ArtifactDigest), bot.FileCount(len(set.Files)))}
}

// rollbackCheck runs before the approval gate (rule G): it asks git
// whether production's commit is an ancestor of the candidate.
func (w *StepWorker) rollbackCheck(ctx context.Context, c bot.Claim, _ string, log io.Writer) bot.Outcome {
	prod, ex := c.Production, c.Execution
	if prod == nil || prod.Commit == ex.Commit {
		return bot.Outcome{Succeeded: true}
	}
	ok, err := w.Git.IsAncestor(ctx, c.Program, prod.Commit, ex.Commit)
	if err != nil {
		fmt.Fprintf(log, "rollback check failed: %v\n", err)
		return failed("checking whether %s descends from production's %s: %v", bot.ShortSHA(ex.Commit), bot.ShortSHA(prod.Commit), err)
	}
	if ok {
		return bot.Outcome{Succeeded: true}
	}
	candidate := ex
	if c.Source != nil {
		candidate = *c.Source
	}
	note := fmt.Sprintf("would roll production back from %s (%s #%d) to %s (%s)",
		bot.ShortSHA(prod.Commit), prod.Pipeline, prod.Number, bot.ShortSHA(ex.Commit), candidate)
	fmt.Fprintln(log, note)
	return bot.Outcome{Succeeded: true, Rollback: note}
}
