package runner_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// richRepo is acme/app with an executable script, a symbolic link, a
// nested directory and a read-only file in its one commit.
func richRepo(t *testing.T) (testRepo, string) {
	t.Helper()
	r := newRepo(t, false)
	files := map[string]struct {
		content string
		mode    os.FileMode
	}{
		"build.sh":            {"#!/bin/sh\necho built\n", 0o755},
		"src/deep/main.go":    {"package main\n", 0o644},
		"src/deep/readonly":   {"frozen\n", 0o444},
		"docs/README.md":      {"# app\n", 0o644},
		".github/stagehand.y": {"version: 1\n", 0o644},
	}
	for name, f := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("docs/README.md", filepath.Join(r.dir, "README")); err != nil {
		t.Fatal(err)
	}
	git(t, r.dir, "add", "-A")
	git(t, r.dir, "commit", "-q", "-m", "rich")
	return r, git(t, r.dir, "rev-parse", "HEAD")
}

// treeOf lists every entry under dir with its type, permission bits and
// content (a link's target). .git/index (the files' inodes and times) and
// .git/logs (the time of the checkout) differ between any two checkouts;
// they are left out.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == filepath.Join(".git", "index") || strings.HasPrefix(rel, filepath.Join(".git", "logs")) {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cacheCheckout checks out commit through c into a new directory; it
// returns the directory and whether the cache had it.
func cacheCheckout(t *testing.T, c *runner.CheckoutCache, r testRepo, commit string) (string, bool) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	hit, err := c.Checkout(testCtx(t), r.spec(commit, dir))
	if err != nil {
		t.Fatalf("CheckoutCache.Checkout(%s): %v", commit, err)
	}
	return dir, hit
}

