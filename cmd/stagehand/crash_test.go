package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real stagehand binary once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stagehand-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "stagehand")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building stagehand: %v", buildErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// process is a running stagehand binary.
type process struct {
	cmd  *exec.Cmd
	logs string
}

func (h *harness) start(t *testing.T, name string) *process {
	t.Helper()
	logs := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), h.args()...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logs)
			t.Logf("%s logs:\n%s", name, b)
		}
	})
	return p
}

// TestCrashAfterAcceptIsProcessedExactlyOnce is rule I, first half: the
// real binary answers 202, is killed with SIGKILL while the handler is
// still waiting for GitHub, and after a restart on the same data directory
// the delivery is processed exactly once.
func TestCrashAfterAcceptIsProcessedExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	h := newHarness(t)
	release := h.gh.Hold("/repos/Codertocat/Hello-World/contents/")
	first := h.start(t, "first")
	h.waitReady(t)

	const guid = "crash-0000-4000-8000-000000000001"
	if code := h.send(t, "push", guid, githubtest.Payload("push/branch-created.json")); code != 202 {
		t.Fatalf("push answered %d, want 202", code)
	}
	// The handler is now blocked reading the configuration from GitHub.
	h.waitHeld(t)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	release()
	if got := h.executions(t); len(got) != 0 {
		t.Fatalf("executions right after the kill = %+v, want none (the handler had not finished)", got)
	}

	second := h.start(t, "second")
	h.waitReady(t)
	waitFor(t, 60*time.Second, "the redelivered push to be processed", func() bool { return h.processed(t, guid) })
	// The first run's leases (its reporter's at least) are taken over at
	// start, not when they expire: nobody else can use this data directory.
	if logs, _ := os.ReadFile(second.logs); !strings.Contains(string(logs), "took over the leases a previous run in this data directory left") {
		t.Errorf("the restarted server did not take over the killed one's leases at start; its log:\n%s", logs)
	}
	// Stop gracefully and check the final state.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	es := h.executions(t)
	if len(es) != 1 || es[0].Pipeline != bot.StageOnly || es[0].DeliveryID != guid {
		t.Fatalf("executions = %+v, want exactly one stage-only from delivery %s", es, guid)
	}
	if got := h.contentsCalls(); got != 2 {
		t.Errorf("configuration fetched %d times, want 2 (the killed attempt and the redelivery)", got)
	}
	h.gh.AssertNoErrors(t)
}

// TestGracefulShutdownHandsBackInFlight sends SIGTERM while a handler
// waits for GitHub: the server stops taking deliveries and exits cleanly
// without acknowledging the unfinished message, and the next start
// processes it exactly once.
func TestGracefulShutdownHandsBackInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	h := newHarness(t)
	release := h.gh.Hold("/repos/Codertocat/Hello-World/contents/")
	p := h.start(t, "first")
	h.waitReady(t)
	const guid = "term-0000-4000-8000-000000000001"
	if code := h.send(t, "push", guid, githubtest.Payload("push/branch-created.json")); code != 202 {
		t.Fatalf("push answered %d, want 202", code)
	}
	h.waitHeld(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("graceful stop exited with %v, want status 0", err)
	}
	release()
	if code, _ := h.get("/healthz"); code != 0 {
		t.Errorf("the server still answers after SIGTERM")
	}

	second := h.start(t, "second")
	h.waitReady(t)
	waitFor(t, 60*time.Second, "the handed-back push to be processed", func() bool { return h.processed(t, guid) })
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	if es := h.executions(t); len(es) != 1 {
		t.Errorf("executions = %+v, want exactly one", es)
	}
}

// waitHeld waits until a handler is blocked asking GitHub for the
// configuration.
func (h *harness) waitHeld(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.gh.WaitHeld(ctx, "/repos/Codertocat/Hello-World/contents/", 1); err != nil {
		t.Fatalf("waiting for the handler to ask GitHub for the configuration: %v", err)
	}
}
