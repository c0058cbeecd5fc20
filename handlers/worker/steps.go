package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/runner"
)

// StepEngine is what a step worker needs of the engine.
type StepEngine interface {
	ClaimStep(ctx context.Context, j bot.Job) (bot.Claim, error)
	Heartbeat(ctx context.Context, c bot.Claim) error
	FinishStep(ctx context.Context, c bot.Claim, o bot.Outcome) error
}

// Git fetches a program's commits.
type Git interface {
	// Checkout puts exactly commit into dir.
	Checkout(ctx context.Context, prog bot.Program, commit, dir string) error
	// IsAncestor reports whether ancestor is an ancestor of descendant.
	IsAncestor(ctx context.Context, prog bot.Program, ancestor, descendant string) (bool, error)
}

// ArtifactStore keeps artifact sets by digest.
type ArtifactStore interface {
	// Collect stores the files under dir matching globs; its error names
	// every glob that matched nothing.
	Collect(ctx context.Context, dir string, globs []string) (bot.ArtifactSet, error)
	// Verify re-hashes every file of a set; the error names what is
	// missing or altered.
	Verify(ctx context.Context, digest string) (bot.ArtifactSet, error)
	// Materialize writes a set's files under dir at their paths.
	Materialize(ctx context.Context, digest, dir string) error
}

// ErrWorkerStopped is Start's answer once Shutdown has begun; the job's
// step is taken over by the reconcile loop of a running worker.
var ErrWorkerStopped = errors.New("the step worker is shutting down")

// StepWorker runs the steps of executions: it claims a step from a job,
// runs its commands in a fresh workspace with a heartbeat, and reports
// the outcome. Commands run in their own goroutines (at most Concurrency at
// once), so a job's message is acknowledged as soon as the step is claimed;
// the claim's lease, not the message, keeps the work safe.
type StepWorker struct {
	Engine    StepEngine
	Git       Git
	Artifacts ArtifactStore
	DataDir   string // workspaces/ and logs/ live here
	Path      string // PATH for commands
	// Sandbox confines every command to its workspace (runner.Sandbox);
	// nil runs them as the server's user, beside its files
	// (--step-sandbox none), with a warning on every step.
	Sandbox *runner.Sandbox
	// Secrets gives deploys and tests the secrets their environment
	// declares (SPEC §7); nil: no secret source, a declared secret is
	// missing.
	Secrets SecretSource
	Logger  *slog.Logger
	// Heartbeat is how often a running step renews its lease and checks
	// for cancellation (default 500ms).
	Heartbeat   time.Duration
	Concurrency int // default 8
	// Remote, when set, runs the build, deploy and test steps on workers of
	// the worker role (serve --step-runner remote) instead of in this
	// process; Specs gives their checkout tokens.
	Remote StepDispatcher
	Specs  CheckoutSpecs

	once    sync.Once
	mu      sync.Mutex // orders Start's wg.Add before Shutdown's wait
	slots   chan struct{}
	wg      sync.WaitGroup
	stopCtx context.Context
	stop    context.CancelFunc
}

func (w *StepWorker) init() {
	w.once.Do(func() {
		if w.Heartbeat == 0 {
			w.Heartbeat = 500 * time.Millisecond
		}
		if w.Concurrency == 0 {
			w.Concurrency = 8
		}
		w.slots = make(chan struct{}, w.Concurrency)
		w.stopCtx, w.stop = context.WithCancel(context.Background())
	})
}

// Handle is the router's handler for step jobs.
func (w *StepWorker) Handle(msg *message.Message) error {
	var j bot.Job
	if err := json.Unmarshal(msg.Payload, &j); err != nil {
		return bot.PermanentError{Err: fmt.Errorf("decoding a step job: %w", err)}
	}
	return w.Start(msg.Context(), j)
}

// Start claims the job's step and runs it in the background. It returns
// once the claim is recorded (or there is nothing to do).
func (w *StepWorker) Start(ctx context.Context, j bot.Job) error {
	w.init()
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.stopCtx.Done():
		return ErrWorkerStopped
	}
	w.mu.Lock()
	if w.stopCtx.Err() != nil {
		w.mu.Unlock()
		<-w.slots
		return ErrWorkerStopped
	}
	w.wg.Add(1) // Shutdown waits for the claim too
	w.mu.Unlock()
	c, err := w.Engine.ClaimStep(ctx, j)
	if err != nil {
		w.wg.Done()
		<-w.slots
		if errors.Is(err, bot.ErrStale) {
			return nil
		}
		return fmt.Errorf("claiming %s of execution %d: %w", j.Step, j.ExecutionID, err)
	}
	go func() {
		defer w.wg.Done()
		defer func() { <-w.slots }()
		w.run(c)
	}()
	return nil
}

