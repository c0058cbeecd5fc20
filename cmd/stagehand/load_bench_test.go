package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// loadClients is how many HTTP clients post deliveries at once, each on
// its own keep-alive connection.
const loadClients = 32

// BenchmarkServeLoad measures the whole server as GitHub sees it: run()
// serving on 127.0.0.1, loadClients concurrent keep-alive clients posting
// signed real push deliveries (push/branch-created.json, 8,827 bytes, each
// with its own GUID) over TCP. Reported: deliveries/s and the p50 and p99
// latency in ms of the 202 (request written to response read).
//
// The server handles what it accepts in the same process meanwhile, as in
// production: the installation exists but the stand-in has no
// .github/stagehand.yml, so each push costs a state lookup, one contents
// call to the stand-in (404) and one transaction recording "nothing
// started". Performance is measured here, never asserted; see
// BENCHMARKS.md.
func BenchmarkServeLoad(b *testing.B) {
	h := newLoadHarness(b)
	serveForBench(b, h)

	body := githubtest.Payload("push/branch-created.json")
	sig := githubtest.Sign([]byte(testSecret), body)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: loadClients, MaxIdleConnsPerHost: loadClients, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()
	post := func(guid string) (time.Duration, error) {
		req, err := http.NewRequest(http.MethodPost, h.url("/webhooks"), bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", guid)
		req.Header.Set("X-Hub-Signature-256", sig)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("delivery %s answered %d, want 202", guid, resp.StatusCode)
		}
		return took, nil
	}
	prefix := loadRandomHex(b)
	guid := func(i int64) string { return fmt.Sprintf("%s-0000-4000-8000-%012d", prefix, i) }
	// Open the connections before the clock starts.
	var warm sync.WaitGroup
	for i := range loadClients {
		warm.Go(func() {
			if _, err := post(guid(-int64(i) - 1)); err != nil {
				b.Errorf("warming up: %v", err)
			}
		})
	}
	warm.Wait()
	if b.Failed() {
		return
	}

	var next atomic.Int64
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range loadClients {
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N/loadClients+1)
			defer func() {
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				took, err := post(guid(i))
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, took)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(loadPercentileMillis(latencies, 0.50), "p50-ms")
	b.ReportMetric(loadPercentileMillis(latencies, 0.99), "p99-ms")
}

// newLoadHarness is newHarness for a benchmark: the GitHub stand-in knows
// the App, installation 1 and Codertocat/Hello-World, but no configuration
// file, so every push starts nothing.
func newLoadHarness(tb testing.TB) *harness {
	tb.Helper()
	gh := githubtest.New(tb)
	pemBytes, key := githubtest.GenerateAppKey(tb)
	gh.SetAppKey(testAppID, &key.PublicKey)
	gh.AddInstallation(1, "Codertocat")
	gh.AddRepo(1, "Codertocat", "Hello-World")
	dir := tb.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &harness{gh: gh, keyFile: keyFile, dataDir: filepath.Join(dir, "data"), addr: addr}
}

// serveForBench runs the server of h in this process, logging at info
// and discarding the logs, until stop is called or the benchmark ends; it
// returns once the server is ready.
func serveForBench(b *testing.B, h *harness) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// h.args() asks for debug logs; production runs at info.
	args := append(h.args(), "--log-level", "info")
	go func() { done <- run(ctx, args, func(string) string { return "" }, io.Discard, io.Discard) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.Errorf("the server stopped with: %v", err)
			}
		})
	}
	b.Cleanup(stop)
	waitServing(b, h, done)
	return stop
}

// waitServing waits for /readyz, or for the server to stop.
func waitServing(tb testing.TB, h *harness, done chan error) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := h.get("/readyz"); code == http.StatusOK {
			return
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			tb.Fatalf("the server stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatal("the server is not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func loadRandomHex(tb testing.TB) string {
	var buf [4]byte
	if _, err := rand.Read(buf[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(buf[:])
}

// loadPercentileMillis is the q-quantile (nearest rank) of sorted
// durations, in milliseconds.
func loadPercentileMillis(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}
