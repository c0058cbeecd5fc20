package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/state"
)

// crashRepo is a sample repository whose scripts record every build and
// deploy in record/ and wait while a hold-<step> file exists. Each run of
// a script first leaves a running-<step>.<pid> file, so a test knows it
// runs and can wait for it to end.
const crashScript = `set -eu
step=$1
if [ "$step" = build ]; then
  mkdir -p dist
  od -An -N16 -tx1 /dev/urandom > dist/app.txt
fi
echo $$ > RECORD/running-$step.$$
while [ -f RECORD/hold-$step ]; do sleep 0.05; done
echo "$step ${STAGEHAND_ENVIRONMENT:-} $STAGEHAND_PIPELINE #$STAGEHAND_EXECUTION" >> RECORD/$step.log
`

const crashConfig = `version: 1
build: {run: bash run.sh build, artifacts: [dist/**]}
environments:
  stage: {deploy: bash run.sh deploy}
  production: {deploy: bash run.sh deploy}
pipelines:
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {approval: true}
`

// crashSetup makes the sample repository at Codertocat/Hello-World and
// points the harness's server at it. Its scripts write into the test's
// record directory, outside their workspace, so its steps run without a
// sandbox.
func crashSetup(t *testing.T, h *harness) (record string, sha string) {
	t.Helper()
	record = filepath.Join(t.TempDir(), "record")
	if err := os.MkdirAll(record, 0o755); err != nil {
		t.Fatal(err)
	}
	sha = h.localRepo(t, map[string]string{
		".github/stagehand.yml": crashConfig,
		"run.sh":                strings.ReplaceAll(crashScript, "RECORD", record),
	})
	h.sandbox = "none"
	return record, sha
}

// pushPayloadFor is the real branch-created payload pointing at sha.
func pushPayloadFor(t testing.TB, sha string) []byte {
	t.Helper()
	return []byte(strings.ReplaceAll(string(githubtest.Payload("push/branch-created.json")), pushSHA, sha))
}

func hold(t *testing.T, record, step string) func() {
	t.Helper()
	p := filepath.Join(record, "hold-"+step)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() { os.Remove(p) }
}

// waitHolding waits until a script sits at its hold: the step is running
// and its script (build or deploy) has started.
func waitHolding(t *testing.T, h *harness, record string, n int, step bot.StepName, script string) {
	t.Helper()
	waitFor(t, 60*time.Second, string(step)+" running", func() bool {
		for _, s := range h.steps(t, n) {
			if s.Name == step && s.State == bot.StepRunning && s.Attempt > 0 {
				return true
			}
		}
		return false
	})
	waitFor(t, 60*time.Second, "the "+script+" script to start", func() bool { return len(scriptRuns(t, record, script)) > 0 })
}

