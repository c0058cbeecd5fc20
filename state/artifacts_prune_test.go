package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// TestArtifactPrune: sets keep does not name go, with the contents only
// they used; contents shared with a kept set stay; recent files stay
// whatever keep says (a build may be collecting them).
func TestArtifactPrune(t *testing.T) {
	ctx := t.Context()
	a, root := openTestArtifacts(t)
	collect := func(files map[string]string) ArtifactSet {
		t.Helper()
		dir := t.TempDir()
		writeArtifactTree(t, dir, files)
		set, err := a.Collect(ctx, dir, []string{"**"})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	old := collect(map[string]string{"app.js": "v1", "logo.png": "shared", "big.bin": "only in old, 26 bytes long"})
	kept := collect(map[string]string{"app.js": "v2", "logo.png": "shared"})
	// Age everything written so far by an hour.
	past := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, past, past)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A new set, collected "now", reuses an old content: neither goes.
	fresh := collect(map[string]string{"again.js": "v1"})

	keep := func(d string) bool { return d == kept.Digest }
	st, err := a.Prune(ctx, keep, time.Now().Add(-30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bot.PruneStats{Sets: 1, Blobs: 1, Bytes: int64(len("only in old, 26 bytes long")), Digests: []string{old.Digest}}, st); diff != "" {
		t.Errorf("Prune removed (-want +got):\n%s", diff)
	}
	if _, err := a.Get(ctx, old.Digest); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Get(pruned set) = %v, want not found", err)
	}
	for _, set := range []ArtifactSet{kept, fresh} {
		if _, err := a.Verify(ctx, set.Digest); err != nil {
			t.Errorf("Verify(%s) after pruning: %v", bot.ShortHash(set.Digest), err)
		}
	}
	if got := artifactBlobCount(t, root); got != 3 { // v1, v2, shared
		t.Errorf("%d contents left, want 3", got)
	}
	// Nothing more to do the second time.
	if st, err := a.Prune(ctx, keep, time.Now().Add(-30*time.Minute)); err != nil || cmp.Diff(bot.PruneStats{}, st) != "" {
		t.Errorf("second Prune = %+v, %v; want nothing removed", st, err)
	}
}
