package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/state"
)

var _ worker.StepDispatcher = (*NATSSteps)(nil)

// rolesNATS starts nats-server with JetStream and two users: "server"
// (everything) and "worker" (WorkerPermissions only). It returns their URLs.
func rolesNATS(t *testing.T) (serverURL, workerURL string) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nats-server"); err != nil {
			t.Skip("nats-server is not installed (apt-get install nats-server)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	pub, sub := WorkerPermissions("")
	quote := func(ss []string) string { return `"` + strings.Join(ss, `", "`) + `"` }
	conf := fmt.Sprintf(`listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
authorization {
  users = [
    { user: server, password: server-pw, permissions: { publish: ">", subscribe: ">" } }
    { user: worker, password: worker-pw, permissions: { publish: { allow: [%s] }, subscribe: { allow: [%s] } } }
  ]
}
`, port, filepath.Join(dir, "js"), quote(pub), quote(sub))
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	serverURL = fmt.Sprintf("nats://server:server-pw@127.0.0.1:%d", port)
	workerURL = fmt.Sprintf("nats://worker:worker-pw@127.0.0.1:%d", port)
	for i := 0; ; i++ {
		nc, err := nats.Connect(serverURL)
		if err == nil {
			nc.Close()
			return serverURL, workerURL
		}
		if i == 100 {
			t.Fatalf("nats-server did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gitRepo makes a repository under root/owner/repo with one commit and
// returns the commit.
func gitRepo(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "octo", "app")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var head string
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "README"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"},
		{"rev-parse", "HEAD"},
	} {
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		head = strings.TrimSpace(string(out))
	}
	return head
}

// workLog is a log the dispatcher writes while the test reads it.
type workLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
	saw chan struct{} // closed once the log holds "started"
}

func (b *workLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.saw != nil && strings.Contains(b.buf.String(), "started\n") {
		close(b.saw)
		b.saw = nil
	}
	return n, err
}

func (b *workLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStepWorkOverNATSWithRolePermissions runs a build and a deploy through
// the worker role, connected as a NATS user with WorkerPermissions only: the
// log, the result and the artifact set come back to the server role.
func TestStepWorkOverNATSWithRolePermissions(t *testing.T) {
	serverURL, workerURL := rolesNATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b := openBroker(t, BrokerOptions{URL: serverURL, DataDir: t.TempDir()})
	serverArtifacts := newReplicaArtifacts(t, b)

	wc, err := nats.Connect(workerURL, nats.CustomInboxPrefix(WorkerInboxPrefix("")))
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	local, err := state.OpenArtifacts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	workerArtifacts, err := BindNATSArtifacts(ctx, wc, "", local)
	if err != nil {
		t.Fatal(err)
	}
	workerArtifacts.TempDir = t.TempDir()
	repos := t.TempDir()
	commit := gitRepo(t, repos)
	wr := &worker.WorkRunner{Artifacts: workerArtifacts, DataDir: t.TempDir(), Path: os.Getenv("PATH")}
	stepWorker := &Worker{Conn: wc, Run: wr.Run, Beat: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	workerCtx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- stepWorker.Serve(workerCtx) }()
	defer func() {
		stopWorker()
		if err := <-workerDone; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	steps := b.StepDispatcher()
	checkout := runner.CheckoutSpec{GitURL: "file://" + repos + "/", Owner: "octo", Repo: "app", Commit: commit}
	env := map[string]string{"STAGEHAND_REPOSITORY": "octo/app"}

	var buildLog workLog
	r, err := steps.Dispatch(ctx, worker.StepWork{
		ExecutionID: 1, Step: "build", Attempt: 1, Checkout: checkout, Env: env, Collect: true, Globs: []string{"out/*"},
		Commands: []worker.WorkCommand{{Run: `mkdir out && echo "built by $STAGEHAND_REPOSITORY" > out/app.txt && echo compiled && awk '{print "niceness " $19}' /proc/self/stat`, Timeout: time.Minute}},
	}, &buildLog)
	if err != nil {
		t.Fatalf("Dispatch(build): %v", err)
	}
	if !r.Succeeded || r.Files != 1 || r.ArtifactDigest == "" {
		t.Fatalf("build result = %+v, want success with 1 file; log:\n%s", r, buildLog.String())
	}
	// The worker runs commands below its own CPU priority, as serve does.
	niced := fmt.Sprintf("niceness %d\n", runner.StepNice)
	for _, want := range []string{"$ checkout octo/app at " + commit, "compiled\n", niced, "artifact set " + r.ArtifactDigest} {
		if !strings.Contains(buildLog.String(), want) {
			t.Errorf("build log lacks %q:\n%s", want, buildLog.String())
		}
	}
	// The worker uploaded the set: the server role fetches and verifies it.
	if _, err := serverArtifacts.Verify(ctx, r.ArtifactDigest); err != nil {
		t.Fatalf("the server cannot verify the worker's artifact set: %v", err)
	}

	var deployLog workLog
	r, err = steps.Dispatch(ctx, worker.StepWork{
		ExecutionID: 1, Step: "deploy-stage", Attempt: 1, Checkout: checkout, Env: env, Materialize: r.ArtifactDigest,
		Commands: []worker.WorkCommand{{Run: `cat "$STAGEHAND_ARTIFACTS/out/app.txt"; exit 3`, Timeout: time.Minute}},
	}, &deployLog)
	if err != nil {
		t.Fatalf("Dispatch(deploy): %v", err)
	}
	want := worker.WorkResult{Error: `"cat \"$STAGEHAND_ARTIFACTS/out/app.txt\"; exit 3" exited with status 3`}
	if r != want {
		t.Errorf("deploy result = %+v, want %+v", r, want)
	}
	if !strings.Contains(deployLog.String(), "built by octo/app\n") {
		t.Errorf("the deploy did not see the artifact set:\n%s", deployLog.String())
	}

	// Cancelled: the server asks the worker to stop; the commands are
	// stopped and the result says to run them again.
	stopCtx, stop := context.WithCancel(ctx)
	longLog := workLog{saw: make(chan struct{})}
	saw := longLog.saw
	go func() {
		select {
		case <-saw:
		case <-ctx.Done():
		}
		stop()
	}()
	r, err = steps.Dispatch(stopCtx, worker.StepWork{
		ExecutionID: 2, Step: "build", Attempt: 1, Checkout: checkout, Env: env, Collect: true,
		Commands: []worker.WorkCommand{{Run: `echo started; sleep 60`, Timeout: time.Minute}},
	}, &longLog)
	stop()
	if err != nil {
		t.Fatalf("Dispatch(cancelled): %v", err)
	}
	if !r.Retry || r.Succeeded {
		t.Errorf("cancelled result = %+v, want a retry", r)
	}
}

// TestWorkerRoleIsKeptToItsSubjects: the worker's NATS user cannot reach
// the webhook or step-job streams, other subjects, or change the bucket.
func TestWorkerRoleIsKeptToItsSubjects(t *testing.T) {
	serverURL, workerURL := rolesNATS(t)
	b := openBroker(t, BrokerOptions{URL: serverURL, DataDir: t.TempDir()})
	_ = newReplicaArtifacts(t, b)
	violations := make(chan string, 16)
	wc, err := nats.Connect(workerURL, nats.CustomInboxPrefix(WorkerInboxPrefix("")), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		violations <- err.Error()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	tests := []struct {
		name string
		try  func() error
		want string // in the server's permission violation
	}{
		{"publish a webhook", func() error { return wc.Publish(TopicWebhooks, []byte("{}")) }, "Publish to \"" + TopicWebhooks + "\""},
		{"publish a step job", func() error { return wc.Publish(TopicSteps, []byte("{}")) }, "Publish to \"" + TopicSteps + "\""},
		{"publish step work", func() error { return wc.Publish(StepWorkSubjects("").Run, []byte("{}")) }, "Publish to \"stagehand.work.run\""},
		{"cancel another's work", func() error { return wc.Publish(StepWorkSubjects("").Cancel+"x", nil) }, "Publish to \"stagehand.work.cancel.x\""},
		{"delete the bucket", func() error {
			return wc.Publish("$JS.API.STREAM.DELETE.OBJ_"+ArtifactsBucket(""), nil)
		}, "Publish to \"$JS.API.STREAM.DELETE.OBJ_stagehand_artifacts\""},
		{"read the step jobs", func() error { _, err := wc.SubscribeSync(TopicSteps); return err }, "Subscription to \"" + TopicSteps + "\""},
		{"read every subject", func() error { _, err := wc.SubscribeSync(">"); return err }, "Subscription to \">\""},
		{"read the servers' inboxes", func() error { _, err := wc.SubscribeSync("_INBOX.>"); return err }, "Subscription to \"_INBOX.>\""},
		{"read the workers' answers", func() error { _, err := wc.SubscribeSync(StepWorkSubjects("").Out + ">"); return err }, "Subscription to \"stagehand.work.out.>\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.try(); err != nil {
				t.Fatal(err)
			}
			if err := wc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-violations:
				if !strings.Contains(got, "Permissions Violation") || !strings.Contains(got, tt.want) {
					t.Errorf("error = %q, want a permissions violation naming %s", got, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("the server allowed it: no permissions violation")
			}
		})
	}
}

// TestDispatchWithoutWorkerFails: work nobody takes ends with an error.
func TestDispatchWithoutWorkerFails(t *testing.T) {
	b := openBroker(t, BrokerOptions{DataDir: t.TempDir()})
	steps := b.StepDispatcher()
	steps.AcceptTimeout = 100 * time.Millisecond
	_, err := steps.Dispatch(t.Context(), worker.StepWork{Step: "build"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no worker took the step") {
		t.Errorf("Dispatch = %v, want no worker took the step", err)
	}
}
