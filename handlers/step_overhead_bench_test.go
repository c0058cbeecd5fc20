package handlers

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// noopConfig is a stage-only pipeline whose commands do nothing: every
// millisecond of its steps is Stagehand's own.
const noopConfig = `version: 1
build: {run: "true", artifacts: [app.txt]}
environments:
  stage:
    deploy: "true"
    tests: [{name: smoke, run: "true"}]
  production: {deploy: "true"}
pipelines:
  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {approval: true}
`

// phases adds up the time spent in each phase of the steps.
type phases struct {
	mu    sync.Mutex
	total map[string]time.Duration
	start map[string]time.Time // a claim's start, by step
}

func (p *phases) add(name string, d time.Duration) {
	p.mu.Lock()
	p.total[name] += d
	p.mu.Unlock()
}

func (p *phases) count(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.total[name])
}

func (p *phases) timed(name string, f func() error) error {
	t0 := time.Now()
	err := f()
	p.add(name, time.Since(t0))
	return err
}

func stepKey(c bot.Claim) string {
	return fmt.Sprintf("%d/%s/%d", c.Execution.ID, c.Step.Name, c.Step.Attempt)
}

// timedEngine times the claim and the finish (which advances the
// execution and publishes the next job in the same call); a step's whole
// time runs from its claim's start to its finish's end.
type timedEngine struct {
	worker.StepEngine
	p *phases
}

func (e timedEngine) ClaimStep(ctx context.Context, j bot.Job) (bot.Claim, error) {
	t0 := time.Now()
	c, err := e.StepEngine.ClaimStep(ctx, j)
	e.p.add("claim", time.Since(t0))
	if err == nil {
		e.p.mu.Lock()
		e.p.start[stepKey(c)] = t0
		e.p.mu.Unlock()
	}
	return c, err
}

func (e timedEngine) FinishStep(ctx context.Context, c bot.Claim, o bot.Outcome) error {
	err := e.p.timed("finish", func() error { return e.StepEngine.FinishStep(ctx, c, o) })
	e.p.mu.Lock()
	e.p.total["step"] += time.Since(e.p.start[stepKey(c)])
	e.p.total["steps"]++
	e.p.mu.Unlock()
	return err
}

type timedGit struct {
	worker.Git
	p *phases
}

// Checkout is timed as a whole (checkout) and apart for the build, the
// first step to check out an execution's commit (checkout-build), which
// the kept checkouts do not have yet.
func (g timedGit) Checkout(ctx context.Context, prog bot.Program, commit, dir string) error {
	t0 := time.Now()
	err := g.Git.Checkout(ctx, prog, commit, dir)
	d := time.Since(t0)
	g.p.add("checkout", d)
	if strings.Contains(filepath.Base(filepath.Dir(dir)), "-"+string(bot.StepBuild)+"-") {
		g.p.add("checkout-build", d)
	}
	return err
}

type timedArtifacts struct {
	worker.ArtifactStore
	p *phases
}

func (a timedArtifacts) Collect(ctx context.Context, dir string, globs []string) (set bot.ArtifactSet, err error) {
	err = a.p.timed("artifacts", func() error { set, err = a.ArtifactStore.Collect(ctx, dir, globs); return err })
	return set, err
}

func (a timedArtifacts) Verify(ctx context.Context, digest string) (set bot.ArtifactSet, err error) {
	err = a.p.timed("artifacts", func() error { set, err = a.ArtifactStore.Verify(ctx, digest); return err })
	return set, err
}

func (a timedArtifacts) Materialize(ctx context.Context, digest, dir string) error {
	return a.p.timed("artifacts", func() error { return a.ArtifactStore.Materialize(ctx, digest, dir) })
}

