package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// syncBuffer is a Log writer tests can read while Run writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func command(t *testing.T, script string) runner.Command {
	return runner.Command{Script: script, Dir: t.TempDir(), Path: os.Getenv("PATH"), Home: t.TempDir()}
}

// alive reports whether pid is a running process. A zombie counts as dead:
// an init that does not reap orphans (containers) keeps it forever, and
// kill(pid, 0) succeeds for it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitPids waits until the files hold pids and returns them.
func waitPids(t *testing.T, files ...string) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var pids []int
	for _, f := range files {
		for {
			b, _ := os.ReadFile(f)
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				pids = append(pids, pid)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pid in %s", f)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return pids
}

func TestRunEnvironment(t *testing.T) {
	t.Setenv("STAGEHAND_TEST_CANARY", "leaked")
	t.Setenv("GITHUB_TOKEN", "leaked")
	var out syncBuffer
	c := command(t, "env")
	c.Env = map[string]string{
		"STAGEHAND_COMMIT":     "0123abc",
		"STAGEHAND_REPOSITORY": "acme/app",
		"LOG_LEVEL":            "debug with spaces",
		"EMPTY":                "",
	}
	c.Log = &out
	res, err := runner.Run(testCtx(t), c)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %+v, %v\n%s", res, err, out.String())
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	// bash itself exports these.
	for _, k := range []string{"PWD", "SHLVL", "_"} {
		delete(got, k)
	}
	want := map[string]string{
		"STAGEHAND_COMMIT":     "0123abc",
		"STAGEHAND_REPOSITORY": "acme/app",
		"LOG_LEVEL":            "debug with spaces",
		"EMPTY":                "",
		"PATH":                 c.Path,
		"HOME":                 c.Home,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
}

func TestRunInvalidEnvironment(t *testing.T) {
	c := command(t, "true")
	c.Env = map[string]string{"A=B": "x"}
	if _, err := runner.Run(testCtx(t), c); err == nil {
		t.Error("Run accepted a variable name holding '='")
	}
}

func TestRunExitCode(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		want         runner.Result
		log          string
	}{
		{"success", "echo ok", runner.Result{ExitCode: 0}, "ok\n"},
		{"exit code propagated", "exit 3", runner.Result{ExitCode: 3}, ""},
		{"pipefail", "false | true; echo not reached", runner.Result{ExitCode: 1}, ""},
		{"errexit", "false; echo not reached", runner.Result{ExitCode: 1}, ""},
		{"stdout and stderr interleaved", "echo out; echo err >&2; echo out2", runner.Result{ExitCode: 0}, "out\nerr\nout2\n"},
		{"killed by a signal", "echo before; kill -KILL $$", runner.Result{ExitCode: 128 + 9}, "before\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("direct", func(t *testing.T) { testExitCode(t, command(t, tc.script), tc.want, tc.log) })
			t.Run("sandboxed", func(t *testing.T) { testExitCode(t, sandboxed(t, tc.script), tc.want, tc.log) })
		})
	}
}

