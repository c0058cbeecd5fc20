package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWorkerRoleEscapes runs the escape script of TestStepSandboxEscapes
// through the worker role on PostgreSQL + NATS (issue 11): the server runs
// with --step-runner remote, and the build and deploy run in `stagehand
// worker`, a process of its own started with nothing but --nats-url. The
// worker's environment and command line hold no App key, webhook secret or
// database URL, so there is nothing to leak; and its sandboxed steps find
// none of the server's canaries either.
func TestWorkerRoleEscapes(t *testing.T) {
	if os.Getenv("STAGEHAND_TEST_POSTGRES_URL") == "" || os.Getenv("STAGEHAND_TEST_NATS_URL") == "" {
		t.Skip("needs STAGEHAND_TEST_POSTGRES_URL and STAGEHAND_TEST_NATS_URL; .ci/run sets them to the PostgreSQL and NATS servers of the machine")
	}
	if testing.Short() {
		t.Skip("runs the whole server and a worker; skipped with -short")
	}
	if testSandboxMode() != "bwrap" {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap); STAGEHAND_TEST_SANDBOX=1 makes this a failure")
	}
	dbURL := freshSchema(t)
	natsURL := os.Getenv("STAGEHAND_TEST_NATS_URL")
	prefix := "shworker" + loadRandomHex(t)
	t.Cleanup(func() { replCleanNATS(t, natsURL, prefix) })
	workerDir := t.TempDir()
	workerLogs := &syncBuffer{}
	var workerEnviron, workerCmdline string
	e := runEscapeWith(t, "bwrap", func(int) int { return os.Getpid() }, escapeOptions{
		databaseURL: dbURL,
		args:        []string{"--nats-url", natsURL, "--nats-prefix", prefix, "--step-runner", "remote"},
		ready: func(t *testing.T, h *harness) {
			w := exec.Command(binary(t), "worker", "--nats-url", natsURL, "--nats-prefix", prefix, "--data-dir", workerDir)
			w.Env = []string{"PATH=" + os.Getenv("PATH")}
			w.Stdout, w.Stderr = workerLogs, workerLogs
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = w.Process.Signal(os.Interrupt)
				done := make(chan error, 1)
				go func() { done <- w.Wait() }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					_ = w.Process.Kill()
					<-done
					t.Errorf("the worker did not stop within 30s of SIGINT:\n%s", workerLogs)
				}
			})
			environ, err1 := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w.Process.Pid), "environ"))
			cmdline, err2 := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w.Process.Pid), "cmdline"))
			if err1 != nil || err2 != nil {
				t.Fatalf("reading the worker's /proc entries: %v, %v", err1, err2)
			}
			workerEnviron, workerCmdline = string(environ), string(cmdline)
			waitFor(t, 30*time.Second, "the worker to take steps", func() bool {
				return strings.Contains(workerLogs.String(), "stagehand worker is taking steps")
			})
		},
	})
	if len(e.reports) != 2 {
		t.Errorf("reports over HTTP from %v, want the build's and the deploy's", e.reports)
	}
	// What the worker holds: its environment and arguments.
	for where, text := range map[string]string{"the worker's environment": workerEnviron, "the worker's command line": workerCmdline} {
		for _, v := range []string{e.canaries.webhookSecret, e.canaries.dbPassword, e.canaries.key, dbURL, e.h.keyFile, "postgres://", "PRIVATE KEY"} {
			if strings.Contains(text, v) {
				t.Errorf("%s holds %q: %q", where, v, text)
			}
		}
	}
	// What its steps saw and sent anywhere.
	e.texts["the worker's logs"] = workerLogs.String()
	_ = filepath.WalkDir(workerDir, func(p string, d os.DirEntry, err error) error {
		// A kept checkout (checkouts/<key>/) holds the commit's files, the
		// probe script whose text names ghs_ among them: those are the
		// pushed content, not something a step saw. Its .git, where a
		// token would be written, is read.
		rel := strings.TrimPrefix(p, workerDir+"/")
		if parts := strings.Split(rel, "/"); len(parts) > 2 && parts[0] == "checkouts" && parts[2] != ".git" {
			return nil
		}
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			e.texts["worker "+strings.TrimPrefix(p, workerDir+"/")] = string(b)
		}
		return nil
	})
	for where, text := range e.texts {
		if found := e.canaries.leaks(text); len(found) > 0 {
			t.Errorf("%s holds %q:\n%s", where, found, text)
		}
		if strings.Contains(text, dbURL) {
			t.Errorf("%s holds the database URL:\n%s", where, text)
		}
	}
	if n := strings.Count(workerLogs.String(), "step started"); n != 2 {
		t.Errorf("the worker started %d steps, want the build and the deploy:\n%s", n, workerLogs)
	}
	if !strings.Contains(e.logs.String(), "--step-runner remote") {
		t.Errorf("the server does not say its steps run on workers:\n%s", e.logs)
	}
	// The build's log came back to the server, which keeps it.
	if log := e.texts["logs/"+logDirOfFirst(t, e)+"/build.log"]; !strings.Contains(log, "== identity") {
		t.Errorf("the server has no build log from the worker; its logs: %v", keys(e.texts))
	}
	if ps := e.section(t, "ps"); strings.Contains(ps, "sleep 600") || strings.Contains(ps, "worker --nats-url") {
		t.Errorf("the build sees processes outside its sandbox:\n%s", ps)
	}
}

// logDirOfFirst is the log directory name of the first execution.
func logDirOfFirst(t *testing.T, e *escapeRun) string {
	t.Helper()
	es := e.h.executions(t)
	if len(es) == 0 {
		t.Fatal("no execution")
	}
	return strconv.Itoa(int(es[0].ID))
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestWorkerRefusesWithoutNATS: the worker says what is missing.
func TestWorkerRefusesWithoutNATS(t *testing.T) {
	err := run(context.Background(), []string{"worker"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pass --nats-url") {
		t.Errorf("worker without --nats-url: %v, want it to ask for --nats-url", err)
	}
}

// TestWorkerRefusesToStartWithoutBwrap: with bubblewrap missing, the
// worker says what to install and how to opt out, before it connects.
func TestWorkerRefusesToStartWithoutBwrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no bwrap on it
	args := []string{"worker", "--nats-url", "nats://127.0.0.1:1", "--data-dir", t.TempDir()}
	err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("the worker started without bwrap")
	}
	for _, want := range []string{"bubblewrap", "apt-get install bubblewrap", "--step-sandbox none", "STAGEHAND_STEP_SANDBOX=none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not mention %q:\n%v", want, err)
		}
	}
}
