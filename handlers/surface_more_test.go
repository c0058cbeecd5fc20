package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// checkRunsPath is the prefix of the check-run endpoints of the sample
// repository (create and update).
const checkRunsPath = "/repos/" + owner + "/" + repo + "/check-runs"

// moreTick runs one reporter tick as the reporter's loop would, and
// returns its error instead of failing: a failed tick is retried on the
// next one.
func (e *surfaceEnv) moreTick(ctx context.Context) error {
	return e.reporter.ReportOnce(ctx)
}

// morePending reports whether an execution has changes GitHub has not seen.
func (e *surfaceEnv) morePending() bool {
	e.t.Helper()
	var n int
	e.view(func(tx bot.Tx) error {
		es, err := tx.ExecutionsToReport(context.Background(), 100)
		n = len(es)
		return err
	})
	return n > 0
}

// moreDeployments is "environment@sha7:state>state ..." of the GitHub
// Deployments, oldest first, with the statuses Stagehand sent.
func moreDeployments(gh *githubtest.Server) string {
	var envs []string
	for _, d := range gh.Deployments(owner, repo) {
		var states []string
		for _, s := range d.Statuses {
			if !s.ByGitHub {
				states = append(states, s.State)
			}
		}
		envs = append(envs, fmt.Sprintf("%s@%s:%s", d.Environment, bot.ShortSHA(d.Ref), strings.Join(states, ">")))
	}
	return strings.Join(envs, " ")
}

// moreCheckRunCounts counts the check runs by "name@sha7".
func moreCheckRunCounts(gh *githubtest.Server) map[string]int {
	out := map[string]int{}
	for _, cr := range gh.CheckRuns(owner, repo) {
		out[cr.Name+"@"+bot.ShortSHA(cr.HeadSHA)]++
	}
	return out
}

func moreErrorsString(errs []error) string {
	var s []string
	for _, err := range errs {
		s = append(s, err.Error())
	}
	return strings.Join(s, "\n")
}

