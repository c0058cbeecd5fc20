package main

import (
	"context"
	"io"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/router"
)

// TestServeStalledUploadsKeepMemoryBounded runs the whole server and opens
// 200 connections that each announce a 24 MiB delivery, send its first
// 8 MiB and stall: 100 without X-Hub-Signature-256, 100 with a wrong one.
// The bound: the Go heap (runtime/metrics, live and not yet collected
// objects) grows by at most the intake's body budget (64 MiB) plus 32 MiB
// for everything else 200 connections cost (their goroutines and buffers,
// on the server's and on this test's side). Before the budget the
// mis-signed uploads alone held their 8 MiB each, over 800 MiB.
//
// The unsigned ones are answered 401 before their body is read; two of the
// mis-signed ones fit the budget (2 × 24 MiB of 64 MiB) and are read; the
// other 98 wait 2 s for room and are answered 503. Signed deliveries sent
// meanwhile fit beside them and are answered 202.
func TestServeStalledUploadsKeepMemoryBounded(t *testing.T) {
	const (
		uploads       = 200
		unsigned      = 100
		contentLength = 24 << 20
		sent          = 8 << 20
		margin        = 32 << 20
		mib           = 1 << 20
	)
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, h.args(), func(string) string { return "" }, io.Discard, io.Discard) }()
	h.waitReady(t)
	push := githubtest.Payload("push/branch-created.json")
	// A first delivery, so that what the server makes at its first one is
	// in the baseline.
	if code := h.send(t, "push", "c1f5e0a0-0000-4000-8000-00000000d051", push); code != 202 {
		t.Fatalf("the first push answered %d, want 202", code)
	}

	runtime.GC()
	base := heapObjectBytes()
	stop := samplePeak(5*time.Millisecond, heapObjectBytes)
	attack := startStalledUploads(t, h.addr, uploads, unsigned, contentLength, sent)
	if code := h.send(t, "push", "c1f5e0a0-0000-4000-8000-00000000d052", push); code != 202 {
		t.Errorf("a signed delivery sent with the uploads answered %d, want 202", code)
	}
	waitFor(t, time.Minute, "the uploads that do not fit the budget to be answered", func() bool {
		a := attack.answered()
		return a[401]+a[503] >= uploads-2
	})
	if code := h.send(t, "push", "c1f5e0a0-0000-4000-8000-00000000d053", push); code != 202 {
		t.Errorf("a signed delivery sent while two uploads still stall answered %d, want 202", code)
	}
	peak := stop()
	if diff := cmp.Diff(map[int]int{401: unsigned, 503: uploads - unsigned - 2}, attack.answered()); diff != "" {
		t.Errorf("uploads answered by status (-want +got):\n%s", diff)
	}
	bound := base + router.DefaultBodyBudget + margin
	t.Logf("heap: %d MiB before, %d MiB at the peak, bound %d MiB", base/mib, peak/mib, bound/mib)
	if peak > bound {
		t.Errorf("the heap reached %d MiB under %d stalled uploads, over the bound of %d MiB (%d MiB before + the %d MiB body budget + %d MiB)",
			peak/mib, uploads, bound/mib, base/mib, router.DefaultBodyBudget/mib, margin/mib)
	}

	attack.close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

// heapObjectBytes is the memory the Go heap's objects occupy, live and
// not yet collected.
func heapObjectBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
