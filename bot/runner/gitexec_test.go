package runner

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRedact(t *testing.T) {
	const tok = "ghs_abc123"
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + tok))
	g, err := newGit(CheckoutSpec{Owner: "o", Repo: "r", Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	for _, tc := range []struct{ in, want string }{
		{"fatal: nothing secret", "fatal: nothing secret"},
		{"token " + tok + " twice " + tok, "token *** twice ***"},
		{"Authorization: Basic " + basic, "Authorization: Basic ***"},
		{"raw base64 " + base64.StdEncoding.EncodeToString([]byte(tok)), "raw base64 ***"},
	} {
		if diff := cmp.Diff(tc.want, g.redact(tc.in)); diff != "" {
			t.Errorf("redact(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestNoTokenNoHeader(t *testing.T) {
	g, err := newGit(CheckoutSpec{Owner: "o", Repo: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	for _, kv := range g.env {
		if strings.Contains(strings.ToLower(kv), "extraheader") {
			t.Errorf("environment without a token sets a header: %q", kv)
		}
	}
}

// TestFetchFallback shows the gotcha the fallback exists for: a protocol
// v0 upload-pack with default configuration does not serve a commit that is
// not a ref tip ("Server does not allow request for unadvertised object",
// or "not our ref" from the server), and fetch then falls back to a full
// fetch.
func TestFetchFallback(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "acme", "app")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	sh := func(dir, script string) string {
		t.Helper()
		cmd := exec.Command("bash", "-euc", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+t.TempDir(),
			"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	first := sh(src, `git init -q; echo one > f; git add f; git commit -qm one; git rev-parse HEAD`)
	sh(src, `echo two > f; git commit -qam two`)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, err := newGit(CheckoutSpec{GitURL: "file://" + base + "/", Owner: "acme", Repo: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	g.legacy = true

	refused := t.TempDir()
	if _, err := g.run(ctx, refused, "init", "-q"); err != nil {
		t.Fatal(err)
	}
	_, err = g.run(ctx, refused, "-c", "protocol.version=0", "fetch", "--depth=1", g.url, first)
	if err == nil || !strings.Contains(err.Error(), "unadvertised object") && !strings.Contains(err.Error(), "not our ref") {
		t.Fatalf("v0 fetch by sha of a non-tip commit: %v, want a refusal", err)
	}

	dir := t.TempDir()
	if _, err := g.run(ctx, dir, "init", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := g.fetch(ctx, dir, fetchShallow, first); err != nil {
		t.Fatalf("fetch with fallback: %v", err)
	}
	shallow, err := g.isShallow(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := struct{ Has, Shallow bool }{g.hasCommit(ctx, dir, first), shallow}
	want := struct{ Has, Shallow bool }{true, false} // the full fetch ran
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after fallback (-want +got):\n%s", diff)
	}
}
