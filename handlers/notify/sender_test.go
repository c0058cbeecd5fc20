package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stagehand-dev/stagehand/bot"
)

// fakeSecrets holds secrets by name; it checks the directory asked for.
type fakeSecrets map[string]string

func (f fakeSecrets) Secret(prog bot.Program, env bot.EnvironmentName, name string) (string, error) {
	if env != bot.NotifySecretsDir {
		return "", fmt.Errorf("secret %s asked for in %s", name, env)
	}
	v, ok := f[name]
	if !ok {
		return "", fmt.Errorf("secret %s: missing", name)
	}
	return v, nil
}

// fakeOutbox keeps pending notifications in memory, as the store does.
type fakeOutbox struct {
	mu      sync.Mutex
	pending map[int64]*Pending
	nextAt  map[int64]time.Time
	results map[int64][]Result
}

func newOutbox(ps ...Pending) *fakeOutbox {
	o := &fakeOutbox{pending: map[int64]*Pending{}, nextAt: map[int64]time.Time{}, results: map[int64][]Result{}}
	for i := range ps {
		o.pending[ps[i].ID] = &ps[i]
	}
	return o
}

func (o *fakeOutbox) Due(_ context.Context, now time.Time, limit int) ([]Pending, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Pending
	for id, p := range o.pending {
		if !o.nextAt[id].After(now) && len(out) < limit {
			out = append(out, *p)
		}
	}
	return out, nil
}

func (o *fakeOutbox) Record(_ context.Context, id int64, r Result) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.results[id] = append(o.results[id], r)
	if r.Outcome == OutcomeRetry {
		o.pending[id].Attempts = r.Attempts
		o.nextAt[id] = r.NextAt
	} else {
		delete(o.pending, id)
	}
	return nil
}

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func message(ev bot.NotifyEvent) Message {
	prog := bot.Program{ID: 1, Owner: "acme", Repo: "shop"}
	ex := bot.Execution{ID: 7, ProgramID: 1, Number: 12, Pipeline: bot.ProdOnly, Commit: "0123456789abcdef0123456789abcdef01234567",
		Branch: "main", State: bot.ExecutionWaiting, Message: "waiting for approval", TriggeredBy: "mallory"}
	return Message{Delivery: "7c9e6679-7425-40de-944b-e07fc1f90ae7", Event: ev, At: t0, Program: prog, Execution: ex,
		URL: bot.ExecutionURL("https://stagehand.example.com", prog, ex.Number)}
}

// receiver is a local webhook receiver: it verifies every request's
// signature and answers from a script (status codes; 0: hang until the
// client gives up).
type receiver struct {
	t      *testing.T
	key    string
	mu     sync.Mutex
	script []int
	got    []received
}

type received struct {
	Delivery, Event string
	Body            map[string]any
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// What a receiver does: recompute the signature, compare in constant time.
	if want := Sign([]byte(rc.key), body); !hmac.Equal([]byte(want), []byte(r.Header.Get(HeaderSignature))) {
		rc.t.Errorf("signature %q, want %q", r.Header.Get(HeaderSignature), want)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil {
		rc.t.Errorf("body is not JSON: %v", err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, received{r.Header.Get(HeaderDelivery), r.Header.Get(HeaderEvent), decoded})
	status := http.StatusNoContent
	if len(rc.script) > 0 {
		status, rc.script = rc.script[0], rc.script[1:]
	}
	rc.mu.Unlock()
	if status == 0 {
		<-r.Context().Done() // a slow answer: the client's timeout ends it
		return
	}
	w.WriteHeader(status)
}

// TestWebhookRetriesUntilDelivered: a local receiver verifies the
// signature of each attempt; after a 500 and an answer too slow for the
// client, the third attempt arrives. Backoff doubles; the delivery id is
// the same each time; every attempt is counted.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	rc := &receiver{t: t, key: "s3cret-signing-key", script: []int{500, 0, 200}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	target := bot.NotificationTarget{Name: "audit-hook", Type: bot.NotifyWebhook, Events: bot.NotifyEvents, URLSecret: "HOOK_URL", SigningSecret: "HOOK_KEY"}
	outbox := newOutbox(Pending{ID: 1, Message: message(bot.NotifyWaitingForApproval), Target: target, CreatedAt: t0})
	clk := &clock{now: t0}
	metrics := NewMetrics(prometheus.NewRegistry())
	s := &Sender{Outbox: outbox, Secrets: fakeSecrets{"HOOK_URL": srv.URL + "/hook", "HOOK_KEY": rc.key},
		Client: &http.Client{Timeout: 100 * time.Millisecond}, Now: clk.Now, Metrics: metrics, Backoff: time.Minute}
	ctx := context.Background()
	for _, step := range []time.Duration{0, time.Minute, 2 * time.Minute} {
		clk.add(step)
		if err := s.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		// Nothing is due before its backoff has passed.
		if due, _ := outbox.Due(ctx, clk.now.Add(time.Second), 10); len(due) > 0 && clk.Now() != t0.Add(3*time.Minute) {
			t.Errorf("due again at once after attempt at %s", clk.Now())
		}
	}
	want := []Result{
		{Outcome: OutcomeRetry, Attempts: 1, NextAt: t0.Add(time.Minute), Error: "target audit-hook answered 500 Internal Server Error"},
		{Outcome: OutcomeRetry, Attempts: 2, NextAt: t0.Add(3 * time.Minute), Error: "posting to target audit-hook: no answer in time"},
		{Outcome: OutcomeSent, Attempts: 3},
	}
	if diff := cmp.Diff(want, outbox.results[1]); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if len(rc.got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(rc.got))
	}
	for _, g := range rc.got {
		if g.Delivery != "7c9e6679-7425-40de-944b-e07fc1f90ae7" || g.Event != "waiting-for-approval" {
			t.Errorf("headers: delivery %q event %q", g.Delivery, g.Event)
		}
	}
	body := rc.got[2].Body
	if body["program"] != "acme/shop" || body["approve"] != "/stagehand approve 12" ||
		body["execution"].(map[string]any)["url"] != "https://stagehand.example.com/programs/acme/shop/executions/12" {
		t.Errorf("body = %v", body)
	}
	for outcome, n := range map[Outcome]float64{OutcomeRetry: 2, OutcomeSent: 1, OutcomeGaveUp: 0} {
		if got := testutil.ToFloat64(metrics.Notifications.WithLabelValues(string(outcome))); got != n {
			t.Errorf("stagehand_notifications_total{outcome=%q} = %v, want %v", outcome, got, n)
		}
	}
}

