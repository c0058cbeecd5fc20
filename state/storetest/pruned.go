package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testPrunedArtifacts: a set recorded pruned is read back with its time,
// to the microsecond; pruned again, it takes the new time; a set never
// recorded, or an empty digest, is not in the answer.
func testPrunedArtifacts(t *testing.T, s bot.Store) {
	ctx := t.Context()
	a, b, never := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	first, later := t0, t0.Add(48*time.Hour)
	read := func() map[string]time.Time {
		t.Helper()
		var got map[string]time.Time
		view(t, s, func(tx bot.Tx) (err error) {
			got, err = tx.PrunedAt(ctx, []string{a, b, never, "", a})
			return err
		})
		return got
	}
	if diff := cmp.Diff(map[string]time.Time{}, read()); diff != "" {
		t.Errorf("PrunedAt before any (-want +got):\n%s", diff)
	}
	update(t, s, func(tx bot.Tx) error { return tx.RecordPruned(ctx, []string{a, b}, first) })
	if diff := cmp.Diff(map[string]time.Time{a: first.UTC(), b: first.UTC()}, read()); diff != "" {
		t.Errorf("PrunedAt after the first pass (-want +got):\n%s", diff)
	}
	update(t, s, func(tx bot.Tx) error { return tx.RecordPruned(ctx, []string{b}, later) })
	if diff := cmp.Diff(map[string]time.Time{a: first.UTC(), b: later.UTC()}, read()); diff != "" {
		t.Errorf("PrunedAt after b was pruned again (-want +got):\n%s", diff)
	}
}
