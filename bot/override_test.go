package bot_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// frozen is a production freeze around the test clock's whole story.
const frozen = "    freezes:\n      - {from: 2026-02-01T00:00:00Z, to: 2026-04-01T00:00:00Z, reason: spring freeze}\n"

// overrides lists execution n's break-glass overrides as "actor: reason".
func (e *gateEnv) overrides(n int) []string {
	var got []string
	for _, ev := range bot.Overrides(e.events(n)) {
		got = append(got, ev.Actor+": "+ev.Detail)
	}
	return got
}

// heldByFreeze approves prod-only #2, whose deploy the freeze then holds.
func (e *gateEnv) heldByFreeze() {
	e.t.Helper()
	if _, err := e.eng.Approve(e.ctx, approver("alice", "approve"), e.prog, 2); err != nil {
		e.t.Fatal(err)
	}
	e.work()
	ex, _ := e.execution(2)
	if s := e.step(2, bot.StepDeployProduction); ex.State != bot.ExecutionWaiting || s.State != bot.StepWaiting || !strings.Contains(s.Message, "spring freeze") {
		e.t.Fatalf("#2 is %s, its deploy %s (%s); want the freeze to hold it", ex.State, s.State, s.Message)
	}
}

// The break-glass override: refused without a reason, to someone who is
// not a production approver, and before the deploy is held (no override
// in advance); otherwise recorded with its reason, and the frozen deploy
// starts at once. It opens no other gate.
func TestOverrideLetsAFrozenDeployStart(t *testing.T) {
	e := newGateEnv(t, gateYAML("    approvers: {users: [alice]}\n"+frozen), nil)
	notApprover := bot.Request{Actor: "mallory", Source: bot.FromComment, Authorization: &bot.Authorization{ProductionApprover: false, Approvers: "alice"}}

	// While #2 waits for approval its deploy is not held yet: no override
	// in advance, and the approval is not overridden.
	_, err := e.eng.Override(e.ctx, approver("alice", "o0"), e.prog, 2, "in advance")
	wantRefused(t, err, bot.RefusalWrongState)
	e.heldByFreeze()

	_, err = e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "  \t ")
	wantRefused(t, err, bot.RefusalBadRequest)
	if !strings.Contains(err.Error(), "needs a reason") {
		t.Errorf("refusal without a reason says %q", err)
	}
	_, err = e.eng.Override(e.ctx, notApprover, e.prog, 2, "I want it out")
	wantRefused(t, err, bot.RefusalNotApprover)
	_, err = e.eng.Override(e.ctx, approver("alice", "o2"), e.prog, 1, "wrong one")
	wantRefused(t, err, bot.RefusalWrongState) // stage-only #1 has ended
	if got := e.overrides(2); len(got) != 0 {
		t.Fatalf("refused overrides recorded %v", got)
	}

	res, err := e.eng.Override(e.ctx, approver("alice", "o3"), e.prog, 0, "payment outage,\n INC-42")
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Number != 2 || !strings.Contains(res.Message, `break-glass override by alice recorded ("payment outage, INC-42"): deploy-production starts now, although production is frozen`) {
		t.Errorf("override answered %s: %q", res.Execution, res.Message)
	}
	if diff := cmp.Diff([]string{"alice: payment outage, INC-42"}, e.overrides(2)); diff != "" {
		t.Errorf("override events (-want +got):\n%s", diff)
	}
	e.work()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("#2 is %s (%s) after the override, want succeeded", ex.State, ex.Message)
	}
}

// An override does not replace the approval quorum: the deploy is held
// only after the quorum is met.
func TestOverrideDoesNotSkipTheQuorum(t *testing.T) {
	e := newGateEnv(t, gateYAML(quorumOfTwo+frozen), nil)
	if _, err := e.eng.Approve(e.ctx, approver("alice", "a1"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "hotfix")
	wantRefused(t, err, bot.RefusalWrongState)
	e.wantApprovalWaiting(2)
}

func TestOverrideRefusedWhereBreakGlassIsOff(t *testing.T) {
	e := newGateEnv(t, gateYAML("    break_glass: false\n"+frozen), nil)
	e.heldByFreeze()
	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "hotfix")
	wantRefused(t, err, bot.RefusalBreakGlassOff)
	if !strings.Contains(err.Error(), "break_glass: false") {
		t.Errorf("refusal says %q", err)
	}
	if got := e.overrides(2); len(got) != 0 {
		t.Fatalf("refused override recorded %v", got)
	}
	e.work()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionWaiting {
		t.Errorf("#2 is %s, want it still held", ex.State)
	}
}

// Attack: the pushed commit's own file cannot allow what the default
// branch forbids; the policy read is the default branch's.
func TestOverrideSideBranchFileCannotAllowIt(t *testing.T) {
	e := newGateEnv(t, gateYAML("    break_glass: false\n"+frozen), gateYAML("    break_glass: true\n"+frozen))
	e.heldByFreeze()
	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "hotfix")
	wantRefused(t, err, bot.RefusalBreakGlassOff)
}
