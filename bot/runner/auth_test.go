package runner_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

const token = "ghs_SuperSecretInstallationToken123"

// request is what the fake git server saw.
type request struct {
	Path          string
	Authorization string
}

// gitServer mimics a smart-HTTP git endpoint just enough: it records every
// request and answers with status, or, for status 200, with a ref
// advertisement holding an ERR packet that quotes the Authorization header
// back (git prints it as "remote error: ...").
func gitServer(t *testing.T, status int) (*httptest.Server, func() []request) {
	var mu sync.Mutex
	var seen []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, request{Path: r.URL.String(), Authorization: r.Header.Get("Authorization")})
		mu.Unlock()
		if status != http.StatusOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "nope "+r.Header.Get("Authorization"), status)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		fmt.Fprint(w, pktLine("# service=git-upload-pack\n")+"0000")
		fmt.Fprint(w, pktLine("ERR you sent "+r.Header.Get("Authorization")+" for "+token+"\n"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), seen...)
	}
}

func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// gitWrapper puts a git first on PATH that records its arguments and
// environment, then runs the real git.
func gitWrapper(t *testing.T) (record string) {
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	record = filepath.Join(dir, "record")
	script := fmt.Sprintf("#!/bin/sh\nprintf 'args: %%s\\n' \"$*\" >> %q\nenv >> %q\nexec %q \"$@\"\n", record, record+".env", real)
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return record
}

func TestTokenOnlyInHeader(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	secrets := []string{token, basic, base64.StdEncoding.EncodeToString([]byte(token))}
	sha := strings.Repeat("a1", 20)
	calls := []struct {
		name string
		call func(ctx context.Context, s runner.CheckoutSpec) error
	}{
		{"Checkout", runner.Checkout},
		{"IsAncestor", func(ctx context.Context, s runner.CheckoutSpec) error {
			_, err := runner.IsAncestor(ctx, s, sha, sha)
			return err
		}},
		{"ResolveBranch", func(ctx context.Context, s runner.CheckoutSpec) error {
			_, err := runner.ResolveBranch(ctx, s, "main")
			return err
		}},
	}
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusOK} {
		for _, c := range calls {
			t.Run(fmt.Sprintf("%s/%d", c.name, status), func(t *testing.T) {
				record := gitWrapper(t)
				srv, seen := gitServer(t, status)
				dir := filepath.Join(t.TempDir(), "ws")
				err := c.call(testCtx(t), runner.CheckoutSpec{
					GitURL: srv.URL + "/", Owner: "acme", Repo: "app", Commit: sha, Token: token, Dir: dir,
				})
				if err == nil {
					t.Fatal("succeeded against a server that refuses everything")

				}
				reqs := seen()
				if len(reqs) == 0 {
					t.Fatal("git sent no request")
				}
				for _, r := range reqs {
					want := request{Path: r.Path, Authorization: "Basic " + basic}
					if diff := cmp.Diff(want, r); diff != "" {
						t.Errorf("request (-want +got):\n%s", diff)
					}
					if !strings.HasPrefix(r.Path, "/acme/app.git/") {
						t.Errorf("request path %q, want /acme/app.git/...", r.Path)
					}
				}
				args, _ := os.ReadFile(record)
				if !strings.Contains(string(args), "args: ") {
					t.Fatalf("the git wrapper recorded nothing")
				}
				var paths []string
				for _, r := range reqs {
					paths = append(paths, r.Path)
				}
				for _, s := range secrets {
					for what, text := range map[string]string{
						"error":         err.Error(),
						"request URL":   strings.Join(paths, " "),
						"git arguments": string(args),
					} {
						if strings.Contains(text, s) {
							t.Errorf("%s holds the secret %q: %s", what, s, text)
						}
					}
				}
				if status == http.StatusOK && !strings.Contains(err.Error(), "remote error: you sent Basic *** for ***") {
					t.Errorf("error %q does not show git's redacted stderr", err)
				}
				// The token reached git only through GIT_CONFIG_VALUE_n.
				env, _ := os.ReadFile(record + ".env")
				viaConfig := false
				for _, line := range strings.Split(string(env), "\n") {
					if strings.Contains(line, token) {
						t.Errorf("raw token in git's environment: %q", line)
					}
					if strings.Contains(line, basic) {
						if !strings.HasPrefix(line, "GIT_CONFIG_VALUE_") {
							t.Errorf("token in git's environment outside GIT_CONFIG_VALUE_n: %q", line)
						}
						viaConfig = true
					}
				}
				if !viaConfig {
					t.Error("the header did not reach git through GIT_CONFIG_VALUE_n")
				}
				// Nothing on disk holds it either.
				filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
					if err == nil && info.Mode().IsRegular() {
						b, _ := os.ReadFile(p)
						for _, s := range secrets {
							if strings.Contains(string(b), s) {
								t.Errorf("%s holds the secret", p)
							}
						}
					}
					return nil
				})
			})
		}
	}
}
