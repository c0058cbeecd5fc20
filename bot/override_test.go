package bot_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// The break-glass override: refused without a reason, to someone who is
// not a production approver, and where production says break_glass:
// false; otherwise recorded as an event whose detail is the reason. It
// opens no other gate: the approval still waits.
func TestOverride(t *testing.T) {
	e := newGateEnv(t, gateYAML("    approvers: {users: [alice]}\n"), nil)
	notApprover := bot.Request{Actor: "mallory", Source: bot.FromComment, Authorization: &bot.Authorization{ProductionApprover: false, Approvers: "alice"}}

	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "  \t ")
	wantRefused(t, err, bot.RefusalBadRequest)
	if !strings.Contains(err.Error(), "needs a reason") {
		t.Errorf("refusal without a reason says %q", err)
	}
	_, err = e.eng.Override(e.ctx, notApprover, e.prog, 2, "I want it out")
	wantRefused(t, err, bot.RefusalNotApprover)
	_, err = e.eng.Override(e.ctx, approver("alice", "o2"), e.prog, 1, "wrong one")
	wantRefused(t, err, bot.RefusalWrongState) // stage-only #1 has no production deploy
	if got := bot.Overrides(e.events(2)); len(got) != 0 {
		t.Fatalf("refused overrides recorded %v", got)
	}

	res, err := e.eng.Override(e.ctx, approver("alice", "o3"), e.prog, 0, "payment outage,\n INC-42")
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Number != 2 || !strings.Contains(res.Message, `break-glass override by alice recorded ("payment outage, INC-42")`) {
		t.Errorf("override answered %s: %q", res.Execution, res.Message)
	}
	var got []string
	for _, ev := range bot.Overrides(e.events(2)) {
		got = append(got, ev.Actor+": "+ev.Detail)
	}
	if diff := cmp.Diff([]string{"alice: payment outage, INC-42"}, got); diff != "" {
		t.Errorf("override events (-want +got):\n%s", diff)
	}
	e.work()
	e.wantApprovalWaiting(2) // the approval is not overridden
}

func TestOverrideRefusedWhereBreakGlassIsOff(t *testing.T) {
	e := newGateEnv(t, gateYAML("    break_glass: false\n"), nil)
	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "hotfix")
	wantRefused(t, err, bot.RefusalBreakGlassOff)
	if !strings.Contains(err.Error(), "break_glass: false") {
		t.Errorf("refusal says %q", err)
	}
	if got := bot.Overrides(e.events(2)); len(got) != 0 {
		t.Fatalf("refused override recorded %v", got)
	}
}

// Attack: the pushed commit's own file cannot allow what the default
// branch forbids; the policy read is the default branch's.
func TestOverrideSideBranchFileCannotAllowIt(t *testing.T) {
	e := newGateEnv(t, gateYAML("    break_glass: false\n"), gateYAML("    break_glass: true\n"))
	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "hotfix")
	wantRefused(t, err, bot.RefusalBreakGlassOff)
}