// TestReporterSurvivesGitHubFaults: GitHub answers check-run requests with
// 500s (more than the client retries), then with a secondary rate limit
// asking to wait a second, then slowly (once slower than the tick's
// deadline). The pipeline does not wait for GitHub; each failed tick is
// retried by the next; in the end every check run shows the final state
// and no phase got two check runs.
func TestReporterSurvivesGitHubFaults(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	attempts := githubapp.DefaultRetryPolicy.MaxAttempts // fastRetry leaves MaxAttempts to the default
	if fastRetry.MaxAttempts != 0 {
		attempts = fastRetry.MaxAttempts
	}
	var tickErrs []error

	// 1. 500s while stage-only #1 builds and after it ended: two whole
	// ticks fail (each one exhausting the client's retries), and one more
	// 500 is left for the tick after the execution has ended.
	releaseBuild := e.repo.hold("hold-build")
	defer releaseBuild()
	failing := 2*attempts + 1
	e.gh.FailNext(checkRunsPath, failing, http.StatusInternalServerError, nil)
	e.gh.RateLimitNext(checkRunsPath, 1, time.Second)
	sha1 := e.push()
	e.waitStep(1, bot.StepBuild, bot.StepRunning)
	for i := range 2 {
		err := e.moreTick(ctx)
		if err == nil {
			t.Fatalf("tick %d succeeded while GitHub answers 500 to every check-run request", i+1)
		}
		if !strings.Contains(err.Error(), "500") {
			t.Errorf("tick %d error does not name GitHub's 500: %v", i+1, err)
		}
		tickErrs = append(tickErrs, err)
	}
	releaseBuild()
	ex1 := e.waitState(1, bot.ExecutionSucceeded)
	if got := e.checkRuns(bot.StageOnly, ""); len(got) != 0 {
		t.Fatalf("check runs exist although every check-run request failed: %+v", got)
	}

	// 2. Ticks until GitHub answers again: the last 500, then the
	// secondary rate limit (Retry-After: 1), then the answer.
	var ok bool
	for i := 0; i < 5 && !ok; i++ {
		if err := e.moreTick(ctx); err != nil {
			tickErrs = append(tickErrs, err)
			continue
		}
		ok = true
	}
	if !ok {
		t.Fatalf("GitHub never took the check run; tick errors:\n%s", moreErrorsString(tickErrs))
	}
	t.Logf("%d failed ticks before GitHub answered", len(tickErrs))
	var n500, n403 int
	var rateLimited, afterRateLimit time.Time
	var firstCreated time.Time
	for _, c := range e.gh.Calls() {
		if !strings.HasPrefix(c.Path, checkRunsPath) {
			continue
		}
		switch {
		case c.Status == http.StatusInternalServerError:
			n500++
		case c.Status == http.StatusForbidden:
			n403++
			rateLimited = c.Time
		case !rateLimited.IsZero() && afterRateLimit.IsZero():
			afterRateLimit = c.Time
		}
		if c.Method == http.MethodPost && c.Status == http.StatusCreated && firstCreated.IsZero() {
			firstCreated = c.Time
		}
	}
	if n500 != failing || n403 != 1 {
		t.Errorf("GitHub answered %d×500 and %d×403, want %d and 1", n500, n403, failing)
	}
	if d := afterRateLimit.Sub(rateLimited); afterRateLimit.IsZero() || d < 950*time.Millisecond {
		t.Errorf("the client tried again %v after the secondary rate limit; GitHub asked for 1s", d)
	}
	if firstCreated.IsZero() || !ex1.FinishedAt.Before(firstCreated) {
		t.Errorf("stage-only #1 finished at %v, GitHub first took a check run at %v: the pipeline must not wait for GitHub", ex1.FinishedAt, firstCreated)
	}
	for i := 0; e.morePending(); i++ {
		if i > 10 {
			t.Fatal("the reporter never caught up")
		}
		if err := e.moreTick(ctx); err != nil {
			t.Fatalf("GitHub answers again, yet a tick failed: %v", err)
		}
	}
	runs := e.checkRuns(bot.StageOnly, sha1)
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "success" || strings.Join(labels(runs[0]), ",") != "Promote Build" {
		t.Fatalf("after the outage: %d stage-only check runs, want 1 completed/success with Promote Build: %+v", len(runs), runs)
	}

	// 3. Slow answers while stage-only #2 runs: the first check-run request
	// is slower than the tick's deadline (the tick gives up, nothing is
	// created), the next ones are slow but answered.
	sha2 := e.repo.commit("newer", nil)
	releaseBuild = e.repo.hold("hold-build")
	defer releaseBuild()
	e.push()
	e.waitStep(2, bot.StepBuild, bot.StepRunning)
	e.gh.SlowNext(checkRunsPath, 1, 2*time.Second)
	e.gh.SlowNext(checkRunsPath, 10, 150*time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := e.moreTick(short)
	cancel()
	if err == nil {
		t.Fatal("a tick whose check-run request outlived its deadline succeeded")
	}
	tickErrs = append(tickErrs, err)
	// The stand-in records the abandoned request once it has given it up.
	deadline := time.Now().Add(5 * time.Second)
	for abandoned := false; !abandoned; {
		for _, c := range e.gh.Calls() {
			abandoned = abandoned || (c.Method == http.MethodPost && strings.HasPrefix(c.Path, checkRunsPath) && c.Status == 0)
		}
		if time.Now().After(deadline) {
			t.Fatal("the stand-in never gave up the request the client abandoned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.moreTick(ctx); err != nil { // slow, answered: stage-only #2 shows build running
		t.Fatalf("a slow but answered tick failed: %v", err)
	}
	if got := e.checkRuns(bot.StageOnly, sha2); len(got) != 1 || got[0].Status != "in_progress" {
		t.Fatalf("stage-only #2 while it builds: %+v", got)
	}
	releaseBuild()
	e.waitState(2, bot.ExecutionSucceeded)
	for i := 0; e.morePending(); i++ {
		if i > 10 {
			t.Fatal("the reporter never caught up")
		}
		if err := e.moreTick(ctx); err != nil {
			t.Fatalf("slow tick: %v", err)
		}
	}

	// Final state: every check run right, one per phase.
	if got := e.gh.CheckRun(runs[0].ID); got.Status != "completed" || got.Conclusion != "success" || len(got.Actions) != 0 {
		t.Errorf("stage-only #1 at the end: %s/%s %v; want completed/success without buttons (#2 is newer)", got.Status, got.Conclusion, labels(got))
	}
	runs2 := e.checkRuns(bot.StageOnly, sha2)
	if len(runs2) != 1 || runs2[0].Status != "completed" || runs2[0].Conclusion != "success" || strings.Join(labels(runs2[0]), ",") != "Promote Build" {
		t.Errorf("stage-only #2 at the end: %+v", runs2)
	}
	counts := moreCheckRunCounts(e.gh)
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%d check runs for %s, want exactly one (stage-only has one phase)", n, k)
		}
	}
	if len(counts) != 2 {
		t.Errorf("check runs by name and sha: %v, want one for each stage-only execution", counts)
	}
	want := fmt.Sprintf("stage@%s:in_progress>success stage@%s:in_progress>success", bot.ShortSHA(sha1), bot.ShortSHA(sha2))
	if got := moreDeployments(e.gh); got != want {
		t.Errorf("deployments = %s, want %s", got, want)
	}
	if n := e.gh.MaxConcurrentWrites(inst); n != 1 {
		t.Errorf("%d writes in flight at once, want 1", n)
	}
	t.Logf("tick errors (%d):\n%s", len(tickErrs), moreErrorsString(tickErrs))
}

// moreLoseAnswer forwards requests to the stand-in and loses the answer of
// the first n POSTs to path (check-run or deployment creations) after the
// stand-in made them, as a connection reset (or a client timeout) after
// GitHub did the work would.
type moreLoseAnswer struct {
	path string
	left atomic.Int32
}

func (l *moreLoseAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && r.URL.Path == l.path && l.left.Add(-1) >= 0 {
		resp.Body.Close()
		return nil, errors.New("read tcp: connection reset by peer")
	}
	return resp, err
}

// TestReporterAdoptsCheckRunWhoseCreateAnswerWasLost: GitHub created a
// check run but its answer was lost (a connection reset after GitHub did the
// work). The client rightly does not send the POST again; the reporter, which
// stored its intent before creating, finds the check run by external_id and
// adopts it instead of creating a second one for the phase.
func TestReporterAdoptsCheckRunWhoseCreateAnswerWasLost(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	e.loseAnswers(checkRunsPath, 1)

	release := e.repo.hold("hold-build")
	defer release()
	sha := e.push()
	e.waitStep(1, bot.StepBuild, bot.StepRunning)
	e.tickLosingAnswer(ctx)
	if n := len(e.checkRuns(bot.StageOnly, sha)); n != 1 {
		t.Fatalf("GitHub holds %d check runs after the lost answer, want 1 (it did the work)", n)
	}
	release()
	e.waitState(1, bot.ExecutionSucceeded)
	e.catchUp(ctx)
	runs := e.checkRuns(bot.StageOnly, sha)
	var states []string
	for _, cr := range runs {
		states = append(states, fmt.Sprintf("#%d %s/%s", cr.ID, cr.Status, cr.Conclusion))
	}
	if len(runs) != 1 {
		t.Errorf("stage-only #1 has %d check runs (%s), want exactly one per phase", len(runs), strings.Join(states, ", "))
	}
	for _, cr := range runs {
		if cr.Status != "completed" {
			t.Errorf("check run %d of a finished execution is left %s", cr.ID, cr.Status)
		}
	}
}

// loseAnswers gives the reporter an App of its own whose transport loses
// the answers of the first n POSTs to path.
func (e *surfaceEnv) loseAnswers(path string, n int32) {
	e.t.Helper()
	const lossyAppID = testAppID + 1
	pemBytes, key := githubtest.GenerateAppKey(e.t)
	e.gh.SetAppKey(lossyAppID, &key.PublicKey)
	lossy := &moreLoseAnswer{path: path}
	lossy.left.Store(n)
	app, err := githubapp.New(githubapp.Options{AppID: lossyAppID, PrivateKeyPEM: pemBytes, APIURL: e.gh.URL(), Retry: fastRetry,
		HTTPClient: &http.Client{Transport: lossy}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.reporter.GitHub = app
}

// tickLosingAnswer is a reporter tick whose answer from GitHub is lost.
func (e *surfaceEnv) tickLosingAnswer(ctx context.Context) {
	e.t.Helper()
	if err := e.moreTick(ctx); err == nil {
		e.t.Fatal("the tick whose answer was lost succeeded")
	} else {
		e.t.Logf("tick with the lost answer: %v", err)
	}
}

// catchUp ticks the reporter until every execution is reported.
func (e *surfaceEnv) catchUp(ctx context.Context) {
	e.t.Helper()
	for i := 0; e.morePending(); i++ {
		if i > 10 {
			e.t.Fatal("the reporter never caught up")
		}
		if err := e.moreTick(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestReporterAdoptsDeploymentWhoseCreateAnswerWasLost: GitHub created the
// stage Deployment but its answer was lost. The reporter, which stored its
// intent before creating, finds the Deployment by commit, environment and
// payload and adopts it, instead of leaving it without a status and making
// a second one (found by the chaos soak: GitHub's Environments view showed
// a deploy that never ended next to the real one).
func TestReporterAdoptsDeploymentWhoseCreateAnswerWasLost(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	e.loseAnswers("/repos/"+owner+"/"+repo+"/deployments", 1)

	release := e.repo.hold("hold-tests")
	defer release()
	e.push()
	e.waitStep(1, bot.StepStageTests, bot.StepRunning) // the stage deploy is over
	e.tickLosingAnswer(ctx)
	if n := len(e.gh.Deployments(owner, repo)); n != 1 {
		t.Fatalf("GitHub holds %d deployments after the lost answer, want 1 (it did the work)", n)
	}
	release()
	e.waitState(1, bot.ExecutionSucceeded)
	e.catchUp(ctx)
	ds := e.gh.Deployments(owner, repo)
	if len(ds) != 1 {
		t.Fatalf("stage-only #1 has %d deployments, want exactly one", len(ds))
	}
	var states []string
	for _, st := range ds[0].Statuses {
		states = append(states, st.State)
	}
	if diff := cmp.Diff([]string{"in_progress", "success"}, states); diff != "" {
		t.Errorf("statuses of the adopted deployment (-want +got):\n%s", diff)
	}
}

// TestApproveRollbackAndDeployNowButtons: full-stack (manual) deploys a
// newer commit to production; promoting the older stage-only #1 would roll
// production back, so its check run offers Approve Rollback (and warns);
// a plain approve is refused and explained; Approve Rollback passes; the
// scheduled pipeline then shows Deploy Now, which deploys.
func TestApproveRollbackAndDeployNowButtons(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig("  full-stack: {branch: main, trigger: manual}\n  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n"))
	old := e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	stageOnlyApp := e.repo.readRecord("stage/app.txt")

	newer := e.repo.commit("newer", nil) // not pushed: full-stack is manual
	reply := e.comment("bob", "/stagehand run full-stack")
	if !strings.Contains(reply.Body, "✅") || !strings.Contains(reply.Body, "full-stack #2") {
		t.Fatalf("reply to run full-stack: %q", reply.Body)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.report()
	fs := e.checkRuns(bot.FullStack, newer)
	if len(fs) != 1 || fs[0].Conclusion != "action_required" || strings.Join(labels(fs[0]), ",") != "Promote to Prod,Reject" {
		t.Fatalf("full-stack check runs at approval: %+v", fs)
	}
	e.click(fs[0], githubapp.ActionApprove, "bob")
	e.waitReported(2, bot.ExecutionSucceeded)
	if got := e.repo.readRecord("production/app.txt"); !strings.Contains(got, "commit="+newer) {
		t.Fatalf("after full-stack #2 production runs %q, want commit %s", got, newer)
	}
	fs = e.checkRuns(bot.FullStack, newer)
	if last := fs[len(fs)-1]; len(fs) != 2 || last.Conclusion != "success" {
		t.Fatalf("full-stack check runs after approval: %d, last %s/%s", len(fs), last.Status, last.Conclusion)
	}

	// Promote stage-only #1 (still the latest successful stage-only one):
	// production would go back from newer to old.
	reply = e.comment("alice", "/stagehand promote 1")
	if !strings.Contains(reply.Body, "✅") || !strings.Contains(reply.Body, "prod-only #3") {
		t.Fatalf("reply to promote 1: %q", reply.Body)
	}
	e.waitStep(3, bot.StepApproval, bot.StepWaiting)
	e.report()
	pr := e.checkRuns(bot.ProdOnly, old)
	if len(pr) != 1 {
		t.Fatalf("prod-only check runs at approval: %d, want 1", len(pr))
	}
	gate := pr[0]
	if gate.Conclusion != "action_required" || strings.Join(labels(gate), ",") != "Approve Rollback,Reject" {
		t.Fatalf("prod-only at approval: %s/%s buttons %v, want Approve Rollback,Reject", gate.Status, gate.Conclusion, labels(gate))
	}
	for _, a := range gate.Actions {
		if a.Label == "Approve Rollback" && a.Identifier != githubapp.ActionApproveRollback {
			t.Errorf("Approve Rollback sends %q", a.Identifier)
		}
	}
	if s := gate.Output.Summary; !strings.Contains(s, "⚠️") || !strings.Contains(s, "roll production back from "+bot.ShortSHA(newer)) {
		t.Errorf("the summary does not warn of the rollback:\n%s", s)
	}
	if !strings.Contains(gate.Output.Title, "Approve Rollback") {
		t.Errorf("title %q", gate.Output.Title)
	}

	// A plain approve (a stale Approve button, or a crafted payload) is
	// refused and the check run says why.
	e.click(gate, githubapp.ActionApprove, "bob")
	e.report()
	if ex, _ := e.execution(3); ex.State != bot.ExecutionWaiting {
		t.Fatalf("a plain approve of a rollback moved #3 to %s", ex.State)
	}
	gate = e.gh.CheckRun(gate.ID)
	if s := gate.Output.Summary; !strings.Contains(s, "approve by @bob refused") || !strings.Contains(s, "Approve Rollback") {
		t.Errorf("the check run does not explain the refused approve:\n%s", s)
	}
	if got := strings.Join(labels(gate), ","); got != "Approve Rollback,Reject" {
		t.Errorf("after the refused approve the buttons are %q", got)
	}
	if n := len(e.checkRuns(bot.ProdOnly, old)); n != 1 {
		t.Errorf("a refused approve made %d prod-only check runs, want 1", n)
	}

	// Approve Rollback passes; the schedule gate shows Deploy Now.
	e.click(gate, githubapp.ActionApproveRollback, "bob")
	e.waitStep(3, bot.StepSchedule, bot.StepWaiting)
	e.report()
	pr = e.checkRuns(bot.ProdOnly, old)
	if len(pr) != 2 {
		t.Fatalf("prod-only check runs at the schedule gate: %d, want 2", len(pr))
	}
	sched := pr[1]
	if sched.Conclusion != "action_required" || strings.Join(labels(sched), ",") != "Deploy Now" {
		t.Fatalf("schedule gate: %s/%s buttons %v, want Deploy Now", sched.Status, sched.Conclusion, labels(sched))
	}
	if got := labels(e.gh.CheckRun(gate.ID)); len(got) != 0 {
		t.Errorf("the passed rollback approval's check run still shows %v", got)
	}
	if ex, _ := e.execution(3); !strings.Contains(moreEventsOf(e, ex.ID), "approved-rollback") {
		t.Errorf("no approved-rollback event on #3")
	}
	if e.repo.readRecord("production/app.txt") == stageOnlyApp {
		t.Fatal("production deployed before Deploy Now")
	}

	e.click(sched, githubapp.ActionDeployNow, "alice")
	e.waitReported(3, bot.ExecutionSucceeded)
	pr = e.checkRuns(bot.ProdOnly, old)
	if last := pr[len(pr)-1]; len(pr) != 3 || last.Status != "completed" || last.Conclusion != "success" || len(last.Actions) != 0 {
		t.Fatalf("prod-only after Deploy Now: %d check runs, last %s/%s %v", len(pr), last.Status, last.Conclusion, labels(last))
	}
	if got := e.repo.readRecord("production/app.txt"); got != stageOnlyApp {
		t.Errorf("production runs %q, want stage-only #1's artifact %q", got, stageOnlyApp)
	}
	want := fmt.Sprintf("stage@%s:in_progress>success stage@%s:in_progress>success production@%s:in_progress>success production@%s:in_progress>success",
		bot.ShortSHA(old), bot.ShortSHA(newer), bot.ShortSHA(newer), bot.ShortSHA(old))
	if got := moreDeployments(e.gh); got != want {
		t.Errorf("deployments =\n %s\nwant\n %s", got, want)
	}
}

func moreEventsOf(e *surfaceEnv, id int64) string {
	var kinds []string
	e.view(func(tx bot.Tx) error {
		evs, err := tx.Events(context.Background(), id)
		for _, ev := range evs {
			kinds = append(kinds, string(ev.Kind))
		}
		return err
	})
	return strings.Join(kinds, " ")
}

// TestSlashCommandsThroughComments: each comment gets 👀 and one reply
// that says what was done (✅), why not (🚫) or what is wrong (❓).
func TestSlashCommandsThroughComments(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	rows := []struct {
		user, body string
		want       []string
		after      func()
	}{
		{"alice", "/stagehand help", []string{"**Stagehand commands**", "/stagehand promote [N]", "write permission"}, nil},
		{"alice", "/stagehand", []string{"**Stagehand commands**"}, nil},
		{"alice", "/stagehand status", []string{"✅", "**Codertocat/Hello-World**", "| stage-only | main | on-git-changes |", "stage-only #1"}, nil},
		{"alice", "/stagehand approve", []string{"🚫", "no execution of Codertocat/Hello-World is waiting for approval"}, nil},
		{"alice", "/stagehand run bogus", []string{"❓", `"bogus" is not a pipeline`}, nil},
		{"alice", "/stagehand frobnicate", []string{"❓", `"frobnicate" is not a command`}, nil},
		{"alice", "/stagehand promte", []string{"❓", "did you mean /stagehand promote"}, nil},
		{"alice", "/stagehand promote 99", []string{"🚫", "no execution #99"}, nil},
		{"alice", "/stagehand env list production", []string{"✅", "variables of production", "| `LOG_LEVEL` | `info` |"}, nil},
		{"alice", "/stagehand env set production K=V", []string{"✅", "production: K set"}, nil},
		{"alice", "/stagehand env list production", []string{"✅", "| `K` | `V` |"}, nil},
		{"alice", "/stagehand env unset production K", []string{"✅", "production: K removed"}, nil},
		{"rita", "/stagehand promote", []string{"🚫", "read permission"}, nil},
		{"alice", "/stagehand promote", []string{"✅", "prod-only #2 promotes stage-only #1"}, func() { e.waitStep(2, bot.StepApproval, bot.StepWaiting) }},
		{"alice", "/stagehand env set production K=V", []string{"🚫", "held by prod-only #2", "rule E"}, nil},
		{"alice", "/stagehand cancel 2", []string{"✅", "prod-only #2 cancelled"}, func() { e.waitState(2, bot.ExecutionCancelled) }},
		{"alice", "/stagehand cancel 2", []string{"🚫", "is not active"}, nil},
		{"alice", "/stagehand approve --force", []string{"❓", `"--force" is not an option`}, nil},
		{"alice", "/stagehand run stage-only", []string{"✅", "started stage-only #3"}, func() { e.waitState(3, bot.ExecutionSucceeded) }},
		{"bob", "/stagehand status\n/stagehand frobnicate", []string{"✅", "❓", "stage-only #3"}, nil},
	}
	if len(rows) < 12 {
		t.Fatal("too few rows")
	}
	for i, r := range rows {
		reply := e.comment(r.user, r.body)
		for _, w := range r.want {
			if !strings.Contains(reply.Body, w) {
				t.Errorf("row %d %q by %s: the reply does not contain %q:\n%s", i, r.body, r.user, w, reply.Body)
			}
		}
		if strings.Contains(reply.Body, "⚠️") {
			t.Errorf("row %d %q: the reply reports a failure:\n%s", i, r.body, reply.Body)
		}
		if got := e.gh.Reactions(e.lastComment); len(got) != 1 || got[0] != "eyes" {
			t.Errorf("row %d %q: reactions %v, want eyes", i, r.body, got)
		}
		if r.after != nil {
			r.after()
		}
	}
	if vars, err := e.engine.Variables(context.Background(), e.prog.ID, bot.Production); err != nil || vars["K"] != "" {
		t.Errorf("production variables at the end: %v %v; K was unset and the refused set must not have set it", vars, err)
	}
}

// moreCalls sorts the stand-in's calls by what they do.
type moreCalls struct {
	total                      int // all calls
	tokens, contents           int // installation tokens, contents API
	checkCreate, checkUpdate   int
	deployCreate, deployStatus int
	other                      int
	byKind                     map[string]int
}

func moreClassify(calls []githubtest.Call) moreCalls {
	c := moreCalls{byKind: map[string]int{}}
	for _, call := range calls {
		c.total++
		var kind string
		switch {
		case strings.HasSuffix(call.Path, "/access_tokens"):
			c.tokens++
			kind = "token"
		case strings.Contains(call.Path, "/contents/"):
			c.contents++
			kind = "contents"
		case call.Method == http.MethodPost && call.Path == checkRunsPath:
			c.checkCreate++
			kind = "check-run create"
		case call.Method == http.MethodPatch && strings.HasPrefix(call.Path, checkRunsPath+"/"):
			c.checkUpdate++
			kind = "check-run update"
		case call.Method == http.MethodPost && strings.HasSuffix(call.Path, "/statuses"):
			c.deployStatus++
			kind = "deployment status"
		case call.Method == http.MethodPost && strings.HasSuffix(call.Path, "/deployments"):
			c.deployCreate++
			kind = "deployment create"
		default:
			c.other++
			kind = call.Method + " " + call.Operation
		}
		c.byKind[kind]++
	}
	return c
}

// api is the calls that are not tokens or contents.
func (c moreCalls) api() int { return c.total - c.tokens - c.contents }

func (c moreCalls) String() string {
	var kinds []string
	for k, n := range c.byKind {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	share := 0.0
	if c.api() > 0 {
		share = 100 * float64(c.checkUpdate) / float64(c.api())
	}
	return fmt.Sprintf("%d calls (%d without tokens/contents; tokens %d, contents %d), check-run PATCH %d = %.0f%% [%s]",
		c.total, c.api(), c.tokens, c.contents, c.checkUpdate, share, strings.Join(kinds, " "))
}

// moreReportingStore runs the reporter right after every transaction of
// the engine (commands, claims, step ends, heartbeats), as a reporter
// that reacted to each change would: the worst case for the number of
// API calls. Ticks are serialised, as the reporter's loop is.
type moreReportingStore struct {
	bot.Transactor
	mu    sync.Mutex
	e     *surfaceEnv
	ticks int
	errs  []error
}

func (s *moreReportingStore) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	if err := s.Transactor.Update(ctx, fn); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticks++
	if err := s.e.reporter.ReportOnce(context.Background()); err != nil {
		s.errs = append(s.errs, err)
	}
	return nil
}

// report is a tick of the test's own, serialised with the others.
func (s *moreReportingStore) report() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.e.reporter.ReportOnce(context.Background()); err != nil {
		s.errs = append(s.errs, err)
	}
}

func (s *moreReportingStore) stats() (int, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ticks, slices.Clone(s.errs)
}

// TestGitHubAPICallsPerExecution measures the GitHub API calls of one
// stage-only execution and one promoted prod-only execution, reported
// after every change (the worst case) and coalesced (the reporter's 1s
// tick sees only the gates and the end).
//
// The budgets are the figures measured when reporting after every change
// (BENCHMARKS.md), so one more call fails the test: stage-only 7 (check
// run: 1 create + 3 updates; deployment: 1 create + 2 statuses); promoted
// prod-only 10 (2 check runs: 2 creates + 4 updates; the stage-only check
// run's update that records the promotion; deployment: 1 create + 2
// statuses). Coalesced reporting can only send fewer.
func TestGitHubAPICallsPerExecution(t *testing.T) {
	const maxStageOnly, maxProdOnly = 7, 10
	t.Run("every change", func(t *testing.T) {
		e := newSurfaceEnv(t, sampleConfig(splitPipelines))
		rs := &moreReportingStore{Transactor: e.engine.Store, e: e}
		e.engine.Store = rs // before anything runs: no goroutine reads it yet
		ctx := context.Background()
		mark := len(e.gh.Calls())
		e.push()
		e.waitState(1, bot.ExecutionSucceeded)
		rs.report() // nothing left: the last transaction was reported
		calls := e.gh.Calls()
		stage := moreClassify(calls[mark:])
		mark = len(calls)
		ticks, _ := rs.stats()
		t.Logf("stage-only, reported after every engine transaction (%d ticks): %s", ticks, stage)

		morePromoteAndApprove(ctx, e, nil)
		rs.report()
		prod := moreClassify(e.gh.Calls()[mark:])
		total, errs := rs.stats()
		t.Logf("prod-only, reported after every engine transaction (%d ticks): %s", total-ticks, prod)
		if len(errs) > 0 {
			t.Errorf("reporting failed: %s", moreErrorsString(errs))
		}
		moreCheckCalls(t, e, stage, prod, maxStageOnly, maxProdOnly)
	})

	t.Run("coalesced", func(t *testing.T) {
		e := newSurfaceEnv(t, sampleConfig(splitPipelines))
		ctx := context.Background()
		mark := len(e.gh.Calls())
		e.push()
		e.waitReported(1, bot.ExecutionSucceeded)
		calls := e.gh.Calls()
		stage := moreClassify(calls[mark:])
		mark = len(calls)
		t.Logf("stage-only, reported at the end only: %s", stage)

		morePromoteAndApprove(ctx, e, e.report) // the approval gate waits for a person: the tick sees it
		e.waitReported(2, bot.ExecutionSucceeded)
		prod := moreClassify(e.gh.Calls()[mark:])
		t.Logf("prod-only, reported at the approval gate and at the end: %s", prod)
		moreCheckCalls(t, e, stage, prod, maxStageOnly, maxProdOnly)
	})
}

// morePromoteAndApprove promotes stage-only #1 (alice) and approves the
// prod-only #2 (bob) at its gate, calling atGate there, and waits for #2 to
// succeed.
func morePromoteAndApprove(ctx context.Context, e *surfaceEnv, atGate func()) {
	e.t.Helper()
	if _, err := e.engine.Promote(ctx, bot.Internal("alice"), e.prog.ID, 1); err != nil {
		e.t.Fatal(err)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if atGate != nil {
		atGate()
	}
	if _, err := e.engine.Approve(ctx, bot.Internal("bob"), e.prog.ID, 2); err != nil {
		e.t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
}

// moreRedundantUpdates counts the check-run updates that sent nothing new:
// the same body as the request before (completed_at, which is the time of
// sending, aside).
func moreRedundantUpdates(t *testing.T, gh *githubtest.Server) int {
	t.Helper()
	norm := func(raw json.RawMessage) string {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "completed_at")
		delete(m, "head_sha") // sent on create only
		if m["actions"] == nil {
			m["actions"] = []any{}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	n := 0
	for _, cr := range gh.CheckRuns(owner, repo) {
		for i := 1; i < len(cr.Bodies); i++ {
			if norm(cr.Bodies[i]) == norm(cr.Bodies[i-1]) {
				n++
			}
		}
	}
	return n
}

func moreCheckCalls(t *testing.T, e *surfaceEnv, stage, prod moreCalls, maxStage, maxProd int) {
	t.Helper()
	if n := moreRedundantUpdates(t, e.gh); n > 0 {
		t.Errorf("%d check-run updates sent nothing new", n)
	}
	var per []string
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		per = append(per, fmt.Sprintf("%s #%d: 1 create + %d updates", cr.Name, cr.ID, len(cr.Bodies)-1))
	}
	t.Logf("check runs: %s", strings.Join(per, "; "))
	if stage.api() > maxStage {
		t.Errorf("stage-only took %d API calls, want at most %d", stage.api(), maxStage)
	}
	if prod.api() > maxProd {
		t.Errorf("prod-only took %d API calls, want at most %d", prod.api(), maxProd)
	}
	if stage.checkCreate != 1 || prod.checkCreate != 2 {
		t.Errorf("check runs created: stage-only %d (want 1), prod-only %d (want 2: approval gate, then the rest)", stage.checkCreate, prod.checkCreate)
	}
	if stage.other != 0 || prod.other != 0 {
		t.Errorf("unexpected calls: stage-only %v, prod-only %v", stage.byKind, prod.byKind)
	}
	// The end state is right whatever the number of ticks.
	so := e.checkRuns(bot.StageOnly, "")
	po := e.checkRuns(bot.ProdOnly, "")
	if len(so) != 1 || so[0].Conclusion != "success" || len(po) != 2 || po[1].Conclusion != "success" {
		t.Errorf("end state: stage-only %+v prod-only %+v", so, po)
	}
}
