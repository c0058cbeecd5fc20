package main

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newTestPlayground makes a playground (GitHub stand-in and sample
// repository) in a fresh directory, without the server.
func newTestPlayground(t *testing.T, dir string) *playground {
	t.Helper()
	pg, err := newPlayground(dir, "http://localhost:8080", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.gh.Close)
	return pg
}

// plainGit runs git as a user would: no identity on the command line.
func plainGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// TestPlaygroundWorkCopyCommitsAndPushes is README step 1 done by hand on a
// machine with no git identity: edit, "git commit -am", "git push" — on the
// first start and after a restart.
func TestPlaygroundWorkCopyCommitsAndPushes(t *testing.T) {
	global := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(global, []byte("[user]\n\tuseConfigOnly = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, v := range []string{"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	dir := t.TempDir()
	for _, start := range []string{"first start", "restart"} {
		pg := newTestPlayground(t, dir)
		if err := os.WriteFile(filepath.Join(pg.work, "message.txt"), []byte("Edited by hand: "+start), 0o644); err != nil {
			t.Fatal(err)
		}
		plainGit(t, pg.work, "commit", "-q", "-am", "Edit by hand ("+start+")")
		plainGit(t, pg.work, "push", "-q")
		pg.gh.Close()
	}
}
