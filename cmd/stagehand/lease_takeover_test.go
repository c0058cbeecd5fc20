package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reporterLease reads the reporter lease's holder and expiry straight from
// the data directory's database.
func reporterLease(t *testing.T, dataDir string) (holder string, expires int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "stagehand.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT holder, expires_at FROM leases WHERE name = 'reporter'`).Scan(&holder, &expires)
	if err == sql.ErrNoRows {
		return "", 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return holder, expires
}

// The attack on the embedded lease takeover (a restarted server releases
// the leases a crashed run left): a second server started on a data
// directory a live server uses must not release the live server's leases.
// It stops at the data directory's lock before it touches them, so the
// live server keeps its reporter lease and goes on holding it.
func TestSecondServerOnADataDirInUseTakesNoLease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	h := newHarness(t)
	first := h.start(t, "first")
	h.waitReady(t)
	var holder string
	waitFor(t, 30*time.Second, "the first server to take the reporter lease", func() bool {
		holder, _ = reporterLease(t, h.dataDir)
		return holder != ""
	})

	// The second server listens elsewhere, so that what stops it is the
	// data directory, not the port.
	h.extra = []string{"--listen", "127.0.0.1:0"}
	second := h.start(t, "second")
	done := make(chan error, 1)
	go func() { done <- second.cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the second server on a data directory in use exited cleanly, want a refusal")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the second server on a data directory in use is still running after 60 s")
	}
	logs, _ := os.ReadFile(second.logs)
	if !strings.Contains(string(logs), "in use by another process") {
		t.Errorf("the second server's refusal does not say the data directory is in use:\n%s", logs)
	}
	if strings.Contains(string(logs), "took over the leases") {
		t.Errorf("the second server released the live server's leases:\n%s", logs)
	}
	// The live server still holds the lease, renewed by it.
	_, before := reporterLease(t, h.dataDir)
	waitFor(t, 30*time.Second, "the first server to renew its reporter lease", func() bool {
		now, expires := reporterLease(t, h.dataDir)
		return now == holder && expires > before
	})
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
}
