package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/state"
)

// noopStageOnly is a stage-only pipeline whose commands do nothing.
const noopStageOnly = `version: 1
build: {run: "true", artifacts: [app.txt]}
environments:
  stage:
    deploy: "true"
    tests: [{name: smoke, run: "true"}]
  production: {deploy: "true"}
pipelines:
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {approval: true}
`

// BenchmarkStageOnlyExecution is a push as a user sees it: the whole
// server (run(), `stagehand serve` with its embedded broker, SQLite, step
// worker in the bubblewrap sandbox when bwrap is there, and reporter) on
// 127.0.0.1, the GitHub stand-in in the process, a local repository
// (--github-git-url file://). Each iteration commits to the repository and
// posts its signed push; ns/op runs from the push's POST to the
// stand-in's receipt of the stagehand/stage-only check run completed with
// success. The execution is stage-only with no-op commands (build, deploy
// to stage, one stage test: `true`).
//
// Reported besides:
//   - engine-ms/op: from the POST to the execution's end as the store
//     records it (FinishedAt): intake, broker, push handler, three steps;
//   - report-ms/op: from that end to the completed check run's arrival at
//     the stand-in, the reporter's part (its periodic pass included);
//   - first-check-run-ms/op: from the POST to the check run's creation.
func BenchmarkStageOnlyExecution(b *testing.B) {
	h := newLoadHarness(b)
	root := b.TempDir()
	repo := filepath.Join(root, "Codertocat", "Hello-World")
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=B", "-c", "user.email=b@example.com"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(filepath.Join(repo, ".github"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".github", "stagehand.yml"), []byte(noopStageOnly), 0o644); err != nil {
		b.Fatal(err)
	}
	git("init", "-q", "-b", "master")
	commit := func(i int) string {
		if err := os.WriteFile(filepath.Join(repo, "app.txt"), []byte(fmt.Sprintf("version %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		git("add", "-A")
		git("commit", "-q", "-m", fmt.Sprint("version ", i))
		sha := git("rev-parse", "HEAD")
		h.gh.SetFile("Codertocat", "Hello-World", sha, ".github/stagehand.yml", []byte(noopStageOnly))
		return sha
	}
	h.gitURL = "file://" + root + "/"

	// Stopped before the benchmark's next round starts its own server.
	defer serveForBench(b, h)()

	pushed := map[string]time.Time{}
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		sha := commit(i)
		body := pushPayloadFor(b, sha)
		b.StartTimer()
		t0 := time.Now()
		if code := postPush(b, h, fmt.Sprintf("bench-%d-%s", i, sha), body); code != http.StatusAccepted {
			b.Fatalf("push answered %d", code)
		}
		deadline := t0.Add(60 * time.Second)
		for checkRunOf(h.gh, sha).Conclusion != "success" {
			if time.Now().After(deadline) {
				b.Fatalf("push %d of %d: no successful stagehand/stage-only check run for %s after 60 s; check runs: %+v", i+1, b.N, sha, h.gh.CheckRuns("Codertocat", "Hello-World"))
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(t0)
		pushed[sha] = t0
	}
	b.StopTimer()

	// The server's record of each execution, and the stand-in's of each
	// check run: when it was created and when its completion arrived.
	store, err := state.OpenSQLite(context.Background(), filepath.Join(h.dataDir, "stagehand.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	var engine, report, first time.Duration
	err = store.View(context.Background(), func(tx bot.Tx) error {
		exs, err := tx.Executions(context.Background(), bot.ExecutionFilter{})
		for _, ex := range exs {
			t0, ok := pushed[ex.Commit]
			if !ok || ex.State != bot.ExecutionSucceeded {
				return fmt.Errorf("execution %s at %s is %s", ex, ex.Commit, ex.State)
			}
			created, completed := checkRunTimes(h.gh, ex.Commit, checkRunOf(h.gh, ex.Commit).ID)
			engine += ex.FinishedAt.Sub(t0)
			report += completed.Sub(ex.FinishedAt)
			first += created.Sub(t0)
		}
		if len(exs) != b.N {
			return fmt.Errorf("%d executions for %d pushes", len(exs), b.N)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(perOp(engine), "engine-ms/op")
	b.ReportMetric(perOp(report), "report-ms/op")
	b.ReportMetric(perOp(first), "first-check-run-ms/op")
	b.ReportMetric(perOp(total), "push-to-success-ms/op")
}

// postPush posts a signed push delivery and returns the status code.
func postPush(tb testing.TB, h *harness, guid string, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, h.url("/webhooks"), bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-Hub-Signature-256", githubtest.Sign([]byte(testSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// checkRunOf is the stagehand/stage-only check run of a commit (zero when
// there is none yet).
func checkRunOf(gh *githubtest.Server, sha string) githubtest.CheckRun {
	for _, cr := range gh.CheckRuns("Codertocat", "Hello-World") {
		if cr.HeadSHA == sha && cr.Name == "stagehand/stage-only" {
			return cr
		}
	}
	return githubtest.CheckRun{}
}

// checkRunTimes are when the stand-in received the creation of the
// check run (id) of sha and the first request that completed it (the
// creation itself when the reporter's first report is the last).
func checkRunTimes(gh *githubtest.Server, sha string, id int64) (created, completed time.Time) {
	update := fmt.Sprintf("/check-runs/%d", id)
	for _, c := range gh.Calls() {
		var ours bool
		switch {
		case c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/check-runs"):
			ours = bytes.Contains(c.Body, []byte(sha)) && bytes.Contains(c.Body, []byte(`"stagehand/stage-only"`))
			if ours && created.IsZero() {
				created = c.Time
			}
		case c.Method == http.MethodPatch:
			ours = strings.HasSuffix(c.Path, update)
		}
		if ours && completed.IsZero() && bytes.Contains(c.Body, []byte(`"completed"`)) {
			completed = c.Time
		}
	}
	return created, completed
}
