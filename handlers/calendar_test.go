package handlers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// calendarConfig is sampleConfig with production frozen from an hour ago
// to an hour from now (the handlers' test clock starts at the real time).
func calendarConfig(now time.Time) string {
	cfg := sampleConfig(splitPipelines)
	freeze := fmt.Sprintf("    freezes: [{from: %s, to: %s, reason: \"release train\"}]\n",
		now.Add(-time.Hour).UTC().Format(time.RFC3339), now.Add(time.Hour).UTC().Format(time.RFC3339))
	return strings.Replace(cfg, "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n"+freeze, 1)
}

// heldInFreeze pushes, promotes stage-only #1 and approves prod-only #2,
// whose production deploy then waits for the freeze around start.
func heldInFreeze(t *testing.T, start time.Time) *surfaceEnv {
	e := waitingForApproval(t, calendarConfig(start))
	ctx := context.Background()
	if _, err := e.engine.Approve(ctx, bot.Internal("bob"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepDeployProduction, bot.StepWaiting)
	return e
}

// waitingForApproval pushes cfg, promotes stage-only #1 and returns when
// prod-only #2 waits for its approval.
func waitingForApproval(t *testing.T, cfg string) *surfaceEnv {
	e := newSurfaceEnv(t, cfg)
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	if _, err := e.engine.Promote(context.Background(), bot.Internal("alice"), e.prog.ID, 1); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	return e
}

// TestCalendarOnGitHub: through the webhook handlers, the worker and the
// reporter, a promoted deploy approved inside a freeze waits; its check
// run says why and until when (in progress, no button), GitHub gets no
// Deployment for it, /stagehand status shows the freeze; when the freeze
// ends a reconcile deploys it, once.
func TestCalendarOnGitHub(t *testing.T) {
	start := time.Now()
	e := heldInFreeze(t, start)
	ctx := context.Background()
	e.report()
	runs := e.checkRuns(bot.ProdOnly, "")
	last := runs[len(runs)-1]
	if last.Status != "in_progress" || len(last.Actions) != 0 || !strings.HasPrefix(last.Output.Title, "deploy-production waits: opens ") {
		t.Fatalf("the held deploy's check run: status %s, title %q, buttons %v", last.Status, last.Output.Title, labels(last))
	}
	if !strings.Contains(last.Output.Summary, "production is frozen until "+start.Add(time.Hour).UTC().Format(time.RFC3339)+": release train") {
		t.Errorf("the check run does not say why:\n%s", last.Output.Summary)
	}
	for _, d := range e.gh.Deployments(owner, repo) {
		if d.Environment == "production" {
			t.Fatalf("a GitHub Deployment to production exists for a deploy that waits: %+v", d)
		}
	}
	reply := e.comment("alice", "/stagehand status")
	if !strings.Contains(reply.Body, ": release train") || !strings.Contains(reply.Body, "closed: production is frozen until") {
		t.Errorf("status does not show the freeze:\n%s", reply.Body)
	}

	e.clock.Advance(time.Hour + time.Minute)
	if err := e.engine.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitReported(2, bot.ExecutionSucceeded)
	if _, steps := e.execution(2); steps[len(steps)-1].Attempt != 1 {
		t.Errorf("the deploy ran %d times, want once", steps[len(steps)-1].Attempt)
	}
	var prod int
	for _, d := range e.gh.Deployments(owner, repo) {
		if d.Environment == "production" {
			prod++
		}
	}
	if prod != 1 {
		t.Errorf("%d production Deployments on GitHub, want 1", prod)
	}
}

// TestCalendarCancelledWhileHeld: a deploy cancelled while it waits for
// its calendar never ran, so GitHub gets no failed Deployment for it.
func TestCalendarCancelledWhileHeld(t *testing.T) {
	e := heldInFreeze(t, time.Now())
	ctx := context.Background()
	if _, err := e.engine.Cancel(ctx, bot.Internal("bob"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	e.waitReported(2, bot.ExecutionCancelled)
	for _, d := range e.gh.Deployments(owner, repo) {
		if d.Environment == "production" {
			t.Fatalf("a GitHub Deployment to production exists for a deploy that never started: %+v", d)
		}
	}
}
