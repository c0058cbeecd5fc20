package state

import (
	"context"
	"errors"
	"fmt"
	"github.com/stagehand-dev/stagehand/bot"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// foundArtifacts are the files Collect copies, opened through root (dir with
// its symbolic links resolved) so that no read leaves it.
type foundArtifacts struct {
	root  *os.Root
	files []foundFile
}

type foundFile struct {
	path string // slash-separated path under dir, as the build wrote it
	real string // path in root, symbolic links resolved
}

// findArtifacts walks dir for the regular files that match globs. On success
// the caller closes the returned root.
func findArtifacts(ctx context.Context, dir string, globs []string) (foundArtifacts, error) {
	patterns, err := parseGlobs(globs)
	if err != nil {
		return foundArtifacts{}, err
	}
	base, err := filepath.EvalSymlinks(dir)
	if err == nil {
		base, err = filepath.Abs(base)
	}
	if err != nil {
		return foundArtifacts{}, fmt.Errorf("collect artifacts: %w", err)
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return foundArtifacts{}, fmt.Errorf("collect artifacts: %w", err)
	}
	w := &artifactWalker{ctx: ctx, dir: dir, base: base, root: root, globs: patterns, matched: make([]bool, len(globs))}
	if err := w.walk("", ".", []string{"."}); err != nil {
		root.Close()
		return foundArtifacts{}, err
	}
	var empty []string
	for i, g := range globs {
		if !w.matched[i] {
			empty = append(empty, g)
		}
	}
	if len(empty) > 0 {
		root.Close()
		return foundArtifacts{}, &ArtifactNoMatchError{Globs: empty}
	}
	return foundArtifacts{root: root, files: w.files}, nil
}

// parseGlobs splits each glob into its segments, rejecting globs that could
// never match a clean relative path or that path.Match cannot parse.
func parseGlobs(globs []string) ([][]string, error) {
	if len(globs) == 0 {
		return nil, errors.New("collect artifacts: no globs")
	}
	out := make([][]string, len(globs))
	for i, g := range globs {
		segs := strings.Split(g, "/")
		for _, s := range segs {
			bad := ""
			switch {
			case s == "":
				bad = "empty segment (a leading, trailing or double /)"
			case s == "." || s == "..":
				bad = "segments . and .. are not allowed"
			case s != "**":
				if _, err := path.Match(s, ""); err != nil {
					bad = err.Error()
				}
			}
			if bad != "" {
				return nil, fmt.Errorf("invalid artifact glob %q: %s", g, bad)
			}
		}
		out[i] = segs
	}
	return out, nil
}

// matchGlob reports whether the path of segments name matches the glob of
// segments pat, where a segment ** matches any number of segments.
func matchGlob(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchGlob(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// mayMatchBelow reports whether pat may match a path inside the directory
// of segments dir: it prunes the walk.
func mayMatchBelow(pat, dir []string) bool {
	for len(dir) > 0 {
		if len(pat) == 0 {
			return false
		}
		if pat[0] == "**" {
			return true
		}
		if ok, _ := path.Match(pat[0], dir[0]); !ok {
			return false
		}
		pat, dir = pat[1:], dir[1:]
	}
	return len(pat) > 0
}

type artifactWalker struct {
	ctx     context.Context
	dir     string // as the caller gave it, for messages
	base    string // dir, absolute, symbolic links resolved
	root    *os.Root
	globs   [][]string
	matched []bool // per glob
	files   []foundFile
}

// walk visits the directory rdir of root, found at the slash-separated path
// logical ("" for dir itself). stack holds the real paths of the directories
// being walked, to catch symbolic link loops.
func (w *artifactWalker) walk(logical, rdir string, stack []string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	d, err := w.root.Open(rdir)
	if err != nil {
		return fmt.Errorf("collect artifacts: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("collect artifacts: %w", err)
	}
	slices.SortFunc(entries, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })

	for _, e := range entries {
		lp := path.Join(logical, e.Name())
		rp := filepath.Join(rdir, e.Name())
		segs := strings.Split(lp, "/")
		match, below := w.matches(segs), w.mayMatchBelow(segs)
		if !match && !below {
			continue // no glob cares: not even a bad symbolic link matters
		}
		isDir, isFile := e.IsDir(), e.Type().IsRegular()
		if e.Type()&fs.ModeSymlink != 0 {
			target, info, err := w.resolve(lp, rp)
			if err != nil {
				return err
			}
			rp, isDir, isFile = target, info.IsDir(), info.Mode().IsRegular()
			if isDir && below && slices.Contains(stack, rp) {
				return fmt.Errorf("collect artifacts: symlink %s loops (to %s)", lp, filepath.Join(w.dir, rp))
			}
		}
		switch {
		case isDir && below:
			if err := w.walk(lp, rp, append(stack, rp)); err != nil {
				return err
			}
		case isFile && match:
			if err := w.add(lp, rp); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve follows the symbolic link at real path rp, found at logical path
// lp, and returns its target's real path in root when it stays inside dir.
func (w *artifactWalker) resolve(lp, rp string) (string, fs.FileInfo, error) {
	target, err := filepath.EvalSymlinks(filepath.Join(w.base, rp))
	if err != nil {
		return "", nil, fmt.Errorf("collect artifacts: symlink %s does not resolve: %w", lp, err)
	}
	rel, err := filepath.Rel(w.base, target)
	if err != nil || !filepath.IsLocal(rel) {
		return "", nil, fmt.Errorf("collect artifacts: symlink %s points outside %s (to %s)", lp, w.dir, target)
	}
	info, err := w.root.Stat(rel)
	if err != nil {
		return "", nil, fmt.Errorf("collect artifacts: symlink %s: %w", lp, err)
	}
	return rel, info, nil
}

func (w *artifactWalker) add(lp, rp string) error {
	if !bot.ValidArtifactPath(lp) {
		return fmt.Errorf("collect artifacts: cannot record the name %q (it needs valid UTF-8 without newlines)", lp)
	}
	segs := strings.Split(lp, "/")
	for i, g := range w.globs {
		if matchGlob(g, segs) {
			w.matched[i] = true
		}
	}
	w.files = append(w.files, foundFile{path: lp, real: rp})
	return nil
}

func (w *artifactWalker) matches(segs []string) bool {
	return slices.ContainsFunc(w.globs, func(g []string) bool { return matchGlob(g, segs) })
}

func (w *artifactWalker) mayMatchBelow(segs []string) bool {
	return slices.ContainsFunc(w.globs, func(g []string) bool { return mayMatchBelow(g, segs) })
}
