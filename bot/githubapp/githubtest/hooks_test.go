package githubtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// jwtTransport authenticates every request as the App.
type jwtTransport struct{ t *testing.T }

func (j jwtTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+validJWT(j.t))
	return http.DefaultTransport.RoundTrip(r)
}

func appClient(t *testing.T, s *githubtest.Server) *github.Client {
	c := github.NewClient(&http.Client{Transport: jwtTransport{t}})
	u, _ := url.Parse(s.URL())
	c.BaseURL = u
	return c
}

// receiver is a webhook URL that answers each GUID with the status set for
// it (202 by default), or not at all within the sender's timeout for one
// set to -1, and keeps what it was sent.
type receiver struct {
	mu      sync.Mutex
	answers map[string]int
	got     []http.Header
	block   chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, r.Header.Clone())
	code, ok := rc.answers[r.Header.Get("X-GitHub-Delivery")]
	rc.mu.Unlock()
	if code == -1 {
		<-rc.block
		return
	}
	if !ok {
		code = http.StatusAccepted
	}
	w.WriteHeader(code)
}

func TestWebhookDeliveriesAreRecordedListedAndRedelivered(t *testing.T) {
	s := newServer(t, githubtest.WithWebhookTimeout(300*time.Millisecond))
	rc := &receiver{answers: map[string]int{"g-503": 503, "g-slow": -1}, block: make(chan struct{})}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	defer close(rc.block)
	secret := []byte("hook secret")
	s.SetWebhook(hook.URL+"/webhooks", secret)

	push := githubtest.Payload("push/branch-created.json")
	s.SendWebhook("push", "g-ok", push)
	s.SendWebhook("push", "g-503", push)
	s.SendWebhook("check_run", "g-slow", githubtest.Payload("check_run/requested_action.json"))
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	s.SetWebhook(closedURL+"/webhooks", secret)
	s.SendWebhook("push", "g-down", push)

	type row struct {
		GUID, Event, Action, Status string
		Code                        int
		Redelivery                  bool
	}
	rows := func(ds []githubtest.HookDelivery) []row {
		var out []row
		for _, d := range ds {
			out = append(out, row{d.GUID, d.Event, d.Action, d.Status, d.StatusCode, d.Redelivery})
		}
		return out
	}
	want := []row{
		{"g-ok", "push", "", "OK", 202, false},
		{"g-503", "push", "", "Invalid HTTP Response: 503", 503, false},
		{"g-slow", "check_run", "requested_action", "timed out", 0, false},
		{"g-down", "push", "", "failed to connect to host", 0, false},
	}
	if diff := cmp.Diff(want, rows(s.HookDeliveries())); diff != "" {
		t.Fatalf("recorded attempts (-want +got):\n%s", diff)
	}
	rc.mu.Lock()
	first := rc.got[0]
	rc.mu.Unlock()
	if got, want := first.Get("X-Hub-Signature-256"), githubtest.Sign(secret, push); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	if first.Get("X-GitHub-Event") != "push" || first.Get("X-GitHub-Delivery") != "g-ok" {
		t.Errorf("headers %v", first)
	}

	// Listed newest first, three per page, with GitHub's cursor in the Link header.
	ctx := context.Background()
	c := appClient(t, s)
	var listed []string
	opts := &github.ListCursorOptions{PerPage: 3}
	pages := 0
	for {
		page, resp, err := c.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range page {
			listed = append(listed, d.GetGUID()+"/"+d.GetStatus())
		}
		if resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	wantListed := []string{"g-down/failed to connect to host", "g-slow/timed out", "g-503/Invalid HTTP Response: 503", "g-ok/OK"}
	if diff := cmp.Diff(wantListed, listed); diff != "" || pages != 2 {
		t.Errorf("listed in %d pages (-want +got):\n%s", pages, diff)
	}

	// A redelivery: 202 at once, then a new attempt under the same GUID.
	s.SetWebhook(hook.URL+"/webhooks", secret)
	rc.mu.Lock()
	rc.answers["g-503"] = 200
	rc.mu.Unlock()
	id := s.HookDeliveries()[1].ID
	if _, _, err := c.Apps.RedeliverHookDelivery(ctx, id); !errors.As(err, new(*github.AcceptedError)) {
		t.Fatalf("redeliver: %v, want GitHub's 202 (go-github's AcceptedError)", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.HookDeliveries()) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the redelivery was not sent")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if diff := cmp.Diff(row{"g-503", "push", "", "OK", 200, true}, rows(s.HookDeliveries()[4:])[0]); diff != "" {
		t.Errorf("redelivery (-want +got):\n%s", diff)
	}
	if _, resp, err := c.Apps.RedeliverHookDelivery(ctx, 999999); err == nil || resp.StatusCode != 404 {
		t.Errorf("redeliver of an unknown id: %v, want 404", err)
	}
	if status, _ := do(t, "GET", s.URL()+"app/hook/deliveries", "", ""); status != 401 {
		t.Errorf("list without the App JWT: %d, want 401", status)
	}
	s.AssertNoErrors(t)
}
