package handlers

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/notify"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// TestNotificationsNeverBlockThePipeline: a push's build and its promotion
// to the approval gate run to their end while the notification receiver
// hangs on its first request; once it answers, it gets every event of
// both executions in order, each signed with the target's key, and the
// outbox records them sent. The URL is in no record, check run or log.
func TestNotificationsNeverBlockThePipeline(t *testing.T) {
	const key = "notify-signing-key"
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string // "#N event"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !hmac.Equal([]byte(notify.Sign([]byte(key), body)), []byte(r.Header.Get(notify.HeaderSignature))) {
			t.Errorf("bad signature on %s", body)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		var m struct {
			Event     string `json:"event"`
			Execution struct{ Number int }
		}
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		got = append(got, "#"+strconv.Itoa(m.Execution.Number)+" "+m.Event)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	hookURL := srv.URL + "/hooks/SECRETPATH"
	secretsDir := t.TempDir()
	dir := filepath.Join(secretsDir, owner, repo, bot.NotifySecretsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"HOOK_URL": hookURL, "HOOK_KEY": key} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sampleConfig(splitPipelines) + "notifications:\n  - {name: hook, type: webhook, events: [started, waiting-for-approval, succeeded, failed], url_secret: HOOK_URL, signing_secret: HOOK_KEY}\n"

	e := newSurfaceEnv(t, cfg)
	sender := &notify.Sender{Outbox: notify.StoreOutbox{Store: e.store, PublicURL: "http://stagehand.test"},
		Secrets: worker.SecretsDir{Dir: secretsDir}, Client: &http.Client{Timeout: time.Minute}, Now: e.clock.Now}
	done := make(chan error, 1)
	go func() { done <- sender.Pass(context.Background()) }() // hangs on its first post

	// The pipeline runs while the receiver hangs.
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	if _, err := e.engine.Promote(context.Background(), bot.Internal("alice"), e.prog.ID, 1); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	mu.Lock()
	if len(got) != 0 {
		t.Errorf("the receiver answered before it was released: %v", got)
	}
	mu.Unlock()

	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := sender.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"#1 started", "#1 succeeded", "#2 started", "#2 waiting-for-approval"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("receiver got %v, want %v", got, want)
	}
	var notes []bot.Notification
	if err := e.store.View(context.Background(), func(tx bot.Tx) error {
		for _, id := range []int64{1, 2} {
			ex, err := tx.ExecutionByNumber(context.Background(), e.prog.ID, int(id))
			if err != nil {
				return err
			}
			ns, err := tx.NotificationsOf(context.Background(), ex.ID)
			if err != nil {
				return err
			}
			notes = append(notes, ns...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 4 {
		t.Fatalf("outbox holds %d notifications, want 4: %+v", len(notes), notes)
	}
	for _, n := range notes {
		if n.State != bot.NotificationSent || n.Attempts < 1 {
			t.Errorf("notification %s of execution %d: %s after %d attempts (%s)", n.Event, n.ExecutionID, n.State, n.Attempts, n.Error)
		}
	}
	var audit []bot.AuditRecord
	if err := e.store.View(context.Background(), func(tx bot.Tx) (err error) {
		audit, err = tx.AuditRecords(context.Background(), bot.AuditFilter{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range audit {
		if strings.Contains(r.Reason+r.Detail, "SECRETPATH") || strings.Contains(r.Reason+r.Detail, key) {
			t.Errorf("audit record %s shows a notification secret", r.Action)
		}
	}
	for _, n := range notes {
		if strings.Contains(n.Error, "SECRETPATH") {
			t.Errorf("notification record shows the URL: %q", n.Error)
		}
	}
	e.report()
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		if strings.Contains(cr.Output.Summary+cr.Output.Text+cr.Output.Title, "SECRETPATH") {
			t.Errorf("check run %s shows the notification URL", cr.Name)
		}
	}
}
