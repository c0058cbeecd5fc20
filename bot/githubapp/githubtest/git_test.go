package githubtest_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// runGit runs git isolated from the machine's configuration, with the
// installation token tok (if any) in an Authorization header as Stagehand
// sends it, and returns its combined output.
func runGit(t *testing.T, dir, tok string, args ...string) (string, error) {
	t.Helper()
	cfg := []string{"-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}
	if tok != "" {
		basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + tok))
		cfg = append(cfg, "-c", "http.extraHeader=Authorization: Basic "+basic)
	}
	cmd := exec.Command("git", append(cfg, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+t.TempDir(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// bareRepo makes root/owner/name.git with one commit and returns its sha.
func bareRepo(t *testing.T, root, owner, name string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), name)
	for _, args := range [][]string{{"init", "-q", work}, {"-C", work, "commit", "-q", "--allow-empty", "-m", "one"},
		{"clone", "-q", "--bare", work, filepath.Join(root, owner, name+".git")}} {
		if out, err := runGit(t, root, "", args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := runGit(t, root, "", "-C", work, "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// The git endpoint serves a repository to a token that covers it and may
// read its contents, and refuses every other token as GitHub does.
func TestServeGitEnforcesTokens(t *testing.T) {
	s := newServer(t)
	s.AddRepo(1, "acme", "site")
	root := t.TempDir()
	sha := bareRepo(t, root, "acme", "app")
	bareRepo(t, root, "acme", "site")
	base, err := s.ServeGit(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string // token request body; "" for no token
		repo        string
		status      int
	}{
		{"contents:read on the repository", `{"permissions":{"contents":"read"},"repositories":["app"]}`, "app", 200},
		{"not narrowed", `{}`, "app", 200},
		{"contents:read on another repository", `{"permissions":{"contents":"read"},"repositories":["site"]}`, "app", 404},
		{"checks:write only", `{"permissions":{"checks":"write"},"repositories":["app"]}`, "app", 403},
		{"no token", "", "app", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := ""
			if tt.token != "" {
				var status int
				if tok, status = narrowedToken(t, s, tt.token); status != http.StatusCreated {
					t.Fatalf("token request: %d", status)
				}
			}
			before := len(s.GitRequests())
			out, err := runGit(t, t.TempDir(), tok, "ls-remote", base+"acme/"+tt.repo+".git", "refs/heads/main")
			if (err == nil) != (tt.status == 200) {
				t.Errorf("ls-remote: %v\n%s", err, out)
			}
			if tt.status == 200 && !strings.HasPrefix(out, sha) {
				t.Errorf("ls-remote = %q, want main at %s", out, sha)
			}
			// The first request asks for the refs; with protocol v2 a
			// served one is followed by a POST to git-upload-pack.
			got := s.GitRequests()[before:]
			want := githubtest.GitRequest{Path: "/acme/" + tt.repo + ".git/info/refs", Token: tok, Status: tt.status}
			if len(got) == 0 {
				t.Fatal("no git request")
			}
			if diff := cmp.Diff(want, got[0]); diff != "" {
				t.Errorf("git request (-want +got):\n%s", diff)
			}
		})
	}
	// A fetch by sha goes through with the narrowed token.
	tok, _ := narrowedToken(t, s, `{"permissions":{"contents":"read"},"repositories":["app"]}`)
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"fetch", "-q", "--depth=1", base + "acme/app.git", sha}} {
		if out, err := runGit(t, dir, tok, args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	s.AssertNoErrors(t)
}