func cacheEntries(t *testing.T, c *runner.CheckoutCache) []string {
	t.Helper()
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCheckoutCacheCopyIsTheCheckout: a checkout from the cache holds the
// same files, modes, links and .git as a fresh checkout of the commit.
func TestCheckoutCacheCopyIsTheCheckout(t *testing.T) {
	r, sha := richRepo(t)
	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := runner.Checkout(testCtx(t), r.spec(sha, fresh)); err != nil {
		t.Fatal(err)
	}
	c := &runner.CheckoutCache{Dir: filepath.Join(t.TempDir(), "cache")}
	first, hit := cacheCheckout(t, c, r, sha)
	if hit {
		t.Fatal("the first checkout was a hit")
	}
	second, hit := cacheCheckout(t, c, r, sha)
	if !hit {
		t.Fatal("the second checkout of the same commit was not a hit")
	}
	want := treeOf(t, fresh)
	for name, dir := range map[string]string{"fetched": first, "copied": second} {
		if diff := cmp.Diff(want, treeOf(t, dir)); diff != "" {
			t.Errorf("%s checkout differs from a fresh one (-fresh +%s):\n%s", name, name, diff)
		}
	}
	// git itself agrees: exactly the commit, detached, shallow, clean.
	if got := stateOf(t, second); got.Head != sha || !got.Detached || !got.Shallow {
		t.Errorf("copied checkout: %+v, want HEAD %s detached and shallow", got, sha)
	}
	if st := git(t, second, "status", "--porcelain"); st != "" {
		t.Errorf("git status in the copy: %q, want clean", st)
	}
}

// TestCheckoutCacheStepChangesStayInTheWorkspace is the attack on the
// cache from a step: whatever a step does to its checkout (files written,
// changed, removed, made writable, HEAD moved, objects removed) the next
// step of the same commit gets the commit as fetched.
func TestCheckoutCacheStepChangesStayInTheWorkspace(t *testing.T) {
	r, sha := richRepo(t)
	c := &runner.CheckoutCache{Dir: filepath.Join(t.TempDir(), "cache")}
	first, _ := cacheCheckout(t, c, r, sha)
	want := treeOf(t, first)
	tamper := func(dir string) {
		t.Helper()
		for _, f := range []func() error{
			func() error { return os.WriteFile(filepath.Join(dir, "build.sh"), []byte("echo pwned\n"), 0o755) },
			func() error { return os.WriteFile(filepath.Join(dir, "planted"), []byte("x"), 0o644) },
			func() error { return os.Remove(filepath.Join(dir, "docs", "README.md")) },
			func() error { return os.Chmod(filepath.Join(dir, "src", "deep", "readonly"), 0o666) },
			func() error { return os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte(r.one+"\n"), 0o644) },
			func() error { return os.RemoveAll(filepath.Join(dir, ".git", "objects")) },
		} {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
	}
	tamper(first) // the step that fetched it
	second, hit := cacheCheckout(t, c, r, sha)
	if !hit {
		t.Fatal("the second checkout was not a hit")
	}
	if diff := cmp.Diff(want, treeOf(t, second)); diff != "" {
		t.Errorf("after the first step changed its checkout (-want +got):\n%s", diff)
	}
	tamper(second) // a step that copied it
	third, _ := cacheCheckout(t, c, r, sha)
	if diff := cmp.Diff(want, treeOf(t, third)); diff != "" {
		t.Errorf("after the second step changed its checkout (-want +got):\n%s", diff)
	}
}

// TestCheckoutCacheExactCommit: each commit, and each repository, has its
// own entry; a checkout is never another commit's or repository's.
func TestCheckoutCacheExactCommit(t *testing.T) {
	r := newRepo(t, false)
	c := &runner.CheckoutCache{Dir: filepath.Join(t.TempDir(), "cache")}
	for _, tc := range []struct {
		commit, version string
	}{{r.one, "one\n"}, {r.two, "two\n"}, {r.three, "three\n"}, {r.one, "one\n"}, {strings.ToUpper(r.two), "two\n"}} {
		dir, _ := cacheCheckout(t, c, r, tc.commit)
		want := checkoutState{Version: tc.version, Head: strings.ToLower(tc.commit), Detached: true, Shallow: true}
		if diff := cmp.Diff(want, stateOf(t, dir)); diff != "" {
			t.Errorf("checkout of %s (-want +got):\n%s", tc.commit, diff)
		}
	}
	if got := len(cacheEntries(t, c)); got != 3 {
		t.Errorf("%d entries for three commits", got)
	}
	// The same commit in another repository (a fork) is its own entry.
	fork := r
	fork.repo = "fork"
	if err := os.Symlink(r.dir, filepath.Join(filepath.Dir(r.dir), "fork")); err != nil {
		t.Fatal(err)
	}
	if _, hit := cacheCheckout(t, c, fork, r.one); hit {
		t.Error("acme/fork's checkout came from acme/app's entry")
	}
}

// TestCheckoutCacheDamagedEntry: an entry whose HEAD is not its commit is
// not used: the checkout is fetched afresh.
func TestCheckoutCacheDamagedEntry(t *testing.T) {
	r := newRepo(t, false)
	c := &runner.CheckoutCache{Dir: filepath.Join(t.TempDir(), "cache")}
	cacheCheckout(t, c, r, r.two)
	entries := cacheEntries(t, c)
	if len(entries) != 1 {
		t.Fatalf("entries: %q", entries)
	}
	head := filepath.Join(c.Dir, entries[0], ".git", "HEAD")
	if err := os.WriteFile(head, []byte(r.one+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, hit := cacheCheckout(t, c, r, r.two)
	if hit {
		t.Error("a damaged entry was used")
	}
	if got := stateOf(t, dir); got.Head != r.two || got.Version != "two\n" {
		t.Errorf("checkout: %+v, want %s", got, r.two)
	}
}

// TestCheckoutCachePrune: at most Keep entries stay, the least recently
// used go, and leftovers of an interrupted run are removed.
func TestCheckoutCachePrune(t *testing.T) {
	r := newRepo(t, false)
	c := &runner.CheckoutCache{Dir: filepath.Join(t.TempDir(), "cache"), Keep: 2}
	leftover := filepath.Join(c.Dir, ".abc-half-made")
	if err := os.MkdirAll(filepath.Join(leftover, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	cacheCheckout(t, c, r, r.one)
	cacheCheckout(t, c, r, r.two)
	if _, hit := cacheCheckout(t, c, r, r.one); !hit { // one is now the most recently used
		t.Fatal("one was not kept")
	}
	cacheCheckout(t, c, r, r.three) // two goes
	if got := len(cacheEntries(t, c)); got != 2 {
		t.Errorf("%d entries (%q), want 2", got, cacheEntries(t, c))
	}
	for _, tc := range []struct {
		commit string
		hit    bool
	}{{r.one, true}, {r.three, true}, {r.two, false}} {
		if _, hit := cacheCheckout(t, c, r, tc.commit); hit != tc.hit {
			t.Errorf("checkout of %s: hit %v, want %v", tc.commit, hit, tc.hit)
		}
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the leftover of an interrupted run is still there: %v", err)
	}
}

// TestCheckoutCacheConcurrent: steps of several executions check out at
// once while entries are made and pruned (Keep 1, three commits): every
// checkout is whole and exactly its commit, none half made.
func TestCheckoutCacheConcurrent(t *testing.T) {
	r, rich := richRepo(t)
	c := &runner.CheckoutCache{Dir: filepath.Join(t.TempDir(), "cache"), Keep: 1}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := runner.Checkout(testCtx(t), r.spec(rich, fresh)); err != nil {
		t.Fatal(err)
	}
	want := treeOf(t, fresh)
	commits := []string{rich, r.two, r.three}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				sha := commits[(i+j)%len(commits)]
				dir := filepath.Join(t.TempDir(), "src")
				if _, err := c.Checkout(testCtx(t), r.spec(sha, dir)); err != nil {
					errs <- err.Error()
					continue
				}
				if sha == rich {
					if diff := cmp.Diff(want, treeOf(t, dir)); diff != "" {
						errs <- "checkout differs:\n" + diff
					}
				} else if b, err := os.ReadFile(filepath.Join(dir, ".git", "HEAD")); err != nil || strings.TrimSpace(string(b)) != sha {
					errs <- "HEAD is not " + sha
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
