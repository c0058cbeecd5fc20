package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// TestByteBudget: a reservation that fits is taken at once, one that does
// not waits for bytes to be given back, and a small one is not queued
// behind a large one that waits.
func TestByteBudget(t *testing.T) {
	const long = 10 * time.Second // never reached when the test passes
	tests := []struct {
		name     string
		run      func(b *byteBudget) []bool // the results of its reservations
		want     []bool
		wantFree int64
	}{
		{
			name:     "fits",
			run:      func(b *byteBudget) []bool { return []bool{b.reserve(context.Background(), 60, 0)} },
			want:     []bool{true},
			wantFree: 40,
		},
		{
			name: "does not fit and nothing is given back",
			run: func(b *byteBudget) []bool {
				return []bool{b.reserve(context.Background(), 60, 0), b.reserve(context.Background(), 60, 50*time.Millisecond)}
			},
			want:     []bool{true, false},
			wantFree: 40,
		},
		{
			name: "fits once bytes are given back during the wait",
			run: func(b *byteBudget) []bool {
				first := b.reserve(context.Background(), 60, 0)
				go func() {
					waitReserving(b, 1)
					b.release(60)
				}()
				return []bool{first, b.reserve(context.Background(), 60, long)}
			},
			want:     []bool{true, true},
			wantFree: 40,
		},
		{
			name: "a small reservation passes a large one that waits",
			run: func(b *byteBudget) []bool {
				first := b.reserve(context.Background(), 60, 0)
				large := make(chan bool)
				go func() { large <- b.reserve(context.Background(), 80, long) }()
				waitReserving(b, 1) // the large one waits
				small := b.reserve(context.Background(), 30, 0)
				b.release(60) // 70 free: the large one still waits
				b.release(30) // 100 free: it fits
				return []bool{first, small, <-large}
			},
			want:     []bool{true, true, true},
			wantFree: 20,
		},
		{
			name: "the request ends while waiting",
			run: func(b *byteBudget) []bool {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return []bool{b.reserve(context.Background(), 100, 0), b.reserve(ctx, 1, long)}
			},
			want:     []bool{true, false},
			wantFree: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newByteBudget(100)
			got := tt.run(b)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reservations (-want +got):\n%s", diff)
			}
			b.mu.Lock()
			free, waiting := b.free, b.waiting
			b.mu.Unlock()
			if free != tt.wantFree {
				t.Errorf("free = %d, want %d", free, tt.wantFree)
			}
			if waiting != 0 {
				t.Errorf("%d reservations still counted as waiting", waiting)
			}
		})
	}
}

// waitReserving waits until n reservations wait for room in b (at most
// the test's long wait: a reservation that never waits leaves the test
// to fail on its results).
func waitReserving(b *byteBudget, n int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		w := b.waiting
		b.mu.Unlock()
		if w >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestIntakeBodyBudget runs the intake, storing into a real broker, with a
// small budget and short timeouts: a stalled mis-signed upload, over HTTP,
// holds its share of the budget; a small signed delivery still fits beside
// it; a large one waits BudgetWait and is answered 503 "busy"; the stalled
// upload is answered 408 when its body timeout ends, which frees its share;
// the same large delivery is then stored.
func TestIntakeBodyBudget(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	in := rig.intake
	in.BodyBudget = 256 << 10
	in.BudgetWait = 300 * time.Millisecond
	in.BodyTimeout = time.Second
	srv := httptest.NewServer(in)
	defer srv.Close()
	small := githubtest.Payload("push/branch-updated.go-playground.json")
	large := pushWithCommits(t, 128<<10)

	stalled := stallUpload(t, srv.Listener.Addr().String(), 192<<10, 16<<10)
	waitUntil(t, "the stalled upload to reserve its Content-Length", func() bool { return budgetFree(in) == 64<<10 })

	if got := rig.deliver(t, "small-1", small); got.Code != 202 {
		t.Fatalf("a 9 KB delivery beside the stalled upload answered %+v, want 202", got)
	}
	t0 := time.Now()
	got := rig.deliver(t, "large-1", large)
	waited := time.Since(t0)
	if got.Code != 503 || got.Status != OutcomeBusy || !strings.Contains(got.Message, "busy") || !strings.Contains(got.Message, "redeliver") {
		t.Errorf("a 128 KiB delivery past the budget answered %+v, want 503 busy saying to redeliver it", got)
	}
	if waited < in.BudgetWait {
		t.Errorf("the 503 came after %v, before the budget wait of %v", waited, in.BudgetWait)
	}

	if status := readStatusLine(t, stalled); !strings.HasPrefix(status, "HTTP/1.1 408 ") {
		t.Errorf("the stalled upload was answered %q, want 408", status)
	}
	waitUntil(t, "the stalled upload's share to be free again", func() bool { return budgetFree(in) == 256<<10 })
	if got := rig.deliver(t, "large-1", large); got.Code != 202 {
		t.Errorf("the 128 KiB delivery after the stalled upload ended answered %+v, want 202", got)
	}

	counts := map[string]float64{}
	for _, outcome := range []string{OutcomeAccepted, OutcomeBusy, OutcomeTimeout} {
		counts[outcome] = testutil.ToFloat64(rig.metrics.Deliveries.WithLabelValues("push", outcome))
	}
	if diff := cmp.Diff(map[string]float64{OutcomeAccepted: 2, OutcomeBusy: 1, OutcomeTimeout: 1}, counts); diff != "" {
		t.Errorf("deliveries by outcome (-want +got):\n%s", diff)
	}
	waitStreamMsgs(t, rig.broker, TopicWebhooks, 2) // the small and the large one
}

// stallUpload opens a connection that posts a mis-signed delivery
// announcing contentLength bytes, sends the first sent bytes of it and
// then nothing more. The connection is closed when the test ends.
func stallUpload(t *testing.T, addr string, contentLength, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST /webhooks HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: stalled\r\nX-Hub-Signature-256: %s\r\n\r\n", addr, contentLength, wrongSignature)
	if _, err := io.WriteString(conn, head+strings.Repeat(" ", sent)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readStatusLine reads the status line of the answer on conn.
func readStatusLine(t *testing.T, conn net.Conn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
