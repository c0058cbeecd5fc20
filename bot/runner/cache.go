package runner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultCheckoutCacheKeep is how many checkouts a CheckoutCache keeps
// when Keep is 0.
const DefaultCheckoutCacheKeep = 16

// CheckoutCache keeps a pristine copy of recently checked-out commits, so
// that the later steps of an execution, and the other executions of the
// same commit, copy the files instead of fetching the commit again: a
// fresh checkout is a git init, a fetch from the remote and a checkout,
// five git processes or more; a copy is none.
//
// A kept checkout is exactly what Checkout made, copied before any step
// command ran in it: the commit's files with their modes and symbolic
// links, and its .git (the one commit, shallow, detached HEAD, origin's
// URL without a token). A step gets a copy, never the kept checkout
// itself, so what a step changes in its workspace reaches no other step.
// The cache's directory must be one no step command can see or write: the
// sandbox hides the data directory, and Dir lies under it.
//
// Kept checkouts are made in a temporary directory and renamed into place,
// so a concurrent step never copies a half-made one; one about to be
// removed is renamed away first, so a copy in progress fails rather than
// finishing short, and a failed copy falls back to a fresh checkout. Every
// copy is checked to hold the commit asked for in its HEAD.
type CheckoutCache struct {
	// Dir holds the kept checkouts, one directory each.
	Dir string
	// Keep is how many checkouts are kept; the least recently used go
	// first (default DefaultCheckoutCacheKeep).
	Keep int

	once  sync.Once
	mu    sync.Mutex
	inUse map[string]int // copies being made from an entry, by key
}

// Checkout puts exactly s.Commit into s.Dir, as Checkout does, from the
// cache when it holds the commit of that repository; otherwise it checks
// out from the remote and keeps a copy. hit reports which.
func (c *CheckoutCache) Checkout(ctx context.Context, s CheckoutSpec) (hit bool, err error) {
	commit, err := checkSpec(s, s.Commit)
	if err != nil {
		return false, fmt.Errorf("runner: checkout: %w", err)
	}
	_, clone, _, err := remoteURL(s)
	if err != nil {
		return false, fmt.Errorf("runner: checkout: %w", err)
	}
	c.once.Do(c.clean)
	key := cacheKey(clone, commit)
	if c.copyOut(key, commit, s.Dir) == nil {
		return true, nil
	}
	if err := Checkout(ctx, s); err != nil {
		return false, err
	}
	c.keep(key, s.Dir)
	return false, nil
}

// cacheKey names a repository's commit: the clone URL holds the owner
// and the repository, so two repositories never share an entry.
func cacheKey(clone, commit string) string {
	sum := sha256.Sum256([]byte(clone + "\n" + commit))
	return hex.EncodeToString(sum[:16])
}

// clean removes what an earlier process left half made or half removed.
func (c *CheckoutCache) clean() {
	entries, _ := os.ReadDir(c.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			os.RemoveAll(filepath.Join(c.Dir, e.Name()))
		}
	}
}

// copyOut copies the kept checkout of key into dir (which must not exist
// or be empty) and checks that its HEAD is commit. On error dir is left
// empty.
func (c *CheckoutCache) copyOut(key, commit, dir string) (err error) {
	src := filepath.Join(c.Dir, key)
	c.mu.Lock()
	if _, err := os.Stat(src); err != nil {
		c.mu.Unlock()
		return err
	}
	if c.inUse == nil {
		c.inUse = map[string]int{}
	}
	c.inUse[key]++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inUse[key]--
		if c.inUse[key] == 0 {
			delete(c.inUse, key)
		}
		c.mu.Unlock()
	}()
	created, err := prepareEmptyDir(dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			emptyDir(dir, created)
		}
	}()
	if err := copyTree(src, dir); err != nil {
		return err
	}
	if err := checkHead(dir, commit); err != nil {
		return err
	}
	now := time.Now()
	os.Chtimes(src, now, now) // the least recently used go first
	return nil
}

// checkHead reports an error unless the checkout in dir has commit
// checked out, detached (what Checkout leaves): .git/HEAD holds its sha.
func checkHead(dir, commit string) error {
	b, err := os.ReadFile(filepath.Join(dir, ".git", "HEAD"))
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(b)); got != commit {
		return fmt.Errorf("HEAD is %q after checkout, want %s", got, commit)
	}
	return nil
}

// keep copies a fresh checkout into the cache, before any command ran in
// it. It is best effort: a checkout that cannot be kept is fetched again
// next time.
func (c *CheckoutCache) keep(key, dir string) {
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return
	}
	tmp := filepath.Join(c.Dir, "."+key+"-"+rand.Text())
	if err := copyTree(dir, tmp); err != nil {
		os.RemoveAll(tmp)
		return
	}
	// A concurrent step of the same commit may have kept it first: the
	// rename fails on its non-empty directory and this copy goes.
	if err := os.Rename(tmp, filepath.Join(c.Dir, key)); err != nil {
		os.RemoveAll(tmp)
		return
	}
	c.prune()
}

// prune removes the least recently used checkouts beyond Keep that no
// copy is being made from.
func (c *CheckoutCache) prune() {
	keep := c.Keep
	if keep <= 0 {
		keep = DefaultCheckoutCacheKeep
	}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	type kept struct {
		name string
		used time.Time
	}
	var all []kept
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			all = append(all, kept{e.Name(), fi.ModTime()})
		}
	}
	if len(all) <= keep {
		return
	}
	slices.SortFunc(all, func(a, b kept) int { return b.used.Compare(a.used) })
	for _, k := range all[keep:] {
		c.mu.Lock()
		busy := c.inUse[k.name] > 0
		var gone string
		if !busy {
			// Renamed away under the lock: a copy starting now finds no
			// entry, and one of another process fails on the missing paths.
			gone = filepath.Join(c.Dir, ".gone-"+rand.Text())
			if os.Rename(filepath.Join(c.Dir, k.name), gone) != nil {
				gone = ""
			}
		}
		c.mu.Unlock()
		if gone != "" {
			os.RemoveAll(gone)
		}
	}
}

// copyTree copies the directory src to dst (which exists or is created),
// by path, never following a symbolic link: directories, regular files with
// their permission bits, and symbolic links as links. Anything else is an
// error, as is an entry that vanishes during the copy.
func copyTree(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", src)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		switch e.Type() {
		case fs.ModeDir:
			err = copyTree(from, to)
		case 0:
			err = copyFile(from, to)
		case fs.ModeSymlink:
			var target string
			if target, err = os.Readlink(from); err == nil {
				err = os.Symlink(target, to)
			}
		default:
			err = fmt.Errorf("%s is neither a file, a directory nor a symbolic link", from)
		}
		if err != nil {
			return err
		}
	}
	return os.Chmod(dst, fi.Mode().Perm())
}

// copyFile copies a regular file with its permission bits (not the
// umask's).
func copyFile(from, to string) (err error) {
	in, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", from)
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Chmod(fi.Mode().Perm())
}
