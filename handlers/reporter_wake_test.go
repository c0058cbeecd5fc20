package handlers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
)

// passLog records the passes of a running reporter, in order.
type passLog struct {
	mu     sync.Mutex
	causes []reporter.PassCause
}

func (p *passLog) add(c reporter.PassCause) {
	p.mu.Lock()
	p.causes = append(p.causes, c)
	p.mu.Unlock()
}

func (p *passLog) get() []reporter.PassCause {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.causes)
}

// runReporter runs r.Run until the test ends, recording its passes.
func runReporter(t *testing.T, r *reporter.Reporter) *passLog {
	t.Helper()
	log := &passLog{}
	r.OnPass = log.add
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return log
}

// waitUntil waits for ok, failing the test after a minute (a bound for a
// test that would hang, not a performance limit).
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReporterWakesOnChange: with the periodic pass an hour away, a push is
// reported on GitHub because the store's change feed woke the reporter, and
// the execution's whole life, reported as it happens, takes no more GitHub
// calls than the budget of TestGitHubAPICallsPerExecution.
func TestReporterWakesOnChange(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := leaseReporter(e, "replica-a", e.clock)
	r.Interval = time.Hour // only a wake-up can explain a report
	r.Wake = e.store.ExecutionChanges(ctx)
	passes := runReporter(t, r)
	waitUntil(t, "the reporter's first pass, when it takes the lease", func() bool { return len(passes.get()) > 0 })

	mark := len(e.gh.Calls())
	sha := e.push()
	waitUntil(t, "the stage-only check run", func() bool { return len(e.checkRuns(bot.StageOnly, sha)) == 1 })
	got := passes.get()
	if len(got) < 2 || got[0] != reporter.PassLeaseTaken || got[1] != reporter.PassWake {
		t.Errorf("passes until the check run = %v, want [lease-taken wake ...]", got)
	}
	if slices.Contains(got, reporter.PassSafetyNet) {
		t.Errorf("a safety-net pass ran: %v", got)
	}

	e.waitState(1, bot.ExecutionSucceeded)
	waitUntil(t, "the stage-only execution's end on GitHub", func() bool {
		runs := e.checkRuns(bot.StageOnly, sha)
		return runs[0].Conclusion == "success" && !leasePending(e)
	})
	calls := e.gh.Calls()
	stage := moreClassify(calls[mark:])
	mark = len(calls)

	morePromoteAndApprove(ctx, e, nil)
	waitUntil(t, "the prod-only execution's end on GitHub", func() bool {
		runs := e.checkRuns(bot.ProdOnly, sha)
		return len(runs) == 2 && runs[1].Conclusion == "success" && !leasePending(e)
	})
	prod := moreClassify(e.gh.Calls()[mark:])
	t.Logf("reported as it happens: stage-only %s; prod-only %s; passes %v", stage, prod, passes.get())
	moreCheckCalls(t, e, stage, prod, 7, 10)
	if slices.Contains(passes.get(), reporter.PassSafetyNet) {
		t.Errorf("a safety-net pass ran: %v", passes.get())
	}
}

// TestReporterLostWakeBetweenReplicas: replica b, where the change is
// committed, is woken but does not hold the lease; the wake-up to a, the
// holder, is lost (a's Wake never fires, as a NOTIFY lost with a dropped
// LISTEN connection). a's periodic pass reports the change all the same,
// once, and b reports nothing.
func TestReporterLostWakeBetweenReplicas(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := leaseReporter(e, "replica-a", e.clock)
	a.Interval = 200 * time.Millisecond
	a.Wake = make(chan struct{}) // the lost wake-up: never fires
	aPasses := runReporter(t, a)
	waitUntil(t, "a's first pass, when it takes the lease", func() bool { return len(aPasses.get()) > 0 })

	b := leaseReporter(e, "replica-b", e.clock)
	b.Interval = time.Hour
	b.Wake = e.store.ExecutionChanges(ctx)
	bPasses := runReporter(t, b)

	sha := e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	waitUntil(t, "the stage-only execution's end on GitHub", func() bool {
		runs := e.checkRuns(bot.StageOnly, sha)
		return len(runs) == 1 && runs[0].Conclusion == "success" && !leasePending(e)
	})
	leaseNoDuplicates(e)
	if got := aPasses.get(); got[0] != reporter.PassLeaseTaken || !slices.Contains(got, reporter.PassSafetyNet) || slices.Contains(got, reporter.PassWake) {
		t.Errorf("a's passes = %v, want lease-taken, then safety-net ones and no wake", got)
	}
	if got := bPasses.get(); len(got) != 0 {
		t.Errorf("b, not holding the lease, looked: %v", got)
	}
}