// Run claims and runs a step to its end (tests and benchmarks).
func (w *StepWorker) Run(ctx context.Context, j bot.Job) error {
	if err := w.Start(ctx, j); err != nil {
		return err
	}
	w.wg.Wait()
	return nil
}

// Shutdown stops the commands that run (build and test steps are handed
// back to run again; an interrupted deploy is reported failed) and waits
// for their reports, until ctx ends.
func (w *StepWorker) Shutdown(ctx context.Context) error {
	w.init()
	w.mu.Lock()
	w.stop()
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("step worker shutdown: %w", ctx.Err())
	}
}

// run executes a claimed step with a heartbeat and reports its outcome.
func (w *StepWorker) run(c bot.Claim) {
	ctx := bot.WithLogAttrs(context.Background(),
		slog.String(bot.LogRepo, c.Program.FullName()), slog.String(bot.LogPipeline, string(c.Execution.Pipeline)),
		slog.Int(bot.LogExecution, c.Execution.Number), slog.String(bot.LogStep, string(c.Step.Name)))
	runCtx, cancel := context.WithCancel(w.stopCtx)
	defer cancel()
	var cancelled bool
	var mu sync.Mutex
	beatDone := Beat(runCtx, w.Heartbeat, func() bool {
		if err := w.Engine.Heartbeat(ctx, c); errors.Is(err, bot.ErrStale) {
			mu.Lock()
			cancelled = true
			mu.Unlock()
			cancel()
			return false
		} else if err != nil {
			w.Logger.WarnContext(ctx, "renewing the step's lease", bot.LogError, err)
		}
		return true
	})
	w.Logger.InfoContext(ctx, "step started", "attempt", c.Step.Attempt)
	if w.Sandbox == nil && w.Remote == nil {
		w.Logger.WarnContext(ctx, "the step runs without a sandbox (--step-sandbox none): its commands can read and change the server's files, its environment and other executions' workspaces")
	}
	o := w.execute(runCtx, c)
	cancel()
	<-beatDone
	mu.Lock()
	wasCancelled := cancelled
	mu.Unlock()
	if wasCancelled {
		w.Logger.InfoContext(ctx, "step stopped: the execution was cancelled")
		return
	}
	if w.stopCtx.Err() != nil && !o.Succeeded {
		if bot.KindOf(c.Step.Name).Deploy {
			o.Message = "interrupted by a server shutdown while deploying; the deploy may have partly run, so it is not run again: " + o.Message
		} else {
			o.Retry = true
		}
	}
	reportCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stop()
	if err := w.Engine.FinishStep(reportCtx, c, o); err != nil {
		// The lease runs out and Reconcile takes the step over.
		w.Logger.ErrorContext(ctx, "recording the step's outcome", bot.LogError, err)
		return
	}
	w.Logger.InfoContext(ctx, "step ended", "succeeded", o.Succeeded, "message", o.Message)
}

// Beat calls beat every interval until ctx is done or beat returns false;
// done is closed once it has stopped. It renews a running step's lease
// here, and tells the server that a worker of the worker role still runs
// its step (router.Worker).
func Beat(ctx context.Context, interval time.Duration, beat func() bool) (done <-chan struct{}) {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !beat() {
					return
				}
			}
		}
	}()
	return stopped
}