// scriptRuns are the process ids of every run of a crash script so far.
func scriptRuns(t *testing.T, record, script string) []int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(record, "running-"+script+".*"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range files {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Ext(f), "."))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// running reports whether process pid is alive (a zombie, which an init
// that does not reap leaves behind, is not).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func (h *harness) steps(t *testing.T, n int) []bot.Step {
	t.Helper()
	var steps []bot.Step
	h.withStore(t, func(ctx context.Context, store bot.Store, prog bot.Program) {
		err := store.View(ctx, func(tx bot.Tx) error {
			ex, err := tx.ExecutionByNumber(ctx, prog.ID, n)
			if err != nil {
				return nil // not yet
			}
			steps, err = tx.Steps(ctx, ex.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return steps
}

func (h *harness) execution(t *testing.T, n int) bot.Execution {
	t.Helper()
	for _, ex := range h.executions(t) {
		if ex.Number == n {
			return ex
		}
	}
	return bot.Execution{}
}

func (h *harness) waitExecution(t *testing.T, n int, st bot.ExecutionState) bot.Execution {
	t.Helper()
	waitFor(t, 90*time.Second, "execution to be "+string(st), func() bool { return h.execution(t, n).State == st })
	return h.execution(t, n)
}

// withStore opens the server's state database next to the running server.
func (h *harness) withStore(t *testing.T, fn func(ctx context.Context, store bot.Store, prog bot.Program)) {
	t.Helper()
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(h.dataDir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var prog bot.Program
	_ = store.View(ctx, func(tx bot.Tx) error {
		prog, _ = tx.ProgramByName(ctx, "Codertocat", "Hello-World")
		return nil
	})
	fn(ctx, store, prog)
}

type noJobs struct{}

// recordedPolicy is the policy the server recorded with the program's
// newest execution: what the GitHub surface would read from the default
// branch, which these tests do not change.
type recordedPolicy struct {
	store bot.Store
	parse bot.ConfigParser
}

func (r recordedPolicy) Policy(ctx context.Context, prog bot.Program) (bot.Policy, error) {
	var pol bot.Policy
	err := r.store.View(ctx, func(tx bot.Tx) error {
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID, Limit: 1})
		if err != nil || len(es) == 0 {
			return err
		}
		pol.Raw = es[0].Policy
		return nil
	})
	if err != nil || pol.Raw == nil {
		return pol, err
	}
	pol.Config, err = r.parse.Config(pol.Raw)
	return pol, err
}

func (noJobs) PublishJob(context.Context, bot.Job) error { return nil }

// command runs an engine command on the server's database, as the GitHub
// surface will; the server's reconcile loop dispatches what follows.
func (h *harness) command(t *testing.T, fn func(ctx context.Context, e *bot.Engine, prog bot.Program) error) {
	t.Helper()
	h.withStore(t, func(ctx context.Context, store bot.Store, prog bot.Program) {
		parse := func(b []byte) (*bot.Config, bot.Diagnostics) {
			return config.ParseRepoConfig(config.RepoConfigPath, b)
		}
		e := &bot.Engine{Store: store, Clock: bot.SystemClock{}, Jobs: noJobs{}, Logger: slog.New(slog.DiscardHandler),
			ParseConfig: parse, Policy: recordedPolicy{store: store, parse: parse}}
		if err := fn(ctx, e, prog); err != nil {
			t.Fatal(err)
		}
	})
}

func lines(t *testing.T, record, name string) []string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(record, name))
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func kill(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// TestEngineCrashSafety is rule I, second half: the real binary is killed
// with SIGKILL during a build, during a stage deploy and while waiting for
// approval; after a restart each execution ends in the right state and no
// deploy ran twice.
func TestEngineCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Run("during the build", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		record, sha := crashSetup(t, h)
		release := hold(t, record, "build")
		first := h.start(t, "first")
		h.waitReady(t)
		if code := h.send(t, "push", "crash-build", pushPayloadFor(t, sha)); code != 202 {
			t.Fatalf("push answered %d", code)
		}
		waitHolding(t, h, record, 1, bot.StepBuild, "build")
		kill(t, first)
		release()
		h.start(t, "second")
		ex := h.waitExecution(t, 1, bot.ExecutionSucceeded)
		if got := lines(t, record, "deploy.log"); len(got) != 1 {
			t.Errorf("stage deploys = %q, want exactly one", got)
		}
		steps := h.steps(t, 1)
		if steps[0].Attempt != 2 {
			t.Errorf("build attempts = %d, want 2 (killed, then run again)", steps[0].Attempt)
		}
		t.Logf("%s: %s", ex, ex.Message)
	})
	t.Run("during the stage deploy", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		record, sha := crashSetup(t, h)
		release := hold(t, record, "deploy")
		first := h.start(t, "first")
		h.waitReady(t)
		if code := h.send(t, "push", "crash-deploy", pushPayloadFor(t, sha)); code != 202 {
			t.Fatalf("push answered %d", code)
		}
		waitHolding(t, h, record, 1, bot.StepDeployStage, "deploy")
		kill(t, first)
		h.start(t, "second")
		ex := h.waitExecution(t, 1, bot.ExecutionFailed)
		if !strings.Contains(ex.Message, "outcome of this deploy is unknown") {
			t.Errorf("failed with %q; it must say the deploy's outcome is unknown", ex.Message)
		}
		release() // the orphaned script of the killed server finishes now
		waitFor(t, 30*time.Second, "every deploy script to end", func() bool {
			for _, pid := range scriptRuns(t, record, "deploy") {
				if running(pid) {
					return false
				}
			}
			return true
		})
		if got := lines(t, record, "deploy.log"); len(got) > 1 {
			t.Errorf("stage deploys = %q: the deploy ran twice", got)
		}
		if runs := scriptRuns(t, record, "deploy"); len(runs) != 1 {
			t.Errorf("the deploy script ran %d times (pids %v), want once: the killed server's", len(runs), runs)
		}
	})
	t.Run("while waiting for approval", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		record, sha := crashSetup(t, h)
		first := h.start(t, "first")
		h.waitReady(t)
		if code := h.send(t, "push", "crash-approval", pushPayloadFor(t, sha)); code != 202 {
			t.Fatalf("push answered %d", code)
		}
		h.waitExecution(t, 1, bot.ExecutionSucceeded)
		h.command(t, func(ctx context.Context, e *bot.Engine, prog bot.Program) error {
			_, err := e.Promote(ctx, bot.Internal("alice"), prog.ID, 1)
			return err
		})
		h.waitExecution(t, 2, bot.ExecutionWaiting)
		kill(t, first)
		h.start(t, "second")
		h.waitReady(t)
		if ex := h.execution(t, 2); ex.State != bot.ExecutionWaiting {
			t.Fatalf("after the restart prod-only #2 is %s, want still waiting for approval", ex.State)
		}
		h.command(t, func(ctx context.Context, e *bot.Engine, prog bot.Program) error {
			_, err := e.Approve(ctx, bot.Internal("bob"), prog.ID, 2)
			return err
		})
		h.waitExecution(t, 2, bot.ExecutionSucceeded)
		got := lines(t, record, "deploy.log")
		if len(got) != 2 || !strings.HasPrefix(got[0], "deploy stage") || !strings.HasPrefix(got[1], "deploy production") {
			t.Errorf("deploys = %q, want one to stage and one to production", got)
		}
	})
}
