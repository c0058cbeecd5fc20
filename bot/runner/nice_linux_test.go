package runner_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// niceScript prints the niceness of bash and of a child it starts.
const niceScript = `read -r -a f < /proc/self/stat; echo "bash ${f[18]}"; awk '{print "child " $19}' /proc/self/stat`

// ownNiceness is the test process's niceness (the raw getpriority answers
// 20 - niceness).
func ownNiceness(t *testing.T) int {
	t.Helper()
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// threadNiceness is the niceness of every thread of this process that can
// run Go code. The main thread is left out: when the goroutine that started
// a niced command ran on it, Go cannot end it and parks it for good
// instead, so it never runs anything again.
func threadNiceness(t *testing.T) map[int]int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	main := "/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/stat"
	for _, task := range tasks {
		if task == main {
			continue
		}
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended meanwhile
		}
		// Fields after the command name, which is in parentheses.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		n, err := strconv.Atoi(fields[16]) // field 19 of stat
		if err != nil {
			t.Fatalf("%s: %v", task, err)
		}
		seen[n]++
	}
	return seen
}

// TestRunNice: a command with Nice runs at that niceness from its first
// instruction, its children too; without Nice at the server's; and no
// thread of the server is left niced.
func TestRunNice(t *testing.T) {
	own := ownNiceness(t)
	if own >= runner.StepNice {
		t.Skipf("the test runs at niceness %d already", own)
	}
	for _, tc := range []struct {
		name string
		nice int
		want int
	}{
		{"step", runner.StepNice, runner.StepNice},
		{"none", 0, own},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := command(t, niceScript)
			c.Nice = tc.nice
			res, log := runLog(t, c)
			if res.ExitCode != 0 {
				t.Fatalf("exit %d: %s", res.ExitCode, log)
			}
			want := "bash " + strconv.Itoa(tc.want) + "\nchild " + strconv.Itoa(tc.want) + "\n"
			if diff := cmp.Diff(want, log); diff != "" {
				t.Errorf("niceness (-want +got):\n%s", diff)
			}
		})
	}
	// The niced thread ends with its goroutine, shortly after the start.
	deadline := time.Now().Add(5 * time.Second)
	for got := threadNiceness(t); got[runner.StepNice] > 0; got = threadNiceness(t) {
		if time.Now().After(deadline) {
			t.Fatalf("threads of the server by niceness: %v; want none at %d", got, runner.StepNice)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSandboxStepCannotRaiseItsPriority is the attack: a step at StepNice
// tries to take back the CPU priority (renice, nice with a negative
// adjustment, a child) and stays at StepNice.
func TestSandboxStepCannotRaiseItsPriority(t *testing.T) {
	c := sandboxed(t, `renice -n 0 -p $$ >/dev/null 2>&1 && echo "renice worked"
nice -n -10 true 2>/dev/null && echo "nice -10 worked"
read -r -a f < /proc/self/stat; echo "bash ${f[18]}"; awk '{print "child " $19}' /proc/self/stat`)
	c.Nice = runner.StepNice
	res, log := runLog(t, c)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, log)
	}
	// nice(1) runs true anyway when it may not lower the niceness, so its
	// exit says nothing; the niceness read afterwards does.
	log = strings.ReplaceAll(log, "nice -10 worked\n", "")
	want := "bash 10\nchild 10\n"
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("a sandboxed step changed its priority (-want +got):\n%s", diff)
	}
}
