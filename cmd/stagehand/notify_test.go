package main

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/notify"
	"github.com/stagehand-dev/stagehand/handlers/web"
)

const notifyConfig = crashConfig + `notifications:
  - {name: hook, type: webhook, events: [started, succeeded, failed], url_secret: HOOK_URL, signing_secret: HOOK_KEY}
  - {name: chat, type: slack, events: [succeeded], url_secret: CHAT_URL}
`

// TestServeSendsNotifications: the real server, given a program whose
// default-branch file declares a signed webhook and a Slack target with
// their URLs and key in --secrets-dir, posts a push's started and
// succeeded to the webhook, signed, with the event and a delivery id; the
// Slack receiver refuses (404), so that notification is given up, and the
// execution's page and its JSON say so, naming the target but never its
// URL.
func TestServeSendsNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server and a pipeline; skipped with -short")
	}
	const key = "serve-notify-key"
	var mu sync.Mutex
	var got []string // "event delivery"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !hmac.Equal([]byte(notify.Sign([]byte(key), body)), []byte(r.Header.Get(notify.HeaderSignature))) {
			t.Errorf("the webhook's signature %q does not verify", r.Header.Get(notify.HeaderSignature))
		}
		var m struct {
			Event, Delivery string
			Execution       struct{ Number int }
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Event != r.Header.Get(notify.HeaderEvent) || m.Delivery != r.Header.Get(notify.HeaderDelivery) || m.Execution.Number != 1 {
			t.Errorf("the webhook got %s with headers %v (%v)", body, r.Header, err)
		}
		mu.Lock()
		got = append(got, m.Event)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	chat := httptest.NewServer(http.NotFoundHandler())
	defer chat.Close()

	h := newHarness(t)
	sha := h.localRepo(t, map[string]string{".github/stagehand.yml": notifyConfig, "run.sh": "mkdir -p dist && echo app > dist/app.txt\n"})
	h.gh.SetFile("Codertocat", "Hello-World", "master", ".github/stagehand.yml", []byte(notifyConfig))
	secrets := t.TempDir()
	dir := filepath.Join(secrets, "Codertocat", "Hello-World", bot.NotifySecretsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"HOOK_URL": hook.URL + "/in/HOOKPATH", "HOOK_KEY": key, "CHAT_URL": chat.URL + "/services/CHATPATH"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.startServe(t, "--dashboard", "public", "--secrets-dir", secrets)
	if code := h.send(t, "push", "notify-push", pushPayloadFor(t, sha)); code != http.StatusAccepted {
		t.Fatalf("push answered %d", code)
	}
	h.waitExecution(t, 1, bot.ExecutionSucceeded)

	var detail web.APIExecutionDetail
	waitFor(t, 60*time.Second, "both targets' notifications to be sent or given up", func() bool {
		status, body := h.get("/api/v1/programs/Codertocat/Hello-World/executions/1")
		if status != http.StatusOK || json.Unmarshal([]byte(body), &detail) != nil {
			return false
		}
		for _, n := range detail.Notifications {
			if n.State == string(bot.NotificationPending) {
				return false
			}
		}
		return len(detail.Notifications) == 3
	})
	mu.Lock()
	if diff := cmp.Diff([]string{"started", "succeeded"}, got); diff != "" {
		t.Errorf("the webhook received (-want +got):\n%s", diff)
	}
	mu.Unlock()
	var states []string
	for _, n := range detail.Notifications {
		states = append(states, n.Target+" "+n.Event+" "+n.State)
		if strings.Contains(n.LastError, "CHATPATH") || strings.Contains(n.LastError, "HOOKPATH") {
			t.Errorf("notification %s shows a URL: %q", n.Target, n.LastError)
		}
	}
	if diff := cmp.Diff([]string{"hook started sent", "hook succeeded sent", "chat succeeded gave-up"}, states); diff != "" {
		t.Errorf("the execution's notifications (-want +got):\n%s", diff)
	}
	status, page := h.get("/programs/Codertocat/Hello-World/executions/1")
	if status != http.StatusOK || !strings.Contains(page, "chat") || strings.Contains(page, "CHATPATH") {
		t.Errorf("the execution's page: %d, want the given-up notification to chat, never its URL:\n%s", status, page)
	}
}
