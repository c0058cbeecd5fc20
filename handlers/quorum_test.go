package handlers

import (
	"context"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// policyWith is the split pipelines' sample configuration with production
// settings added after its variables.
func policyWith(production string) string {
	return strings.Replace(sampleConfig(splitPipelines), "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n"+production, 1)
}

// promotedAndWaiting pushes, lets stage-only #1 succeed and has mallory
// promote it: prod-only #2 waits for approval, its check run reported.
func (e *surfaceEnv) promotedAndWaiting() githubtest.CheckRun {
	e.t.Helper()
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #2") {
		e.t.Fatalf("promote reply: %q", reply.Body)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.report()
	runs := e.checkRuns(bot.ProdOnly, "")
	return runs[len(runs)-1]
}

// eventsOf lists execution n's events of kind as "actor: detail".
func (e *surfaceEnv) eventsOf(n int, kind bot.EventKind) []string {
	e.t.Helper()
	ex, _ := e.execution(n)
	var out []string
	e.view(func(tx bot.Tx) error {
		evs, err := tx.Events(context.Background(), ex.ID)
		for _, ev := range evs {
			if ev.Kind == kind {
				out = append(out, ev.Actor+": "+ev.Detail)
			}
		}
		return err
	})
	return out
}

// TestAttackQuorumSamePersonTwice: with required: 2, one person's Approve
// click, a second click on the check run that still shows Approve, and an
// /stagehand approve comment count once; the check run says "1 of 2
// approvals: @alice" and keeps Approve; a second person completes it.
func TestAttackQuorumSamePersonTwice(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [alice, bob, carol], required: 2}\n"))
	e.gh.SetPermission(owner, repo, "carol", "write")
	cr := e.promotedAndWaiting()

	e.click(cr, githubapp.ActionApprove, "alice")
	e.report()
	now := e.gh.CheckRun(cr.ID)
	if !strings.Contains(now.Output.Title, "1 of 2 approvals: @alice") || strings.Join(labels(now), ",") != "Approve,Reject" {
		t.Fatalf("after one approval the check run reads %q with %v", now.Output.Title, labels(now))
	}
	e.click(now, githubapp.ActionApprove, "alice")
	if reply := e.comment("alice", "/stagehand approve 2"); !strings.HasPrefix(reply.Body, "🚫") || !strings.Contains(reply.Body, "approved prod-only #2 already") {
		t.Errorf("alice's second approval by comment was answered %q", reply.Body)
	}
	e.settle()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionWaiting {
		t.Fatalf("one person's three approvals moved #2 to %s", ex.State)
	}
	if got := e.eventsOf(2, bot.EventApproved); len(got) != 1 {
		t.Errorf("approvals recorded: %q, want alice's once", got)
	}
	if got := e.gh.CheckRun(cr.ID).Output.Title; !strings.Contains(got, "1 of 2 approvals: @alice") {
		t.Errorf("check run title %q", got)
	}
	// Another approver's click on the button the check run kept completes it.
	e.click(e.gh.CheckRun(cr.ID), githubapp.ActionApprove, "carol")
	e.waitState(2, bot.ExecutionSucceeded)
	if got := e.eventsOf(2, bot.EventApproved); len(got) != 2 || got[1] != "carol: 2 of 2 approvals: @alice, @carol" {
		t.Errorf("approvals recorded: %q, want alice's and carol's", got)
	}
}

// centuryFreeze holds every production deploy of the tests below.
const centuryFreeze = "    freezes:\n      - {from: 2000-01-01T00:00:00Z, to: 2100-01-01T00:00:00Z, reason: the long freeze}\n"

// approvedAndHeld has bob approve prod-only #2, whose deploy the freeze
// then holds.
func (e *surfaceEnv) approvedAndHeld() {
	e.t.Helper()
	e.promotedAndWaiting()
	if reply := e.comment("bob", "/stagehand approve 2"); !strings.HasPrefix(reply.Body, "✅") {
		e.t.Fatalf("bob's approval was answered %q", reply.Body)
	}
	e.waitStep(2, bot.StepDeployProduction, bot.StepWaiting)
}

// TestBreakGlassThroughComments: deploy-now --override is refused to a
// writer who is not a production approver and without a reason; an
// approver's override is recorded with its reason, shown on the check run
// and counted, and the frozen deploy runs.
func TestBreakGlassThroughComments(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob]}\n"+centuryFreeze))
	overrides := 0
	e.hooks.Overrides = func() { overrides++ }
	e.approvedAndHeld()
	e.report()
	runs := e.checkRuns(bot.ProdOnly, "")
	if sum := e.gh.CheckRun(runs[len(runs)-1].ID).Output.Summary; !strings.Contains(sum, "`/stagehand deploy-now 2 --override \"reason\"`") {
		t.Errorf("the held deploy's check run does not name the break-glass command:\n%s", sum)
	}

	if reply := e.comment("mallory", `/stagehand deploy-now 2 --override "I want it out"`); !strings.HasPrefix(reply.Body, "🚫") || !strings.Contains(reply.Body, "production approvers (bob)") {
		t.Errorf("a writer's override was answered %q", reply.Body)
	}
	if reply := e.comment("bob", "/stagehand deploy-now 2"); !strings.HasPrefix(reply.Body, "❓") || !strings.Contains(reply.Body, `--override "reason" is missing`) {
		t.Errorf("an override without a reason was answered %q", reply.Body)
	}
	if got := e.eventsOf(2, bot.EventPolicyOverride); len(got) != 0 || overrides != 0 {
		t.Fatalf("refused overrides recorded %q, counted %d", got, overrides)
	}
	if reply := e.comment("bob", `/stagehand deploy-now 2 --override "INC-42: payments down"`); !strings.HasPrefix(reply.Body, "✅") || !strings.Contains(reply.Body, "break-glass override by bob recorded") {
		t.Fatalf("bob's override was answered %q", reply.Body)
	}
	if got := e.eventsOf(2, bot.EventPolicyOverride); len(got) != 1 || got[0] != "bob: INC-42: payments down" || overrides != 1 {
		t.Errorf("override events %q, counted %d; want bob's once", got, overrides)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	e.report()
	runs = e.checkRuns(bot.ProdOnly, "")
	if sum := e.gh.CheckRun(runs[len(runs)-1].ID).Output.Summary; !strings.Contains(sum, "Break-glass override** of the deploy windows and freezes by **bob**") || !strings.Contains(sum, "INC-42: payments down") {
		t.Errorf("the check run does not show the override:\n%s", sum)
	}
}

// TestBreakGlassForbidden: where production says break_glass: false even
// an approver's override is refused, and nothing is recorded or counted.
func TestBreakGlassForbidden(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob]}\n    break_glass: false\n"+centuryFreeze))
	overrides := 0
	e.hooks.Overrides = func() { overrides++ }
	e.approvedAndHeld()
	if reply := e.comment("bob", `/stagehand deploy-now --override "INC-42"`); !strings.HasPrefix(reply.Body, "🚫") || !strings.Contains(reply.Body, "break_glass: false") {
		t.Errorf("an override where break_glass is false was answered %q", reply.Body)
	}
	if got := e.eventsOf(2, bot.EventPolicyOverride); len(got) != 0 || overrides != 0 {
		t.Errorf("a refused override recorded %q, counted %d", got, overrides)
	}
}
