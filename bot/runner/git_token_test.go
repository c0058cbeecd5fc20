package runner_test

import (
	"encoding/base64"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// httpGitServer serves the bare repositories under root over git's smart
// HTTP protocol (git http-backend as CGI) to requests carrying the header
// GitHub takes an installation token in, "Authorization: Basic" of
// "x-access-token:<token>"; other requests get 401, as on GitHub.
func httpGitServer(t *testing.T, root, token string) *httptest.Server {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Dir:  root,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "HOME=" + t.TempDir()},
		InheritEnv: []string{"PATH"},
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "Authentication failed", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A checkout over HTTPS that succeeds leaves the token nowhere on disk: not
// in .git/config (origin holds the bare URL), not in any other file. The
// same holds for IsAncestor's scratch repository.
func TestCheckoutOverHTTPLeavesNoToken(t *testing.T) {
	r := newRepo(t, true)
	srv := httpGitServer(t, filepath.Dir(filepath.Dir(r.dir)), token)
	spec := func(dir string) runner.CheckoutSpec {
		return runner.CheckoutSpec{GitURL: srv.URL + "/", Owner: r.owner, Repo: r.repo, Commit: r.two, Token: token, Dir: dir}
	}
	ctx := testCtx(t)
	work, scratch := filepath.Join(t.TempDir(), "ws"), filepath.Join(t.TempDir(), "scratch")
	if err := runner.Checkout(ctx, spec(work)); err != nil {
		t.Fatal(err)
	}
	want := checkoutState{Version: "two\n", Head: r.two, Detached: true, Shallow: true}
	if diff := cmp.Diff(want, stateOf(t, work)); diff != "" {
		t.Errorf("checkout (-want +got):\n%s", diff)
	}
	if ok, err := runner.IsAncestor(ctx, spec(scratch), r.one, r.two); err != nil || !ok {
		t.Errorf("IsAncestor(one, two) = %v, %v; want true", ok, err)
	}
	// Without the token the server refuses: the test would notice a
	// checkout that did not use it.
	if err := runner.Checkout(ctx, runner.CheckoutSpec{GitURL: srv.URL + "/", Owner: r.owner, Repo: r.repo, Commit: r.two,
		Dir: filepath.Join(t.TempDir(), "anonymous")}); err == nil {
		t.Error("a checkout without the token succeeded")
	}

	config, err := os.ReadFile(filepath.Join(work, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(config), "url = "+srv.URL+"/acme/app.git\n") {
		t.Errorf(".git/config does not name origin by its bare URL:\n%s", config)
	}
	secrets := []string{token, base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token)),
		base64.StdEncoding.EncodeToString([]byte(token)), "extraheader", "x-access-token"}
	for _, dir := range []string{work, scratch} {
		files := 0
		err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err != nil || !info.Mode().IsRegular() {
				return err
			}
			files++
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if strings.Contains(strings.ToLower(string(b)), strings.ToLower(s)) {
					t.Errorf("%s holds %q", p, s)
				}
			}
			return nil
		})
		if err != nil || files == 0 {
			t.Errorf("walking %s: %d files, %v", dir, files, err)
		}
	}
}
