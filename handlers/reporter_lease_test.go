package handlers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
)

// leaseReporter is a reporter of e as another replica would run it: its
// own holder name, on e's store and GitHub, with the given clock.
func leaseReporter(e *surfaceEnv, holder string, clock bot.Clock) *reporter.Reporter {
	return &reporter.Reporter{Store: e.store, GitHub: e.reporter.GitHub, Clock: clock, Logger: e.hooks.Logger,
		PublicURL: "http://stagehand.test", ParseConfig: parseConfig, Holder: holder}
}

// leaseLoop ticks r, as Run does but with no pause to speak of, until the
// returned stop is called; stop waits for the last tick to end.
func leaseLoop(t *testing.T, r *reporter.Reporter) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := r.Tick(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: tick: %v", r.Holder, err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// leasePending reports whether an execution has changes GitHub has not seen.
func leasePending(e *surfaceEnv) bool {
	e.t.Helper()
	var n int
	e.view(func(tx bot.Tx) error {
		es, err := tx.ExecutionsToReport(context.Background(), 100)
		n = len(es)
		return err
	})
	return n > 0
}

// leaseSettle waits, while the reporters loop, until ok holds and nothing
// is left to report.
func leaseSettle(e *surfaceEnv, what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() || leasePending(e) {
		leaseNoDuplicates(e)
		if time.Now().After(deadline) {
			e.t.Fatalf("never reported: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaseNoDuplicates fails at once when GitHub has more check runs than
// TestReporterLease's phases, or a deployment has a status twice.
func leaseNoDuplicates(e *surfaceEnv) {
	e.t.Helper()
	if n := len(e.checkRuns(bot.StageOnly, "")); n > 1 {
		e.t.Fatalf("%d stage-only check runs, want at most 1: two reporters created one", n)
	}
	if n := len(e.checkRuns(bot.ProdOnly, "")); n > 2 {
		e.t.Fatalf("%d prod-only check runs, want at most 2: two reporters created one", n)
	}
	for _, d := range e.gh.Deployments(owner, repo) {
		seen := map[string]bool{}
		for _, st := range d.Statuses {
			if !st.ByGitHub && seen[st.State] {
				e.t.Fatalf("deployment %s has status %s twice: %s", d.Environment, st.State, leaseDeployments(e.gh))
			}
			seen[st.State] = true
		}
	}
}

// leaseDeployments is "environment@sha7:state>state ..." of the GitHub
// Deployments, oldest first, with the statuses Stagehand sent.
func leaseDeployments(gh *githubtest.Server) string {
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

// TestReporterLease runs two reporters, as two replicas would, on one
// store: while both tick, only the lease holder reports, so each phase has
// one check run and each deployment one status per change; when the holder
// stops and its lease expires, the other takes over.
func TestReporterLease(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	clock := &testClock{} // the reporters' own: the engine's time stays put
	a := leaseReporter(e, "replica-a", clock)
	b := leaseReporter(e, "replica-b", clock)
	// A lease far longer than the pipeline's run on a loaded machine: "a's
	// lease lasts" below must not end by the wall clock while #3 runs (it
	// did at 10 s, the default, under a load average of 40).
	const ttl = 10 * time.Minute
	a.LeaseTTL, b.LeaseTTL = ttl, ttl

	// a ticks first and holds the lease; then both tick side by side
	// through a whole promotion: build, stage deploy, gate, approval,
	// production deploy.
	if err := a.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopA, stopB := leaseLoop(t, a), leaseLoop(t, b)
	stopped := false
	defer func() {
		if !stopped {
			stopA()
			stopB()
		}
	}()

	sha := e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	leaseSettle(e, "the stage-only check run's Promote Build", func() bool {
		runs := e.checkRuns(bot.StageOnly, sha)
		return len(runs) > 0 && strings.Join(labels(runs[0]), ",") == "Promote Build"
	})
	e.click(e.checkRuns(bot.StageOnly, sha)[0], githubapp.ActionPromote, "alice")
	leaseSettle(e, "Confirm and Dismiss", func() bool {
		return strings.Join(labels(e.checkRuns(bot.StageOnly, sha)[0]), ",") == "Confirm,Dismiss"
	})
	e.click(e.checkRuns(bot.StageOnly, sha)[0], githubapp.ActionConfirm, "alice")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	leaseSettle(e, "the prod-only approval", func() bool {
		runs := e.checkRuns(bot.ProdOnly, sha)
		return len(runs) > 0 && strings.Contains(strings.Join(labels(runs[0]), ","), "Approve")
	})
	e.click(e.checkRuns(bot.ProdOnly, sha)[0], githubapp.ActionApprove, "bob")
	e.waitState(2, bot.ExecutionSucceeded)
	leaseSettle(e, "the production deployment", func() bool {
		runs := e.checkRuns(bot.ProdOnly, sha)
		return len(runs) == 2 && runs[1].Conclusion == "success"
	})
	stopA()
	stopB()
	stopped = true

	if runs := e.checkRuns(bot.StageOnly, ""); len(runs) != 1 {
		t.Errorf("stage-only check runs = %d, want 1 (one phase)", len(runs))
	}
	if runs := e.checkRuns(bot.ProdOnly, ""); len(runs) != 2 {
		t.Errorf("prod-only check runs = %d, want 2 (approval, then the rest)", len(runs))
	}
	sha7 := bot.ShortSHA(sha)
	if got, want := leaseDeployments(e.gh), "stage@"+sha7+":in_progress>success production@"+sha7+":in_progress>success"; got != want {
		t.Errorf("deployments = %s, want %s", got, want)
	}

	// a stops ticking. A change waits while a's lease lasts ...
	newer := e.repo.commit("newer", nil)
	e.push()
	e.waitState(3, bot.ExecutionSucceeded)
	if err := b.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.checkRuns(bot.StageOnly, newer); len(got) != 0 || !leasePending(e) {
		t.Fatalf("b reported while a's lease lasted: %d check runs of the new commit", len(got))
	}
	// ... and b reports it once the lease has expired.
	clock.Advance(ttl + time.Millisecond)
	for range 2 { // the touch of the older execution is reported on the next tick
		if err := b.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.checkRuns(bot.StageOnly, newer); len(got) != 1 || strings.Join(labels(got[0]), ",") != "Promote Build" {
		t.Errorf("after a's lease expired, the new commit's check runs: %+v", got)
	}
	if leasePending(e) {
		t.Errorf("changes are left to report after b took over")
	}

	// b holds the lease now: a, back, waits its turn.
	ex3, _ := e.execution(3)
	if err := e.store.Update(t.Context(), func(tx bot.Tx) error { return tx.Touch(t.Context(), ex3.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := a.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !leasePending(e) {
		t.Errorf("a reported while b held the lease")
	}
	for range 2 { // reporting #3 again touches #1, reported on the next tick
		if err := b.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if leasePending(e) {
		var es []bot.Execution
		e.view(func(tx bot.Tx) (err error) { es, err = tx.ExecutionsToReport(t.Context(), 0); return err })
		for _, x := range es {
			t.Logf("pending: #%d v%d r%d %s", x.Number, x.Version, x.ReportedVersion, x.State)
		}
		t.Errorf("b, the holder, did not report")
	}
}

// TestReporterKeepsItsLeaseThroughASlowTick: a reporter whose tick waits
// for GitHub longer than its lease lasts renews the lease while it waits,
// so a second replica's reporter does not take over and create the same
// check run (the chaos soak saw a second Deployment and a check run left
// "running" when GitHub outages made ticks outlast the lease).
func TestReporterKeepsItsLeaseThroughASlowTick(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	ctx := t.Context()
	const ttl = 300 * time.Millisecond
	a := leaseReporter(e, "replica-a", bot.SystemClock{})
	b := leaseReporter(e, "replica-b", bot.SystemClock{})
	a.LeaseTTL, b.LeaseTTL = ttl, ttl
	release := e.repo.hold("hold-build")
	defer release()
	e.push()
	e.waitStep(1, bot.StepBuild, bot.StepRunning)

	slow := e.gh.Hold(checkRunsPath) // GitHub does not answer a's create for a while
	defer slow()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Tick(ctx); err != nil {
			t.Errorf("a: %v", err)
		}
	})
	if err := e.gh.WaitHeld(ctx, checkRunsPath, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * ttl) // a's first lease would have run out long ago
	wg.Go(func() {
		if err := b.Tick(ctx); err != nil {
			t.Errorf("b: %v", err)
		}
	})
	time.Sleep(ttl)
	slow()
	wg.Wait()
	if n := len(e.checkRuns(bot.StageOnly, "")); n != 1 {
		t.Errorf("%d stage-only check runs, want 1: the second reporter took the lease of one still reporting", n)
	}
}
