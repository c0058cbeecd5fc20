package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

const tokensConfig = `version: 1
build: {run: "mkdir -p dist && echo built > dist/app.txt", artifacts: [dist/**]}
environments:
  stage: {deploy: "true"}
  production: {deploy: "true"}
pipelines:
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {}
`

// TestInstallationTokensAreNarrowed: the real binary, on a push, checks the
// commit out over HTTPS from the stand-in's git endpoint, builds, deploys
// to stage and reports on GitHub, and asks each installation token for one
// purpose on the one repository (the checkout's by the id the push named).
// The token git got may read that repository and nothing more: the
// stand-in refuses it a check run and another repository of the same
// installation.
func TestInstallationTokensAreNarrowed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	h := newHarness(t)
	h.gh.AddRepo(1, "Codertocat", "Other")
	h.gh.SetFile("Codertocat", "Other", "main", "README", []byte("other"))

	root := t.TempDir()
	work := filepath.Join(t.TempDir(), "Hello-World")
	if err := os.MkdirAll(filepath.Join(work, ".github"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, ".github", "stagehand.yml"), []byte(tokensConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	plainGit(t, work, "init", "-q", "-b", "master")
	plainGit(t, work, "add", "-A")
	plainGit(t, work, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "sample")
	plainGit(t, work, "clone", "-q", "--bare", work, filepath.Join(root, "Codertocat", "Hello-World.git"))
	sha := gitOutput(t, work, "rev-parse", "HEAD")
	h.gh.SetFile("Codertocat", "Hello-World", sha, ".github/stagehand.yml", []byte(tokensConfig))
	push := pushPayloadFor(t, sha)
	var payload struct {
		Repository struct{ ID int64 } `json:"repository"`
	}
	if err := json.Unmarshal(push, &payload); err != nil {
		t.Fatal(err)
	}
	repoID := payload.Repository.ID // the program's GitHubID
	h.gh.SetRepoID("Codertocat", "Hello-World", repoID)
	gitURL, err := h.gh.ServeGit(root)
	if err != nil {
		t.Fatal(err)
	}
	h.gitURL = gitURL

	h.start(t, "server")
	h.waitReady(t)
	if code := h.send(t, "push", "tokens-push", push); code != http.StatusAccepted {
		t.Fatalf("push answered %d", code)
	}
	h.waitExecution(t, 1, bot.ExecutionSucceeded)
	waitFor(t, 30*time.Second, "the check run and the stage deployment on GitHub", func() bool {
		runs, deps := h.gh.CheckRuns("Codertocat", "Hello-World"), h.gh.Deployments("Codertocat", "Hello-World")
		return len(runs) > 0 && runs[len(runs)-1].Conclusion == "success" && len(deps) > 0 && len(deps[0].Statuses) > 1
	})

	// Every token asked for one purpose on Codertocat/Hello-World: the
	// checkout's by the repository's id, the API calls' by its name.
	seen := map[string]bool{}
	for _, r := range h.gh.TokenRequests() {
		if r.Status != http.StatusCreated || r.Installation != 1 {
			t.Errorf("token request %+v: want one of installation 1, granted", r)
		}
		on := fmt.Sprintf("names %v, ids %v", r.Repositories, r.RepositoryIDs)
		seen[permissionSet(r.Permissions)+" on "+on] = true
	}
	byID := fmt.Sprintf("names [], ids [%d]", repoID)
	want := []string{
		"checks=write on names [Hello-World], ids []",
		"contents=read on names [Hello-World], ids []",
		"contents=read on " + byID,
		"deployments=write on names [Hello-World], ids []",
	}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(seen))); diff != "" {
		t.Errorf("tokens asked for (-want +got):\n%s", diff)
	}

	// git was served, with tokens that can do nothing else.
	gitReqs := h.gh.GitRequests()
	if len(gitReqs) == 0 {
		t.Fatal("the server did not fetch over HTTPS")
	}
	tokens := map[string]bool{}
	for _, r := range gitReqs {
		if r.Status != http.StatusOK {
			t.Errorf("git request %s answered %d", r.Path, r.Status)
		}
		tokens[r.Token] = true
	}
	ctx := context.Background()
	for tok := range tokens {
		c := github.NewClient(nil).WithAuthToken(tok)
		c.BaseURL, _ = url.Parse(h.gh.URL())
		if _, _, resp, err := c.Repositories.GetContents(ctx, "Codertocat", "Hello-World", ".github/stagehand.yml", &github.RepositoryContentGetOptions{Ref: sha}); err != nil {
			t.Errorf("the checkout token cannot read its own repository (so the refusals below would prove nothing): %v %v", resp, err)
		}
		_, resp, err := c.Checks.CreateCheckRun(ctx, "Codertocat", "Hello-World", github.CreateCheckRunOptions{Name: "forged", HeadSHA: sha,
			Status: github.String("completed"), Conclusion: github.String("success")})
		var er *github.ErrorResponse
		if resp == nil || resp.StatusCode != http.StatusForbidden || !errors.As(err, &er) || er.Message != "Resource not accessible by integration" {
			t.Errorf("the checkout token created a check run, or was refused otherwise than GitHub does: %v", err)
		}
		if _, _, resp, err := c.Repositories.GetContents(ctx, "Codertocat", "Other", "README", nil); resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("the checkout token read another repository of the installation: %v", err)
		}
	}
	for _, cr := range h.gh.CheckRuns("Codertocat", "Hello-World") {
		if cr.Name == "forged" {
			t.Error("a forged check run is on GitHub")
		}
	}
	h.gh.AssertNoErrors(t)
}

// permissionSet writes permissions as "name=level", sorted and joined by
// commas.
func permissionSet(perms map[string]string) string {
	var parts []string
	for name, level := range perms {
		parts = append(parts, name+"="+level)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// gitOutput runs git in dir and returns its trimmed output.
func gitOutput(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}