// execute runs the step's work and says how it went.
func (w *StepWorker) execute(ctx context.Context, c bot.Claim) bot.Outcome {
	ex := c.Execution
	// Absolute: HOME and STAGEHAND_ARTIFACTS hold paths under it, which
	// the script reads from its checkout, and the sandbox binds it.
	ws, err := filepath.Abs(filepath.Join(w.DataDir, "workspaces", fmt.Sprintf("%d-%s-%d", ex.ID, c.Step.Name, c.Step.Attempt)))
	if err != nil {
		return failed("locating the workspace: %v", err)
	}
	defer os.RemoveAll(ws)
	if err := os.MkdirAll(LogFiles{w.DataDir}.Dir(ex.ID), 0o750); err != nil {
		return failed("creating the log directory: %v", err)
	}
	log, err := runner.NewLog(LogFiles{w.DataDir}.File(ex.ID, c.Step.Name), bot.MaxLogBytes, bot.LogTailBytes)
	if err != nil {
		return failed("creating the step log: %v", err)
	}
	defer log.Close()
	// Deploys and tests get their environment's declared secrets, as
	// variables; a missing one fails the step before anything runs. Every
	// value is masked in what the step writes, so neither the log file,
	// its tail, the check run nor the dashboard shows it.
	secrets, err := w.secrets(c)
	if err != nil {
		fmt.Fprintf(log, "%v\n", err)
		o := failed("%v", err)
		o.LogTail = log.Tail()
		return o
	}
	patterns := runner.SecretPatterns(slices.Collect(maps.Values(secrets)))
	out := runner.NewMaskingWriter(log, patterns)
	if len(secrets) > 0 {
		vars := maps.Clone(c.Variables)
		maps.Copy(vars, secrets)
		c.Variables = vars
	}
	o := w.work(ctx, c, ws, out)
	if err := out.Flush(); err != nil {
		w.Logger.WarnContext(ctx, "writing the end of the step log", bot.LogError, err)
	}
	if o.LogTail == "" {
		o.LogTail = log.Tail()
	}
	o.Message, o.LogTail = runner.MaskString(o.Message, patterns), runner.MaskString(o.LogTail, patterns)
	return o
}

func failed(format string, args ...any) bot.Outcome {
	return bot.Outcome{Message: fmt.Sprintf(format, args...)}
}

// env is the environment of a step command (SPEC §3): nothing of the
// server's own environment but PATH and HOME.
func stepEnv(c bot.Claim, artifacts string) map[string]string {
	ex := c.Execution
	m := map[string]string{
		"STAGEHAND_REPOSITORY": c.Program.FullName(),
		"STAGEHAND_PIPELINE":   string(ex.Pipeline),
		"STAGEHAND_EXECUTION":  strconv.Itoa(ex.Number),
		"STAGEHAND_COMMIT":     ex.Commit,
		"STAGEHAND_BRANCH":     ex.Branch,
	}
	if e := c.Environment(); e != "" {
		for k, v := range c.Variables {
			// Names are checked when set; one stored before the deny
			// list existed (BASH_ENV, LD_PRELOAD, …) never reaches a step.
			if bot.CheckVariableName(k) == nil {
				m[k] = v
			}
		}
		m["STAGEHAND_ENVIRONMENT"] = string(e)
		if ec := c.Config.Environment(e); ec != nil {
			m["STAGEHAND_ENVIRONMENT_URL"] = ec.URL
		}
		m["STAGEHAND_ARTIFACTS"] = artifacts
	}
	return m
}

// command runs one script in the checkout and returns nil when it exits 0.
func (w *StepWorker) command(ctx context.Context, c bot.Claim, ws, script string, timeout time.Duration, log io.Writer, artifacts string) error {
	home := filepath.Join(ws, "home")
	if err := os.MkdirAll(home, 0o750); err != nil {
		return err
	}
	res, err := runner.Run(ctx, runner.Command{
		Script: script, Dir: filepath.Join(ws, "src"), Env: stepEnv(c, artifacts), Path: w.Path, Home: home, Timeout: timeout, Log: log,
		Sandbox: w.Sandbox, Writable: []string{ws}, Nice: runner.StepNice,
	})
	return commandError(script, timeout, res, err)
}

// commandError says how a command failed, or is nil when it exited 0.
func commandError(script string, timeout time.Duration, res runner.Result, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("starting %q: %w", script, err)
	case res.TimedOut:
		return fmt.Errorf("%q timed out after %s", script, timeout)
	case res.Cancelled:
		return fmt.Errorf("%q was stopped", script)
	case res.ExitCode != 0:
		return fmt.Errorf("%q exited with status %d", script, res.ExitCode)
	}
	return nil
}

func (w *StepWorker) checkout(ctx context.Context, c bot.Claim, ws string, log io.Writer) error {
	fmt.Fprintf(log, "$ checkout %s at %s\n", c.Program.FullName(), c.Execution.Commit)
	if err := w.Git.Checkout(ctx, c.Program, c.Execution.Commit, filepath.Join(ws, "src")); err != nil {
		fmt.Fprintf(log, "checkout failed: %v\n", err)
		return fmt.Errorf("checking out %s: %w", bot.ShortSHA(c.Execution.Commit), err)
	}
	return nil
}
