package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStalledUploads measures the resident memory (RSS) of a real
// `stagehand serve` process, the binary built from this checkout, while
// 200 connections each post a delivery announcing 24 MiB with a wrong
// signature, send part of it and then nothing more: its first 8 MiB, or
// all of it but the last byte (the worst case for the body budget: the
// uploads it lets in fill their whole buffer). Reported, in MiB: RSS at
// idle, its peak during the 15 s after the attack started (past the
// intake's 10 s body timeout), and RSS at their end; and how many of the
// uploads were answered by then. Each sub-benchmark starts its own server;
// the uploads are closed at the end of each run. Performance is measured
// here, never asserted; see BENCHMARKS.md for the command and the figures.
func BenchmarkStalledUploads(b *testing.B) {
	for _, c := range []struct {
		name string
		sent int
	}{
		{"sent-8MiB", 8 << 20},
		{"sent-24MiB-less-1B", 24<<20 - 1},
	} {
		b.Run(c.name, func(b *testing.B) { benchStalledUploads(b, c.sent) })
	}
}

func benchStalledUploads(b *testing.B, sent int) {
	const (
		uploads       = 200
		contentLength = 24 << 20
	)
	h := newLoadHarness(b)
	cmd := exec.Command(binary(b), append(h.args(), "--log-level", "info")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	pid := strconv.Itoa(cmd.Process.Pid)
	waitFor(b, 30*time.Second, "the server to be ready", func() bool {
		code, _ := h.get("/readyz")
		return code == http.StatusOK
	})
	rss := func() int64 {
		n, err := residentBytes(pid)
		if err != nil {
			b.Errorf("reading the server's RSS: %v", err) // also from the sampling goroutine
		}
		return n
	}
	const mib = 1 << 20
	var idle, peak, after, answered int64
	for range b.N {
		idle = rss()
		stop := samplePeak(20*time.Millisecond, rss)
		attack := startStalledUploads(b, h.addr, uploads, 0, contentLength, sent)
		time.Sleep(15 * time.Second)
		peak = stop()
		after = rss()
		answered = 0
		for _, n := range attack.answered() {
			answered += int64(n)
		}
		b.Logf("answers by status after 15 s: %v", attack.answered())
		attack.close()
	}
	b.ReportMetric(float64(idle)/mib, "idle-RSS-MiB")
	b.ReportMetric(float64(peak)/mib, "peak-RSS-MiB")
	b.ReportMetric(float64(after)/mib, "RSS-after-15s-MiB")
	b.ReportMetric(float64(answered), "answered-in-15s")
}

// stalledUploads are connections that each post a delivery announcing
// more body than they send, and then send nothing more.
type stalledUploads struct {
	conns   []net.Conn
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers map[int]int // connections by the status they were answered
}

// startStalledUploads opens n connections to addr; each posts a delivery
// announcing contentLength bytes and sends the first sent of them. The
// first unsigned send no X-Hub-Signature-256, the others a wrong one. It
// returns once every connection is open; the writes go on in the
// background (they block once the server stops reading).
func startStalledUploads(tb testing.TB, addr string, n, unsigned, contentLength, sent int) *stalledUploads {
	tb.Helper()
	s := &stalledUploads{answers: map[int]int{}}
	tb.Cleanup(s.close)
	part := bytes.Repeat([]byte(" "), sent) // shared: the client side holds one copy
	for i := range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatalf("opening upload %d: %v", i, err)
		}
		s.conns = append(s.conns, conn)
		signature := ""
		if i >= unsigned {
			signature = "X-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n"
		}
		head := fmt.Sprintf("POST /webhooks HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
			"X-GitHub-Event: push\r\nX-GitHub-Delivery: stalled-%d\r\n%s\r\n", addr, contentLength, i, signature)
		s.wg.Go(func() {
			if _, err := io.WriteString(conn, head); err == nil {
				_, _ = conn.Write(part)
			}
		})
		s.wg.Go(func() {
			line, err := bufio.NewReader(conn).ReadString('\n')
			status := 0 // closed without an answer
			if err == nil {
				_, _ = fmt.Sscanf(line, "HTTP/1.1 %d", &status)
			}
			s.mu.Lock()
			s.answers[status]++
			s.mu.Unlock()
		})
	}
	return s
}

// answered returns how many connections were answered with each status
// so far (0: closed without an answer).
func (s *stalledUploads) answered() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.answers)
}

// close closes every connection and waits for their goroutines.
func (s *stalledUploads) close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.wg.Wait()
}

// residentBytes is the VmRSS line of /proc/<pid>/status (pid "self": this
// process), in bytes.
func residentBytes(pid string) (int64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%s/status has no VmRSS line", pid)
}

// samplePeak calls read every interval until stop is called, and stop
// returns the largest value read.
func samplePeak(interval time.Duration, read func() int64) (stop func() int64) {
	quit := make(chan struct{})
	result := make(chan int64)
	go func() {
		peak := read()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				result <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() int64 {
		close(quit)
		return <-result
	}
}
