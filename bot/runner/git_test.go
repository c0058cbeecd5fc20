package runner_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// testRepo is a repository on disk: main has commits one and two, branch
// other forks from one with commit three.
type testRepo struct {
	base             string // file:// base URL
	one, two, three  string
	owner, repo, dir string
}

// git runs git isolated from the machine's configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	args = append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commit(t *testing.T, dir, content, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "VERSION")
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

// newRepo makes acme/app under a temporary base: a plain `git init`
// working repository at base/acme/app, or with bare, a bare clone of it at
// base/acme/app.git.
func newRepo(t *testing.T, bare bool) testRepo {
	t.Helper()
	base := t.TempDir()
	r := testRepo{base: "file://" + base + "/", owner: "acme", repo: "app", dir: filepath.Join(base, "acme", "app")}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, r.dir, "init", "-q")
	r.one = commit(t, r.dir, "one\n", "one")
	r.two = commit(t, r.dir, "two\n", "two")
	git(t, r.dir, "checkout", "-q", "-b", "other", r.one)
	r.three = commit(t, r.dir, "three\n", "three")
	git(t, r.dir, "checkout", "-q", "main")
	if bare {
		git(t, base, "clone", "-q", "--bare", r.dir, r.dir+".git")
		if err := os.RemoveAll(r.dir); err != nil {
			t.Fatal(err)
		}
		r.dir += ".git"
	}
	return r
}

func (r testRepo) spec(commit, dir string) runner.CheckoutSpec {
	return runner.CheckoutSpec{GitURL: r.base, Owner: r.owner, Repo: r.repo, Commit: commit, Dir: dir}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkoutState is what a checkout directory holds.
type checkoutState struct {
	Version  string
	Head     string
	Detached bool
	Shallow  bool
}

func stateOf(t *testing.T, dir string) checkoutState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "symbolic-ref", "-q", "HEAD")
	cmd.Dir = dir
	return checkoutState{
		Version:  string(b),
		Head:     git(t, dir, "rev-parse", "HEAD"),
		Detached: cmd.Run() != nil,
		Shallow:  git(t, dir, "rev-parse", "--is-shallow-repository") == "true",
	}
}

