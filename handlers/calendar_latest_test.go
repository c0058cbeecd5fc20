package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// The deploy calendar gate holds executions to the windows and freezes of
// the latest policy pushed to the default branch.

// latestPolicy is what the store holds as the program's latest policy.
func (e *surfaceEnv) latestPolicy() bot.Policy {
	e.t.Helper()
	var pol bot.Policy
	e.view(func(tx bot.Tx) (err error) {
		pol, err = tx.LatestPolicy(context.Background(), e.prog.ID)
		return err
	})
	return pol
}

// pushMain commits file as .github/stagehand.yml on main and sends the push.
func (e *surfaceEnv) pushMain(file string) string {
	e.t.Helper()
	e.repo.commit("policy change", map[string]string{bot.ConfigPath: file})
	return e.push()
}

// stillHeld reconciles and fails unless prod-only #2's deploy still waits
// with a message holding want.
func (e *surfaceEnv) stillHeld(want string) {
	e.t.Helper()
	if err := e.engine.Reconcile(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	ex, steps := e.execution(2)
	last := steps[len(steps)-1]
	if ex.State != bot.ExecutionWaiting || last.State != bot.StepWaiting || !strings.Contains(last.Message, want) {
		e.t.Fatalf("%s is %s (%q), %s %s (%q); want it held with %q", ex, ex.State, ex.Message, last.Name, last.State, last.Message, want)
	}
}

// TestCalendarFreezeMergedWhileWaitingForApproval: prod-only #2 waits for
// its approval when a freeze is pushed to the default branch; approved
// inside the freeze it waits, and deploys once the freeze ends.
func TestCalendarFreezeMergedWhileWaitingForApproval(t *testing.T) {
	start := time.Now()
	e := waitingForApproval(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	sha := e.pushMain(calendarConfig(start))
	if got := e.latestPolicy(); got.Commit != sha {
		t.Fatalf("the latest policy is at %s, want the pushed %s", got.Commit, sha)
	}
	if _, err := e.engine.Approve(ctx, bot.Internal("bob"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepDeployProduction, bot.StepWaiting)
	e.stillHeld("production is frozen until")
	e.clock.Advance(time.Hour + time.Minute)
	if err := e.engine.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	if _, steps := e.execution(2); steps[len(steps)-1].Attempt != 1 {
		t.Errorf("the deploy ran %d times, want once", steps[len(steps)-1].Attempt)
	}
}

// TestCalendarFreezeLiftedOnTheDefaultBranch: a deploy held by a freeze
// goes when a push to the default branch removes the freeze.
func TestCalendarFreezeLiftedOnTheDefaultBranch(t *testing.T) {
	e := heldInFreeze(t, time.Now())
	e.stillHeld("release train")
	e.pushMain(sampleConfig(splitPipelines))
	if err := e.engine.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
}

// TestCalendarLatestPolicyAttacks: what may not lift a freeze.
func TestCalendarLatestPolicyAttacks(t *testing.T) {
	t.Run("an invalid file on the default branch keeps the last valid freeze", func(t *testing.T) {
		e := heldInFreeze(t, time.Now())
		before := e.latestPolicy()
		e.pushMain("version: 1\nenvironments: {production: {freezes: oops}}\n")
		if got := e.latestPolicy(); got.Commit != before.Commit {
			t.Fatalf("an invalid file became the latest policy (%s, was %s)", got.Commit, before.Commit)
		}
		e.stillHeld("release train")
	})
	t.Run("a side branch's push without the freeze changes nothing", func(t *testing.T) {
		e := heldInFreeze(t, time.Now())
		before := e.latestPolicy()
		e.pushBranch("main-but-not", map[string]string{bot.ConfigPath: sampleConfig(splitPipelines)})
		e.settle()
		if got := e.latestPolicy(); got.Commit != before.Commit || string(got.Raw) != string(before.Raw) {
			t.Fatalf("a side-branch push changed the latest policy to %s (was %s)", got.Commit, before.Commit)
		}
		e.stillHeld("release train")
	})
}

// pushOf sends the push webhook of sha to main, as GitHub sends it (late,
// here: main may have moved on since).
func (e *surfaceEnv) pushOf(sha string) {
	e.t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("push/branch-created.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	p["ref"], p["after"], p["created"] = "refs/heads/main", sha, false
	p["repository"].(map[string]any)["default_branch"] = "main"
	e.setRepo(p)
	e.deliver("push", p)
}

// TestCalendarLatePushKeepsTheNewerPolicy: the push of an older commit
// of the default branch, handled after a newer one (a retry, a delayed
// delivery), does not bring its older policy back: the latest policy is
// the file at the branch's head.
func TestCalendarLatePushKeepsTheNewerPolicy(t *testing.T) {
	start := time.Now()
	e := heldInFreeze(t, start)
	lifted := e.repo.commit("lift the freeze", map[string]string{bot.ConfigPath: sampleConfig(splitPipelines)})
	frozen := e.pushMain(calendarConfig(start)) // the freeze again, handled first
	e.pushOf(lifted)                            // the older push, handled late
	if got := e.latestPolicy(); got.Commit != frozen {
		t.Fatalf("the latest policy is at %s after the late push of %s, want the head %s", got.Commit, lifted, frozen)
	}
	e.stillHeld("release train")
}
