package githubapp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// A quorum of two with one approval: the check run says "1 of 2
// approvals: @alice" and keeps Approve (and Reject) for the others; the
// same person approving twice (button and comment) is shown once.
func TestRenderQuorum(t *testing.T) {
	in := renderCases()["approval"]
	in.RequiredApprovals = 2
	in.Events = append(in.Events,
		renderEvent(107, 4*time.Minute, "alice", string(bot.EventApproved), "1 of 2 approvals: @alice"),
		renderEvent(107, 5*time.Minute, "Alice", string(bot.EventApproved), ""))
	v := githubapp.RenderCheckRun(in)
	renderCheckLimits(t, v)
	renderCheckGolden(t, "approval-quorum", v)
	if !strings.HasSuffix(v.Title, ": 1 of 2 approvals: @alice") || !strings.Contains(v.Summary, "**1 of 2 approvals: @alice.**") {
		t.Errorf("title %q / summary %q: no quorum state", v.Title, v.Summary)
	}
	if diff := cmp.Diff([]string{"approve=Promote to Prod", "reject=Reject"}, renderShapeOf(in).Actions); diff != "" {
		t.Errorf("buttons (-want +got):\n%s", diff)
	}

	// Without a quorum the check run is what it always was.
	one := renderCases()["approval"]
	one.RequiredApprovals = 1
	if diff := cmp.Diff(githubapp.RenderCheckRun(renderCases()["approval"]), githubapp.RenderCheckRun(one)); diff != "" {
		t.Errorf("required: 1 changed the check run (-without +with):\n%s", diff)
	}
}

// A break-glass override shows on the check run: who, when and why, in
// the summary and in the activity.
func TestRenderOverride(t *testing.T) {
	in := renderCases()["approval"]
	in.Events = append(in.Events, renderEvent(107, 4*time.Minute, "alice", string(bot.EventPolicyOverride), "payment outage, INC-42"))
	v := githubapp.RenderCheckRun(in)
	renderCheckLimits(t, v)
	renderCheckGolden(t, "approval-override", v)
	for _, want := range []string{
		"🔓 **Break-glass override** of the deploy windows and freezes by **alice** at 2026-03-02 09:04 UTC:\n\n> payment outage, INC-42",
		"**alice** overrode the deploy windows and freezes (break-glass) (payment outage, INC-42)",
	} {
		if !strings.Contains(v.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, v.Summary)
		}
	}
}

// A held deploy's check run names the break-glass command (there is no
// button: the reason is mandatory), unless break_glass is false.
func TestRenderHeldOffersBreakGlass(t *testing.T) {
	in := renderCases()["promoted"]
	in.Steps = append([]bot.Step(nil), in.Steps...)
	in.Execution.State = bot.ExecutionWaiting
	for i := range in.Steps {
		if in.Steps[i].Name == bot.StepDeployProduction {
			in.Steps[i].State, in.Steps[i].Message = bot.StepWaiting, renderHeldMessage
		}
	}
	v := githubapp.RenderCheckRun(in)
	if want := "a production approver can start it now with `/stagehand deploy-now 14 --override \"reason\"`"; !strings.Contains(v.Summary, want) {
		t.Errorf("summary lacks %q:\n%s", want, v.Summary)
	}
	in.BreakGlassOff = true
	v = githubapp.RenderCheckRun(in)
	if want := "Break-glass is off here (`break_glass: false`)"; !strings.Contains(v.Summary, want) || strings.Contains(v.Summary, "deploy-now") {
		t.Errorf("summary with break_glass: false:\n%s", v.Summary)
	}
}
