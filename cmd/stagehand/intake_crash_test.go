package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/state"
)

// TestBurstThenSIGKILLKeepsEveryAcceptedDelivery is rule I under load,
// against the group-committing intake (router.Inbox): the real binary
// takes a concurrent burst of deliveries and is killed with SIGKILL while
// the burst still arrives, the moment three quarters are answered 202
// (most are then in the inbox, not yet in the broker, few handled); after
// a restart on the same data directory every delivery it answered 202 is
// processed.
func TestBurstThenSIGKILLKeepsEveryAcceptedDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	const deliveries, connections = 400, 32
	h := newHarness(t)
	first := h.start(t, "first")
	h.waitReady(t)

	body := githubtest.Payload("push/branch-created.json")
	sig := githubtest.Sign([]byte(testSecret), body)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: connections}}
	guids := make(chan string, deliveries)
	for i := range deliveries {
		guids <- fmt.Sprintf("burst-%04d-4000-8000-000000000000", i)
	}
	close(guids)
	var mu sync.Mutex
	var accepted []string
	other := map[string]int{}
	// The kill comes while the burst is still arriving: once three
	// quarters are answered 202, with up to 32 more in flight, some of
	// them answered 202 a moment before the kill.
	var kill sync.Once
	killNow := func() {
		kill.Do(func() {
			if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		})
	}
	var wg sync.WaitGroup
	for range connections {
		wg.Go(func() {
			for guid := range guids {
				req, err := http.NewRequest(http.MethodPost, h.url("/webhooks"), bytes.NewReader(body))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "ping")
				req.Header.Set("X-GitHub-Delivery", guid)
				req.Header.Set("X-Hub-Signature-256", sig)
				resp, err := client.Do(req)
				mu.Lock()
				switch {
				case err != nil:
					other["no answer"]++
				case resp.StatusCode == http.StatusAccepted:
					accepted = append(accepted, guid)
				default:
					other[resp.Status]++
				}
				n := len(accepted)
				mu.Unlock()
				if n == deliveries*3/4 {
					killNow()
				}
				if err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	killNow()
	_ = first.cmd.Wait()
	if len(accepted) < deliveries*3/4 {
		t.Fatalf("%d of %d deliveries answered 202 before the kill; the others: %v", len(accepted), deliveries, other)
	}
	before := len(unprocessed(t, h, accepted))
	t.Logf("%d of %d deliveries answered 202 (the others: %v); at the kill %d of them were not processed yet", len(accepted), deliveries, other, before)

	second := h.start(t, "second")
	h.waitReady(t)
	var left []string
	waitFor(t, 120*time.Second, "every accepted delivery to be processed after the restart", func() bool {
		left = unprocessed(t, h, accepted)
		return len(left) == 0
	})
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.cmd.Wait(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

// unprocessed returns the GUIDs that the server's state does not record as
// processed.
func unprocessed(t *testing.T, h *harness, guids []string) []string {
	t.Helper()
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(h.dataDir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out []string
	err = store.View(ctx, func(tx bot.Tx) error {
		for _, g := range guids {
			done, err := tx.DeliveryProcessed(ctx, g)
			if err != nil {
				return err
			}
			if !done {
				out = append(out, g)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
