package state

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// A server that crashed left its leases; the next server on the same data
// directory releases them at start and takes each at once, while a lease
// that had already expired stays as it was.
func TestSQLiteReleaseLeases(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "state.db"))
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	acquire := func(name, holder string, at time.Time, ttl time.Duration) bool {
		t.Helper()
		var held bool
		err := s.Update(t.Context(), func(tx bot.Tx) (err error) {
			held, err = tx.AcquireLease(t.Context(), name, holder, at, ttl)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	if !acquire("reporter", "crashed", now, 10*time.Second) || !acquire("redeliver", "crashed", now, 6*time.Minute) || !acquire("old", "crashed", now.Add(-time.Hour), time.Minute) {
		t.Fatal("the crashed run could not take its leases")
	}
	if acquire("reporter", "restarted", now.Add(time.Second), 10*time.Second) {
		t.Fatal("the reporter lease went to another holder before its expiry: the test proves nothing")
	}
	n, err := s.ReleaseLeases(t.Context(), now.Add(time.Second))
	if err != nil {
		t.Fatalf("ReleaseLeases: %v", err)
	}
	if n != 2 {
		t.Errorf("ReleaseLeases ended %d leases, want 2 (the expired one needs nothing)", n)
	}
	for _, name := range []string{"reporter", "redeliver", "old"} {
		if !acquire(name, "restarted", now.Add(time.Second), 10*time.Second) {
			t.Errorf("after ReleaseLeases the restarted server did not get the %s lease at once", name)
		}
	}
}
