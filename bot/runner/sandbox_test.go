package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// testSandbox is a sandbox made with the bwrap on PATH. Without bwrap the
// test is skipped, or fails when STAGEHAND_TEST_SANDBOX=1 (CI).
func testSandbox(t testing.TB) *runner.Sandbox {
	t.Helper()
	p, err := runner.LookBwrap()
	if err != nil {
		if os.Getenv("STAGEHAND_TEST_SANDBOX") == "1" {
			t.Fatalf("STAGEHAND_TEST_SANDBOX=1 but %v (apt-get install bubblewrap)", err)
		}
		t.Skipf("%v; install it (apt-get install bubblewrap) to run this test", err)
	}
	return &runner.Sandbox{Bwrap: p}
}

// sandboxed is a command in a sandbox, its workspace a fresh directory.
func sandboxed(t *testing.T, script string) runner.Command {
	t.Helper()
	ws := t.TempDir()
	return runner.Command{Script: script, Dir: ws, Writable: []string{ws}, Path: os.Getenv("PATH"), Home: ws, Sandbox: testSandbox(t)}
}

// runLog runs c and returns how it ended and its log.
func runLog(t *testing.T, c runner.Command) (runner.Result, string) {
	t.Helper()
	var out syncBuffer
	c.Log = &out
	res, err := runner.Run(testCtx(t), c)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, out.String()
}