// BenchmarkStepOverhead is what Stagehand adds around a step's command:
// each iteration commits to a real local repository, handles its push and
// runs the stage-only execution (build, deploy to stage, one stage test,
// each command `true`) through the real engine, SQLite store, step worker,
// git checkout and artifact store, with and without the bubblewrap
// sandbox, checking out afresh for every step or from the kept checkouts
// (runner.CheckoutCache). ns/op is one execution, from the push handler's start to the
// last step's finish; the ms/step metrics split the steps' time:
//
//   - claim: ClaimStep's transaction (attempt, lease);
//   - checkout: the commit into the workspace (GitRepos.Checkout); apart,
//     checkout-build-ms/op is the build's (per execution), the first
//     checkout of the commit, and checkout-later-ms/step the deploy's and
//     the test's;
//   - artifacts: collecting the build's set, materializing it for the
//     deploy and the test;
//   - command: the rest of the step: workspace and log files, the sandbox's
//     start and `true`, removing the workspace;
//   - finish: FinishStep's transaction, which advances the execution and
//     publishes the next step's job;
//   - step: all of it, the claim's start to the finish's end.
//
// child-cpu-ms/step is the CPU time of the processes the steps started
// (git, bash, bwrap) and the push handler's `git show`. push-ms/op is the push handler (reading the configuration with `git
// show` here, the contents API in production). Jobs go straight to the
// worker (directJobs): the broker's hand-off is not in these figures.
func BenchmarkStepOverhead(b *testing.B) {
	type mode struct {
		name    string
		sandbox bool
		cache   bool // the kept checkouts (GitRepos.Cache)
	}
	for _, m := range []mode{{"none/fresh", false, false}, {"none/cached", false, true}, {"bwrap/fresh", true, false}, {"bwrap/cached", true, true}} {
		b.Run(m.name, func(b *testing.B) {
			e := &pipelineEnv{t: b, repo: newSampleRepo(b, noopConfig), dataDir: b.TempDir(), clock: &testClock{}}
			e.repo.commit("the artifact", map[string]string{"app.txt": "hello\n"})
			e.open()
			p := &phases{total: map[string]time.Duration{}, start: map[string]time.Time{}}
			e.worker.Engine = timedEngine{StepEngine: e.engine, p: p}
			e.worker.Git = timedGit{Git: e.worker.Git, p: p}
			e.worker.Artifacts = timedArtifacts{ArtifactStore: e.worker.Artifacts, p: p}
			if m.sandbox {
				e.worker.Sandbox = testSandbox(b, e.dataDir)
			}
			git := e.worker.Git.(timedGit).Git.(*worker.GitRepos)
			if !m.cache {
				git.Cache = nil
			}
			var push time.Duration
			cpu0 := childCPU()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				e.repo.commit(fmt.Sprintf("change %d", i), map[string]string{"app.txt": fmt.Sprintf("hello %d\n", i)})
				b.StartTimer()
				t0 := time.Now()
				e.push()
				push += time.Since(t0)
				for e.jobs.running.Load() > 0 || p.count("steps") < 3*(i+1) {
					time.Sleep(200 * time.Microsecond)
				}
				b.StopTimer()
				if ex, steps := e.execution(i + 1); ex.State != bot.ExecutionSucceeded {
					b.Fatalf("execution #%d is %s (%s): %s", i+1, ex.State, ex.Message, describeSteps(steps))
				}
				b.StartTimer()
			}
			b.StopTimer()
			children := childCPU() - cpu0
			steps := float64(p.total["steps"])
			if steps != float64(3*b.N) {
				b.Fatalf("%v steps ran in %d executions, want 3 each", steps, b.N)
			}
			perStep := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / steps }
			known := p.total["claim"] + p.total["checkout"] + p.total["artifacts"] + p.total["finish"]
			for _, name := range []string{"claim", "checkout", "artifacts", "finish", "step"} {
				b.ReportMetric(perStep(p.total[name]), name+"-ms/step")
			}
			b.ReportMetric(perStep(p.total["step"]-known), "command-ms/step")
			b.ReportMetric(float64(p.total["checkout-build"].Microseconds())/1000/float64(b.N), "checkout-build-ms/op")
			b.ReportMetric(float64((p.total["checkout"]-p.total["checkout-build"]).Microseconds())/1000/float64(2*b.N), "checkout-later-ms/step")
			b.ReportMetric(float64(push.Microseconds())/1000/float64(b.N), "push-ms/op")
			b.ReportMetric(perStep(children), "child-cpu-ms/step")
		})
	}
}

// childCPU is the CPU time (user and system) of the child processes that
// have ended: git, bash, bwrap. The benchmark's own CPU is in its profile.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
