package worker

import (
	"context"
	"fmt"
	"io"

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