// TestSandboxEnvironment: the script's environment is exactly the one
// given; the server's canaries reach it neither directly nor through the
// sandbox's init (/proc/1/environ) or its command line.
func TestSandboxEnvironment(t *testing.T) {
	t.Setenv("STAGEHAND_TEST_CANARY", "leaked-canary-env")
	c := sandboxed(t, `env; echo "init: $(tr '\0' ' ' </proc/1/environ) $(tr '\0' ' ' </proc/1/cmdline)"`)
	c.Env = map[string]string{"STAGEHAND_COMMIT": "0123abc", "LOG_LEVEL": "debug with spaces", "EMPTY": ""}
	res, log := runLog(t, c)
	if res.ExitCode != 0 {
		t.Fatalf("exit status %d:\n%s", res.ExitCode, log)
	}
	got := map[string]string{}
	var init string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if rest, ok := strings.CutPrefix(line, "init: "); ok {
			init = rest
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	for _, k := range []string{"PWD", "SHLVL", "_"} { // bash's own
		delete(got, k)
	}
	want := map[string]string{"STAGEHAND_COMMIT": "0123abc", "LOG_LEVEL": "debug with spaces", "EMPTY": "", "PATH": c.Path, "HOME": c.Home}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	if strings.Contains(init, "leaked-canary-env") || strings.Contains(init, "--bind") || strings.Contains(init, c.Dir) {
		t.Errorf("the sandbox's init shows the server's environment or bwrap's binds: %s", init)
	}
}

// TestSandboxFileSystem probes what a script can see and change. Each row
// is a script that exits 0 when the probe succeeds.
func TestSandboxFileSystem(t *testing.T) {
	outside := t.TempDir() // a directory of the host the sandbox is not given
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir() // given writable, with a hidden part
	hidden := filepath.Join(shared, "hidden")
	if err := os.MkdirAll(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hidden, "key.pem"), []byte("canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostTmp := filepath.Join(os.TempDir(), fmt.Sprintf("stagehand-sandbox-probe-%d", rand.Int64()))
	defer os.Remove(hostTmp)

	tests := []struct {
		name, script string
		ok           bool
	}{
		{"the workspace is writable", "touch ws-file && mkdir -p .git/objects", true},
		{"HOME is writable", `touch "$HOME/.netrc"`, true},
		{"/tmp is writable", "touch " + hostTmp, true},
		{"the system's programs run", "git --version && bash --version && ls /usr/bin >/dev/null && sort --version", true},
		{"git works in the workspace", "git init -q . && git -c user.name=a -c user.email=a@b commit -q --allow-empty -m x && git log --oneline", true},
		{"name resolution and TLS trust are there", "test -s /etc/resolv.conf -o -s /etc/hosts && test -d /etc/ssl/certs", true},
		{"a directory given writable", "touch " + filepath.Join(shared, "published"), true},
		{"another host directory is not there", "ls " + outside, false},
		{"a hidden directory under a given one is empty", "ls -A " + hidden + " | grep .", false},
		{"a hidden directory is read-only", "touch " + filepath.Join(hidden, "x"), false},
		{"/ is read-only", "touch /escaped", false},
		{"/usr is read-only", "touch /usr/escaped", false},
		{"/etc is read-only", "touch /etc/escaped", false},
		{"/etc/shadow is not there", "cat /etc/shadow", false},
		{"TLS private keys are not there", "ls /etc/ssl/private", false},
		{"/root is not there", "ls /root", false},
		{"/var and /run are not there", "ls /var/lib || ls /run", false},
		{"/sys is not there", "ls /sys/fs", false},
		{"the script is root", `test "$(id -u)" = 0`, false},
		{"the script has capabilities", "grep -q '^CapEff:.*[1-9a-f]' /proc/self/status", false},
		{"the script makes a user namespace", "unshare -U true", false},
		{"the script remounts /usr writable", "mount -o remount,rw /usr", false},
		{"the script unmounts a hidden directory's cover", "umount " + hidden, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sandboxed(t, tt.script)
			c.Sandbox.Writable = []string{shared}
			c.Sandbox.Hide = []string{hidden}
			res, log := runLog(t, c)
			if got := res.ExitCode == 0; got != tt.ok {
				t.Errorf("succeeded = %v, want %v (exit status %d):\n%s", got, tt.ok, res.ExitCode, log)
			}
		})
	}
	if _, err := os.Stat(hostTmp); err == nil {
		t.Errorf("a file the sandbox made in its /tmp is in the host's /tmp")
	}
	if b, _ := os.ReadFile(filepath.Join(hidden, "key.pem")); string(b) != "canary" {
		t.Errorf("the hidden file was changed: %q", b)
	}
}

// TestSandboxProcesses: the script sees only its sandbox's processes and
// cannot signal the server.
func TestSandboxProcesses(t *testing.T) {
	self := os.Getpid()
	script := fmt.Sprintf(`for f in /proc/[0-9]*/cmdline; do echo "$f: $(tr '\0' ' ' <$f)"; done
echo "pids: $(cd /proc && echo [0-9]*)"
if kill -9 %d; then echo "sig""nalled"; fi`, self)
	res, log := runLog(t, sandboxed(t, script))
	if res.ExitCode != 0 {
		t.Fatalf("exit status %d:\n%s", res.ExitCode, log)
	}
	if exe, _ := os.Executable(); strings.Contains(log, filepath.Base(exe)) {
		t.Errorf("the sandbox sees the test process:\n%s", log)
	}
	// The sandbox's own: bwrap's init (1), bash (2) and the subshell
	// that lists them, in a PID namespace of its own.
	pids := strings.Fields(log[strings.LastIndex(log, "\npids: ")+len("\npids: "):])
	if len(pids) < 3 || pids[0] != "1" || pids[1] != "2" || pids[2] == "/usr/bin/bash:" || len(pids) > 3 && pids[3] != "/usr/bin/bash:" {
		t.Errorf("the sandbox sees other processes than its init, bash and a subshell:\n%s", log)
	}
	if self > 10 && strings.Contains(log, "signalled") {
		t.Errorf("the script signalled pid %d:\n%s", self, log)
	}
}

// hostProcs lists live host processes whose command line holds marker.
func hostProcs(marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(b, []byte(marker)) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestSandboxStops: a cancelled or timed-out script gets SIGTERM and may
// clean up; one that ignores it is killed after the grace; processes left
// behind, those that left the script's session included, end with it.
func TestSandboxStops(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		cancel  bool
		want    runner.Result
		log     string
	}{
		// The sleep starts before "started" is printed, so cancelling as
		// soon as it shows leaves a process behind to end with the sandbox;
		// bash runs the trap whether SIGTERM comes before or during wait.
		{"cancel: SIGTERM reaches the script", `trap 'echo cleaning up; exit 7' TERM; sleep MARK & echo started; wait`, 0, true,
			runner.Result{Cancelled: true, ExitCode: 7}, "started\ncleaning up\n"},
		// Timeouts leave the sandbox time to start under load: the script
		// must have printed before it is stopped.
		{"timeout", `echo started; sleep MARK`, 3 * time.Second, false,
			runner.Result{TimedOut: true, ExitCode: 128 + 15}, "started\n"},
		{"SIGTERM ignored: SIGKILL after the grace", "trap '' TERM; echo started; setsid sleep MARK & sleep MARK", 3 * time.Second, false,
			runner.Result{TimedOut: true, ExitCode: 128 + 9}, "started\n"},
		{"left behind after the script's end", "setsid sleep MARK & sleep MARK & echo started", 0, false,
			runner.Result{ExitCode: 0}, "started\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := fmt.Sprintf("300.%d", rand.Int32())
			var out syncBuffer
			c := sandboxed(t, strings.ReplaceAll(tt.script, "MARK", mark))
			c.Log, c.Timeout, c.KillGrace = &out, tt.timeout, 200*time.Millisecond
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			if tt.cancel {
				go func() {
					deadline := time.Now().Add(30 * time.Second)
					for !strings.Contains(out.String(), "started") && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
					cancel()
				}()
			}
			res, err := runner.Run(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, res, cmpopts.IgnoreFields(runner.Result{}, "Duration")); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.log, out.String()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			// The kernel kills what is left when the sandbox's init ends;
			// that may take a moment after Run returns.
			deadline := time.Now().Add(5 * time.Second)
			for len(hostProcs("sleep\x00"+mark)) > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if left := hostProcs("sleep\x00" + mark); len(left) > 0 {
				t.Errorf("processes %v survived the sandbox", left)
				for _, pid := range left {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
	}
}

func TestSandboxCheck(t *testing.T) {
	s := testSandbox(t)
	if err := s.Check(testCtx(t)); err != nil {
		t.Errorf("Check: %v", err)
	}
	broken := &runner.Sandbox{Bwrap: "/bin/false"}
	if err := broken.Check(testCtx(t)); err == nil || !strings.Contains(err.Error(), "cannot make a sandbox") {
		t.Errorf("Check with a bwrap that fails = %v, want an error saying it cannot make a sandbox", err)
	}
}

func TestLookBwrapMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := runner.LookBwrap(); !errors.Is(err, runner.ErrNoBwrap) {
		t.Errorf("LookBwrap with an empty PATH = %v, want ErrNoBwrap", err)
	}
}