// testExitCode runs c and compares its result and log.
func testExitCode(t *testing.T, c runner.Command, want runner.Result, log string) {
	t.Helper()
	got, gotLog := runLog(t, c)
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(runner.Result{}, "Duration")); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(log, gotLog); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestRunWorkingDir(t *testing.T) {
	var out syncBuffer
	c := command(t, "pwd -P; cat marker")
	if err := os.WriteFile(filepath.Join(c.Dir, "marker"), []byte("here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Log = &out
	if _, err := runner.Run(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.EvalSymlinks(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dir+"\nhere\n", out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestRunStartFailure(t *testing.T) {
	c := command(t, "true")
	c.Dir = filepath.Join(c.Dir, "missing")
	res, err := runner.Run(testCtx(t), c)
	if err == nil {
		t.Fatalf("Run in a missing directory: %+v, want an error", res)
	}
}

func TestRunAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	res, err := runner.Run(ctx, command(t, "touch "+marker))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(runner.Result{ExitCode: -1, Cancelled: true}, res, cmpopts.IgnoreFields(runner.Result{}, "Duration")); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the script ran")
	}
}

// The group is killed, grandchildren included, and Run returns promptly.
func TestRunKillsProcessGroup(t *testing.T) {
	// a: a background grandchild; b: a background bash whose own child c
	// also sleeps; then the script's foreground sleep.
	const script = `
sleep 300 & echo $! > "$PIDS/a"
bash -c 'sleep 300 & echo $! > "$PIDS/c"; wait' & echo $! > "$PIDS/b"
sleep 300`
	for _, tc := range []struct {
		name      string
		prefix    string // script prefix
		timeout   time.Duration
		grace     time.Duration
		want      runner.Result
		maxReturn time.Duration // after the cancel or the timeout
	}{
		// maxReturn only tells "returned at the stop" from "waited for
		// the children's sleep 300": a wide margin keeps a loaded machine
		// from failing it.
		{"cancel", "", 0, 0, runner.Result{Cancelled: true, ExitCode: 128 + 15}, 30 * time.Second},
		{"timeout", "", 3 * time.Second, 0, runner.Result{TimedOut: true, ExitCode: 128 + 15}, 30 * time.Second},
		{"SIGTERM ignored: SIGKILL after the grace", "trap '' TERM\n", 3 * time.Second, 200 * time.Millisecond,
			runner.Result{TimedOut: true, ExitCode: 128 + 9}, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pids := t.TempDir()
			c := command(t, tc.prefix+script)
			c.Env = map[string]string{"PIDS": pids}
			c.Timeout, c.KillGrace = tc.timeout, tc.grace
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			type ran struct {
				res runner.Result
				err error
				at  time.Time
			}
			done := make(chan ran, 1)
			start := time.Now()
			go func() {
				res, err := runner.Run(ctx, c)
				done <- ran{res, err, time.Now()}
			}()
			procs := waitPids(t, filepath.Join(pids, "a"), filepath.Join(pids, "b"), filepath.Join(pids, "c"))
			stopAt := start.Add(tc.timeout)
			if tc.timeout == 0 {
				stopAt = time.Now()
				cancel()
			}
			var r ran
			select {
			case r = <-done:
			case <-time.After(90 * time.Second):
				t.Fatal("Run did not return")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if took := r.at.Sub(stopAt); took > tc.maxReturn {
				t.Errorf("Run returned %v after the stop, want at most %v", took, tc.maxReturn)
			}
			if diff := cmp.Diff(tc.want, r.res, cmpopts.IgnoreFields(runner.Result{}, "Duration")); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
			for _, pid := range procs {
				if alive(pid) {
					t.Errorf("process %d survived", pid)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
}

// A script that exits leaving a background process holding the output
// pipe: Run neither hangs on the pipe nor leaves the process behind.
func TestRunStopsLeftovers(t *testing.T) {
	pids := t.TempDir()
	var out syncBuffer
	c := command(t, `sleep 300 & echo $! > "$PIDS/a"; echo done`)
	c.Env = map[string]string{"PIDS": pids}
	c.Log = &out
	start := time.Now()
	res, err := runner.Run(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 60*time.Second { // not the leftover's sleep 300
		t.Errorf("Run took %v", took)
	}
	if diff := cmp.Diff(runner.Result{ExitCode: 0}, res, cmpopts.IgnoreFields(runner.Result{}, "Duration")); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("done\n", out.String()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if pid := waitPids(t, filepath.Join(pids, "a"))[0]; alive(pid) {
		t.Errorf("background process %d survived", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// A process that escapes the group (setsid) and keeps the pipe open must
// not make Run hang.
func TestRunEscapedProcessDoesNotHang(t *testing.T) {
	pids := t.TempDir()
	c := command(t, `setsid sleep 300 & echo $! > "$PIDS/a"; echo done`)
	c.Env = map[string]string{"PIDS": pids}
	start := time.Now()
	if _, err := runner.Run(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 60*time.Second { // not the escaped sleep 300
		t.Errorf("Run took %v", took)
	}
	syscall.Kill(waitPids(t, filepath.Join(pids, "a"))[0], syscall.SIGKILL)
}
