package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// TestServe runs the whole server in-process on a real port: a signed push
// is stored, handled, and queues the stage-only execution; the same
// delivery GUID again is acknowledged and changes nothing; health, readiness
// and metrics answer; cancelling the context shuts it down cleanly.
func TestServe(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, h.args(), func(string) string { return "" }, io.Discard, logs) }()
	h.waitReady(t)

	push := githubtest.Payload("push/branch-created.json")
	const guid = "c1f5e0a0-0000-4000-8000-000000000001"
	if code := h.send(t, "push", guid, push); code != 202 {
		t.Fatalf("push answered %d, want 202", code)
	}
	waitFor(t, 20*time.Second, "the push to queue an execution", func() bool { return len(h.executions(t)) == 1 })
	if code := h.send(t, "push", guid, push); code != 202 {
		t.Fatalf("the same delivery again answered %d, want 202", code)
	}
	if code := h.send(t, "star", "c1f5e0a0-0000-4000-8000-000000000002", []byte(`{}`)); code != 202 {
		t.Fatalf("an unused event answered %d, want 202", code)
	}
	// The intake counts the duplicate as it answers it from the store; one
	// accepted instead is counted "accepted" a second time.
	const dup, again = `stagehand_webhook_deliveries_total{event="push",outcome="duplicate"} 1`,
		`stagehand_webhook_deliveries_total{event="push",outcome="accepted"} 2`
	var m string
	waitFor(t, 20*time.Second, "the intake to count the duplicate delivery", func() bool {
		_, m = h.get("/metrics")
		return strings.Contains(m, dup) || strings.Contains(m, again)
	})
	if strings.Contains(m, again) {
		t.Fatalf("the same delivery GUID was accepted a second time; /metrics has %q", again)
	}
	es := h.executions(t)
	if len(es) != 1 || es[0].Pipeline != bot.StageOnly || es[0].Commit != pushSHA || es[0].DeliveryID != guid {
		t.Fatalf("executions = %+v, want one stage-only at %s from delivery %s", es, pushSHA, guid)
	}
	if got := h.contentsCalls(); got != 1 {
		t.Errorf("configuration fetched %d times, want 1 (the duplicate must not be processed)", got)
	}

	if code, body := h.get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, body)
	}
	// The router counts a handled message after its handler returns (the
	// push's check runs and engine nudge come after its transaction), and
	// the intake observes its duration as it answers: poll until they are
	// all there.
	wants := []string{
		`stagehand_webhook_deliveries_total{event="push",outcome="accepted"} 1`,
		// The same GUID again, after it was processed: answered from the
		// store, not stored a second time.
		`stagehand_webhook_deliveries_total{event="push",outcome="duplicate"} 1`,
		`stagehand_webhook_deliveries_total{event="other",outcome="ignored"} 1`,
		`stagehand_messages_handled_total{event="push",outcome="ok"} 1`,
		`stagehand_webhook_intake_duration_seconds_count 3`,
		`stagehand_poison_queue_messages 0`,
		`stagehand_handler_errors_total{event="push"} 0`,
	}
	missing := wants
	for deadline := time.Now().Add(20 * time.Second); len(missing) > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, metrics := h.get("/metrics")
		missing = nil
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = append(missing, want)
			}
		}
	}
	for _, want := range missing {
		t.Errorf("/metrics lacks %q", want)
	}
	// The reporter's GitHub calls are counted per execution.
	waitFor(t, 20*time.Second, "GitHub API calls of the execution in /metrics", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `stagehand_github_api_calls_total{for="execution/`)
	})
	if !strings.Contains(logs.String(), "delivery_id="+guid) {
		t.Errorf("no log line carries delivery_id=%s:\n%s", guid, logs)
	}
	h.gh.AssertNoErrors(t)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel = %v, want nil", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40s of its context ending")
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("no shutdown line in the logs:\n%s", logs)
	}
}

// TestServeReadsEnvironment starts the server configured only through
// STAGEHAND_* variables, the private key given as PEM in the environment.
func TestServeReadsEnvironment(t *testing.T) {
	h := newHarness(t)
	pem, err := readFile(h.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"STAGEHAND_LISTEN": h.addr, "STAGEHAND_DATA_DIR": h.dataDir, "STAGEHAND_GITHUB_APP_ID": "4242",
		"STAGEHAND_GITHUB_PRIVATE_KEY": string(pem), "STAGEHAND_GITHUB_WEBHOOK_SECRET": testSecret,
		"STAGEHAND_GITHUB_API_URL": h.gh.URL(), "STAGEHAND_LOG_FORMAT": "json",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, logs) }()
	h.waitReady(t)
	if code := h.send(t, "push", "env-1", githubtest.Payload("push/branch-created.json")); code != 202 {
		t.Fatalf("push answered %d", code)
	}
	waitFor(t, 20*time.Second, "the push to queue an execution", func() bool { return len(h.executions(t)) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"delivery_id":"env-1"`) {
		t.Errorf("json logs lack the delivery id:\n%s", logs)
	}
}

func TestServeRefusesToStartWithoutCredentials(t *testing.T) {
	stderr := &syncBuffer{}
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir()}, func(string) string { return "" }, io.Discard, stderr)
	if err == nil {
		t.Fatal("serve started without a webhook secret, an app ID or a private key")
	}
	for _, want := range []string{"--github-app-id", "STAGEHAND_GITHUB_APP_ID", "--github-private-key-file", "STAGEHAND_GITHUB_PRIVATE_KEY", "--github-webhook-secret", "never accepts unsigned deliveries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not mention %q:\n%v", want, err)
		}
	}
}

func TestServeHelpNamesEveryFlagAndVariable(t *testing.T) {
	stderr := &syncBuffer{}
	if err := run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, io.Discard, stderr); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"listen", "public-url", "data-dir", "github-app-id", "github-private-key-file",
		"github-webhook-secret", "github-webhook-secret-file", "github-api-url", "github-git-url", "database-url", "nats-url", "nats-prefix", "nats-sync-interval", "log-level", "log-format"} {
		env := "STAGEHAND_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
		if !strings.Contains(stderr.String(), "--"+flag) || !strings.Contains(stderr.String(), env) {
			t.Errorf("serve --help lacks --%s or %s", flag, env)
		}
	}
}