func TestCheckout(t *testing.T) {
	plain, bare := newRepo(t, false), newRepo(t, true)
	for _, tc := range []struct {
		name   string
		repo   testRepo
		commit func(testRepo) string
		want   string // VERSION content
	}{
		{"first commit by sha", plain, func(r testRepo) string { return r.one }, "one\n"},
		{"branch head", plain, func(r testRepo) string { return r.two }, "two\n"},
		{"commit only on another branch", plain, func(r testRepo) string { return r.three }, "three\n"},
		{"upper-case sha", plain, func(r testRepo) string { return strings.ToUpper(r.one) }, "one\n"},
		{"bare repository at owner/repo.git", bare, func(r testRepo) string { return r.one }, "one\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ws")
			c := tc.commit(tc.repo)
			if err := runner.Checkout(testCtx(t), tc.repo.spec(c, dir)); err != nil {
				t.Fatalf("Checkout: %v", err)
			}
			want := checkoutState{Version: tc.want, Head: strings.ToLower(c), Detached: true, Shallow: true}
			if diff := cmp.Diff(want, stateOf(t, dir)); diff != "" {
				t.Errorf("checkout (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckoutIntoExistingEmptyDir(t *testing.T) {
	r := newRepo(t, false)
	dir := t.TempDir()
	if err := runner.Checkout(testCtx(t), r.spec(r.one, dir)); err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if got := stateOf(t, dir).Head; got != r.one {
		t.Errorf("HEAD = %s, want %s", got, r.one)
	}
}

func TestCheckoutErrors(t *testing.T) {
	r := newRepo(t, false)
	unknown := strings.Repeat("0123456789", 4)
	for _, tc := range []struct {
		name    string
		spec    func(dir string) runner.CheckoutSpec
		prepare func(t *testing.T, dir string)
		want    []string // substrings of the error
		left    []string // entries of dir afterwards; nil: dir is gone
	}{
		{
			name: "unknown sha",
			spec: func(dir string) runner.CheckoutSpec { return r.spec(unknown, dir) },
			want: []string{"commit " + unknown + " not found"},
		},
		{
			name: "short sha",
			spec: func(dir string) runner.CheckoutSpec { return r.spec(r.one[:12], dir) },
			want: []string{"not a full commit sha"},
		},
		{
			name: "unknown repository",
			spec: func(dir string) runner.CheckoutSpec {
				s := r.spec(r.one, dir)
				s.Repo = "nope"
				return s
			},
			want: []string{"git fetch", "acme/nope.git"},
		},
		{
			name: "path in repository name",
			spec: func(dir string) runner.CheckoutSpec {
				s := r.spec(r.one, dir)
				s.Repo = "../app"
				return s
			},
			want: []string{`invalid repo "../app"`},
		},
		{
			name: "credentials in the URL",
			spec: func(dir string) runner.CheckoutSpec {
				s := r.spec(r.one, dir)
				s.GitURL = "https://user:secret@example.com/"
				return s
			},
			want: []string{"must not hold credentials"},
		},
		{
			name: "dir not empty",
			spec: func(dir string) runner.CheckoutSpec { return r.spec(r.one, dir) },
			prepare: func(t *testing.T, dir string) {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"is not empty"},
			left: []string{"keep"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ws")
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			err := runner.Checkout(testCtx(t), tc.spec(dir))
			if err == nil {
				t.Fatal("Checkout succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var left []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				left = append(left, e.Name())
			}
			if diff := cmp.Diff(tc.left, left); diff != "" {
				t.Errorf("dir afterwards (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckoutCancelled(t *testing.T) {
	r := newRepo(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runner.Checkout(ctx, r.spec(r.one, filepath.Join(t.TempDir(), "ws")))
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Errorf("Checkout with a cancelled context: %v, want %v", err, context.Canceled)
	}
}

func TestIsAncestor(t *testing.T) {
	r := newRepo(t, false)
	shared := filepath.Join(t.TempDir(), "scratch") // reused by every case
	shallow := filepath.Join(t.TempDir(), "ws")
	if err := runner.Checkout(testCtx(t), r.spec(r.two, shallow)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                 string
		ancestor, descendant string
		want                 bool
	}{
		{"first to second", r.one, r.two, true},
		{"second to first", r.two, r.one, false},
		{"equal", r.two, r.two, true},
		{"diverged: main to other", r.two, r.three, false},
		{"diverged: other to main", r.three, r.two, false},
		{"fork point to other", r.one, r.three, true},
	} {
		for _, dir := range []struct{ name, path string }{
			{"fresh", ""},
			{"reused", shared},
			{"shallow checkout", shallow},
		} {
			t.Run(tc.name+"/"+dir.name, func(t *testing.T) {
				path := dir.path
				if path == "" {
					path = filepath.Join(t.TempDir(), "scratch")
				}
				got, err := runner.IsAncestor(testCtx(t), r.spec("", path), tc.ancestor, tc.descendant)
				if err != nil {
					t.Fatalf("IsAncestor: %v", err)
				}
				if got != tc.want {
					t.Errorf("IsAncestor(%s, %s) = %v, want %v", tc.ancestor, tc.descendant, got, tc.want)
				}
			})
		}
	}
}

func TestIsAncestorUnknownCommit(t *testing.T) {
	r := newRepo(t, false)
	unknown := strings.Repeat("ab", 20)
	_, err := runner.IsAncestor(testCtx(t), r.spec("", t.TempDir()), r.one, unknown)
	if err == nil || !strings.Contains(err.Error(), "commit "+unknown+" not found") {
		t.Errorf("IsAncestor with an unknown commit: %v", err)
	}
}

func TestResolveBranch(t *testing.T) {
	plain, bare := newRepo(t, false), newRepo(t, true)
	for _, tc := range []struct {
		name    string
		repo    testRepo
		branch  string
		want    func(testRepo) string
		wantErr string
	}{
		{"main", plain, "main", func(r testRepo) string { return r.two }, ""},
		{"other", plain, "other", func(r testRepo) string { return r.three }, ""},
		{"full ref name", plain, "refs/heads/main", func(r testRepo) string { return r.two }, ""},
		{"bare repository", bare, "other", func(r testRepo) string { return r.three }, ""},
		{"unknown branch", plain, "nope", nil, "branch not found"},
		{"suffix of a branch is not the branch", plain, "ain", nil, "branch not found"},
		{"empty", plain, "", nil, "invalid branch name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runner.ResolveBranch(testCtx(t), tc.repo.spec("", ""), tc.branch)
			var gotErr string
			if err != nil {
				gotErr = err.Error()
				if tc.wantErr == "" || !strings.Contains(gotErr, tc.wantErr) {
					t.Fatalf("ResolveBranch: %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if tc.wantErr != "" {
				t.Fatalf("ResolveBranch = %s, want error %q", got, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want(tc.repo), got); diff != "" {
				t.Errorf("ResolveBranch (-want +got):\n%s", diff)
			}
		})
	}
}