// TestGivesUp: retries are bounded by attempts and by age; a 4xx is not
// retried. The reason never holds the URL.
func TestGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/gone") {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	slack := bot.NotificationTarget{Name: "releases", Type: bot.NotifySlack, Events: bot.NotifyEvents, URLSecret: "SLACK_URL"}
	for _, tc := range []struct {
		name      string
		path      string
		maxAge    time.Duration
		maxTries  int
		wantTries int
	}{
		{"six attempts", "/down", 24 * time.Hour, 0, 6},
		{"an hour", "/down", time.Hour, 10, 6},            // tries at 0, 1, 3, 7, 15, 31 min; the next would be at 63
		{"a short bound", "/down", 4 * time.Minute, 0, 3}, // tries at 0, 1, 3 min; the next would be at 7
		{"a 404", "/gone", time.Hour, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secretURL := srv.URL + "/services/T000/B000/SECRETTOKEN" + tc.path
			outbox := newOutbox(Pending{ID: 1, Message: message(bot.NotifyFailed), Target: slack, CreatedAt: t0})
			clk := &clock{now: t0}
			var logs bytes.Buffer
			s := &Sender{Outbox: outbox, Secrets: fakeSecrets{"SLACK_URL": secretURL}, Now: clk.Now, Backoff: time.Minute,
				MaxAge: tc.maxAge, MaxAttempts: tc.maxTries, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			for i := 0; i < 20 && len(outbox.pending) > 0; i++ {
				if err := s.Pass(context.Background()); err != nil {
					t.Fatal(err)
				}
				clk.now = outbox.nextAt[1] // the retry's time, to the nanosecond
			}
			rs := outbox.results[1]
			if len(rs) != tc.wantTries || rs[len(rs)-1].Outcome != OutcomeGaveUp {
				t.Fatalf("results = %+v, want %d attempts ending in gave-up", rs, tc.wantTries)
			}
			for _, r := range rs {
				if strings.Contains(r.Error, "SECRETTOKEN") || strings.Contains(r.Error, srv.URL) {
					t.Errorf("the reason shows the URL: %q", r.Error)
				}
			}
			if strings.Contains(logs.String(), "SECRETTOKEN") {
				t.Errorf("the logs show the URL:\n%s", logs.String())
			}
		})
	}
}

// TestUnreachableURLIsNotShown: a connection error (whose text Go writes
// with the URL) is retried and its reason does not name the URL.
func TestUnreachableURLIsNotShown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	secretURL := srv.URL + "/services/SECRETTOKEN"
	srv.Close() // nothing listens there now
	target := bot.NotificationTarget{Name: "releases", Type: bot.NotifySlack, URLSecret: "SLACK_URL"}
	s := &Sender{Secrets: fakeSecrets{"SLACK_URL": secretURL}, Now: func() time.Time { return t0 }}
	r := s.Attempt(context.Background(), Pending{ID: 1, Message: message(bot.NotifyFailed), Target: target, CreatedAt: t0})
	if r.Outcome != OutcomeRetry || r.Error == "" {
		t.Errorf("result = %+v, want a retry", r)
	}
	if strings.Contains(r.Error, "SECRETTOKEN") || strings.Contains(r.Error, srv.URL) {
		t.Errorf("the reason shows the URL: %q", r.Error)
	}
}

// TestPassBudget: a pass starts no attempt once it has run its budget;
// what is left is sent by the next pass.
func TestPassBudget(t *testing.T) {
	clk := &clock{now: t0}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.add(4 * time.Second) // each answer takes 4 s on the sender's clock
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	target := bot.NotificationTarget{Name: "releases", Type: bot.NotifySlack, URLSecret: "SLACK_URL"}
	var ps []Pending
	for id := int64(1); id <= 4; id++ {
		ps = append(ps, Pending{ID: id, Message: message(bot.NotifyStarted), Target: target, CreatedAt: t0})
	}
	outbox := newOutbox(ps...)
	s := &Sender{Outbox: outbox, Secrets: fakeSecrets{"SLACK_URL": srv.URL}, Now: clk.Now, PassBudget: 10 * time.Second}
	if err := s.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(outbox.results); n != 3 {
		t.Errorf("the first pass made %d attempts, want 3 (started at 0, 4 and 8 s)", n)
	}
	if err := s.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(outbox.pending) != 0 {
		t.Errorf("left after two passes: %d", len(outbox.pending))
	}
}
