package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// intakeBenchClients is how many deliveries are in flight at once: the
// benchmark runs this many goroutines whatever GOMAXPROCS is (rounded up to
// a multiple of it), like as many concurrent GitHub connections.
const intakeBenchClients = 32

const intakeBenchSecret = "benchmark webhook secret"

// BenchmarkIntake measures POST /webhooks as the server answers it: the
// real Intake (signature checked, JSON checked, metrics) storing each
// delivery durably before the 202. "9KB" and "25KB" are serve's embedded
// wiring: the Inbox (one SQLite commit and fsync for every delivery
// waiting), forwarding into a real embedded broker as the run goes;
// "-direct" publishes each delivery to the broker and waits for its own
// fsync, as before the inbox (and as with an external NATS). Each
// sub-benchmark run has a fresh broker and inbox; nobody consumes the
// stream.
//
// Reported: deliveries/s, and the p50 and p99 latency of ServeHTTP in ms.
// Performance is measured here, never asserted. See BENCHMARKS.md for the
// command and the figures.
func BenchmarkIntake(b *testing.B) {
	cases := []struct {
		name string
		body []byte
	}{
		// A real push delivery, 8,471 bytes.
		{"9KB", githubtest.Payload("push/branch-updated.go-playground.json")},
		// The real branch-created push with its commits repeated: a push of
		// a few dozen commits.
		{"25KB", pushWithCommits(b, 25_000)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchIntake(b, c.body, 0, true) })
		b.Run(c.name+"-direct", func(b *testing.B) { benchIntake(b, c.body, 0, false) })
		// --nats-sync-interval 1s: the store is flushed once a second
		// instead of before every 202 (a power loss may lose the last second).
		b.Run(c.name+"-sync-1s", func(b *testing.B) { benchIntake(b, c.body, time.Second, true) })
	}
}

// pushWithCommits returns push/branch-created.json with its commits array
// repeated until the (indented) JSON is at least size bytes.
func pushWithCommits(tb testing.TB, size int) []byte {
	tb.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(githubtest.Payload("push/branch-created.json"), &doc); err != nil {
		tb.Fatal(err)
	}
	var one []json.RawMessage
	if err := json.Unmarshal(doc["commits"], &one); err != nil || len(one) == 0 {
		tb.Fatalf("the push payload has no commits (%v)", err)
	}
	commits := slices.Clone(one)
	for {
		raw, err := json.Marshal(commits)
		if err != nil {
			tb.Fatal(err)
		}
		doc["commits"] = raw
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		if len(out) >= size {
			return out
		}
		commits = append(commits, one...)
	}
}

func benchIntake(b *testing.B, body []byte, syncEvery time.Duration, inbox bool) {
	broker := openBenchBroker(b, syncEvery)
	draining := b.N > workQueueMaxMsgs/2
	if draining {
		// The stream refuses new messages at workQueueMaxMsgs (the intake
		// would answer 503): acknowledge them as they come. This costs CPU
		// the figures then include; the documented command stays below.
		b.Logf("b.N=%d is near the stream limit of %d: draining the stream during the run", b.N, workQueueMaxMsgs)
		drainWebhooks(b, broker)
	}
	in := &Intake{
		Secrets: [][]byte{[]byte(intakeBenchSecret)}, Publisher: broker.Publisher(),
		Events: testEvents, Metrics: NewMetrics(broker.PoisonCount), Logger: slog.New(slog.DiscardHandler),
	}
	var ib *Inbox
	if inbox {
		var err error
		ib, err = OpenInbox(context.Background(), InboxOptions{Path: filepath.Join(b.TempDir(), "intake.db"), NoSync: syncEvery > 0}, broker)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := ib.Close(); err != nil {
				b.Errorf("closing the inbox: %v", err)
			}
		})
		in.Publisher = ib
	}
	sig := githubtest.Sign([]byte(intakeBenchSecret), body)
	prefix := randomHex(b, 8) // GUIDs unique across runs and within the duplicate window
	var seq atomic.Int64

	var mu sync.Mutex
	latencies := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism((intakeBenchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		defer func() {
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
		for pb.Next() {
			guid := fmt.Sprintf("%s-0000-4000-8000-%012d", prefix, seq.Add(1))
			req := httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", guid)
			req.Header.Set("X-Hub-Signature-256", sig)
			rec := httptest.NewRecorder()
			t0 := time.Now()
			in.ServeHTTP(rec, req)
			mine = append(mine, time.Since(t0))
			if rec.Code != http.StatusAccepted {
				b.Errorf("delivery %s answered %d %s, want 202", guid, rec.Code, rec.Body)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatencies(b, elapsed, latencies)
	if !draining && !b.Failed() {
		// Every delivery was stored, none dropped as a duplicate (the
		// inbox forwards what it still holds first).
		deadline := time.Now().Add(5 * time.Minute)
		for {
			s, err := broker.js.Stream(context.Background(), broker.routes[TopicWebhooks].stream)
			if err != nil {
				b.Fatal(err)
			}
			n := s.CachedInfo().State.Msgs
			if n == uint64(b.N) {
				break
			}
			if n > uint64(b.N) || time.Now().After(deadline) {
				b.Errorf("the webhooks stream holds %d messages after %d deliveries", n, b.N)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// openBenchBroker opens an embedded broker in a fresh directory, closed
// when the benchmark run ends.
func openBenchBroker(b *testing.B, syncEvery time.Duration) *Broker {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	broker, err := OpenBroker(ctx, BrokerOptions{DataDir: b.TempDir(), SyncInterval: syncEvery})
	if err != nil {
		b.Fatalf("OpenBroker: %v", err)
	}
	b.Cleanup(func() {
		if err := broker.Close(); err != nil {
			b.Errorf("closing the broker: %v", err)
		}
	})
	return broker
}

// drainWebhooks acknowledges every webhook message until the run ends.
func drainWebhooks(b *testing.B, broker *Broker) {
	ctx, stop := context.WithCancel(context.Background())
	sub := broker.Subscriber()
	ch, err := sub.Subscribe(ctx, TopicWebhooks)
	if err != nil {
		b.Fatalf("subscribing to drain the stream: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ch {
			msg.Ack()
		}
	}()
	b.Cleanup(func() {
		stop()
		<-done
		_ = sub.Close()
	})
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	buf := make([]byte, n/2)
	if _, err := rand.Read(buf); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

// reportLatencies reports the throughput of the run and the p50 and p99 of
// the per-delivery latencies.
func reportLatencies(b *testing.B, elapsed time.Duration, latencies []time.Duration) {
	b.Helper()
	if len(latencies) == 0 || elapsed <= 0 {
		return
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(percentileMillis(latencies, 0.50), "p50-ms")
	b.ReportMetric(percentileMillis(latencies, 0.99), "p99-ms")
}

// percentileMillis is the q-quantile (nearest rank) of sorted durations, in
// milliseconds.
func percentileMillis(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}
