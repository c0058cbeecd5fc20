package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// Retention of the artifact store: sets no execution keeps are removed,
// then the contents no remaining set names.

// Prune removes the artifact sets that keep does not name, then every
// stored content no remaining set refers to. Only files last written
// before spare are removed: a build collecting now writes its contents
// before its manifest, and reused contents get a new time (storeBlob), so a
// set being collected is never taken from under it.
func (a *Artifacts) Prune(ctx context.Context, keep func(digest string) bool, spare time.Time) (bot.PruneStats, error) {
	var st bot.PruneStats
	manifests, err := os.ReadDir(filepath.Join(a.root, "manifests"))
	if err != nil {
		return st, fmt.Errorf("prune artifacts: %w", err)
	}
	used := map[string]bool{}
	for _, m := range manifests {
		digest, ok := strings.CutSuffix(m.Name(), ".json")
		if !ok {
			continue
		}
		if keep(digest) || !olderThan(m, spare) {
			set, _, err := a.readManifest(ctx, digest)
			if err != nil {
				return st, fmt.Errorf("prune artifacts: reading kept set %s: %w", bot.ShortHash(digest), err)
			}
			for _, f := range set.Files {
				used[f.SHA256] = true
			}
			continue
		}
		if err := os.Remove(a.manifestPath(digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("prune artifacts: %w", err)
		}
		st.Sets++
		st.Digests = append(st.Digests, digest)
	}
	err = filepath.WalkDir(filepath.Join(a.root, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if used[d.Name()] || !olderThan(d, spare) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		st.Blobs++
		st.Bytes += info.Size()
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("prune artifacts: %w", err)
	}
	return st, nil
}

// olderThan reports whether d was last written before t (a file that is
// gone counts as recent: nothing to do).
func olderThan(d fs.DirEntry, t time.Time) bool {
	info, err := d.Info()
	return err == nil && info.ModTime().Before(t)
}
