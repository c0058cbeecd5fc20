package bot_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

const quorumOfTwo = "    approvers: {users: [alice, bob, carol, dev], required: 2}\n"

// approvals lists the approval events of execution n as "actor kind detail".
func (e *gateEnv) approvals(n int) []string {
	var out []string
	for _, ev := range e.events(n) {
		if ev.Kind == bot.EventApproved || ev.Kind == bot.EventApprovedRollback || ev.Kind == bot.EventRejected {
			out = append(out, strings.TrimSpace(ev.Actor+" "+string(ev.Kind)+" "+ev.Detail))
		}
	}
	return out
}

// Two approvers needed: the first approval keeps the gate waiting and
// says so; the second lets the deploy go on.
func TestQuorumNeedsTwoApprovers(t *testing.T) {
	e := newGateEnv(t, gateYAML(quorumOfTwo), nil)
	if s := e.wantApprovalWaiting(2); s.Message != "waiting for approval; 2 distinct approvals needed" {
		t.Errorf("approval step opens saying %q", s.Message)
	}
	res, err := e.eng.Approve(e.ctx, approver("alice", "c1"), e.prog, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "1 of 2 approvals: @alice") || !strings.Contains(res.Message, "waits for 1 more approver") {
		t.Errorf("first approval answered %q", res.Message)
	}
	e.work()
	if s := e.wantApprovalWaiting(2); s.Message != "waiting for approval: 1 of 2 approvals: @alice; 1 more needed" {
		t.Errorf("approval step says %q", s.Message)
	}
	if _, err := e.eng.Approve(e.ctx, approver("bob", "c2"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	e.work()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("#2 is %s (%s) after two approvals, want succeeded", ex.State, ex.Message)
	}
	if s := e.step(2, bot.StepApproval); s.Message != "approved by alice, bob (2 of 2 approvals: @alice, @bob)" {
		t.Errorf("approval step says %q", s.Message)
	}
	want := []string{"alice approved 1 of 2 approvals: @alice", "bob approved 2 of 2 approvals: @alice, @bob"}
	if diff := cmp.Diff(want, e.approvals(2)); diff != "" {
		t.Errorf("approval events (-want +got):\n%s", diff)
	}
}

// Without required, one approval is enough and is recorded as before
// quorums existed.
func TestQuorumDefaultIsOneApproval(t *testing.T) {
	e := newGateEnv(t, gateYAML("    approvers: {users: [alice, bob]}\n"), nil)
	res, err := e.eng.Approve(e.ctx, approver("alice", "c1"), e.prog, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Message, "prod-only #2 approved by alice: ") {
		t.Errorf("approval answered %q", res.Message)
	}
	e.work()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("#2 is %s, want succeeded", ex.State)
	}
	if diff := cmp.Diff([]string{"alice approved"}, e.approvals(2)); diff != "" {
		t.Errorf("approval events (-want +got):\n%s", diff)
	}
	if s := e.step(2, bot.StepApproval); s.Message != "approved by alice" {
		t.Errorf("approval step says %q", s.Message)
	}
}

// The same person approving again (another comment, a click after a
// comment, another spelling of the login) counts once: refused, nothing
// recorded, the gate still waits.
func TestQuorumSamePersonCountsOnce(t *testing.T) {
	e := newGateEnv(t, gateYAML(quorumOfTwo), nil)
	if _, err := e.eng.Approve(e.ctx, approver("alice", "comment/1/command-1"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	for i, who := range []string{"alice", "ALICE", "Alice"} {
		_, err := e.eng.Approve(e.ctx, approver(who, "click/9/"+who), e.prog, 2)
		wantRefused(t, err, bot.RefusalAlreadyApproved)
		if i == 0 && !strings.Contains(err.Error(), "@alice approved prod-only #2 already (1 of 2 approvals: @alice); each approver counts once") {
			t.Errorf("refusal says %q", err)
		}
	}
	e.work()
	e.wantApprovalWaiting(2)
	if diff := cmp.Diff([]string{"alice approved 1 of 2 approvals: @alice"}, e.approvals(2)); diff != "" {
		t.Errorf("approval events (-want +got):\n%s", diff)
	}
}

// With prevent_self_approval, the promoter and the one who triggered the
// source never count: they are refused and the quorum needs two others.
func TestQuorumExcludesSelfApproval(t *testing.T) {
	e := newGateEnv(t, gateYAML("    approvers: {users: [alice, bob, dev, pusher], required: 2}\n    prevent_self_approval: true\n"), nil)
	for _, who := range []string{"dev", "pusher"} {
		_, err := e.eng.Approve(e.ctx, approver(who, "self-"+who), e.prog, 2)
		wantRefused(t, err, bot.RefusalSelfApproval)
	}
	if _, err := e.eng.Approve(e.ctx, approver("alice", "c1"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	e.work()
	e.wantApprovalWaiting(2)
	if _, err := e.eng.Approve(e.ctx, approver("bob", "c2"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	e.work()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("#2 is %s, want succeeded", ex.State)
	}
	want := []string{"alice approved 1 of 2 approvals: @alice", "bob approved 2 of 2 approvals: @alice, @bob"}
	if diff := cmp.Diff(want, e.approvals(2)); diff != "" {
		t.Errorf("approval events (-want +got):\n%s", diff)
	}
}

// A reject by any approver ends the execution, whatever approvals it has.
func TestQuorumRejectEndsIt(t *testing.T) {
	e := newGateEnv(t, gateYAML(quorumOfTwo), nil)
	if _, err := e.eng.Approve(e.ctx, approver("alice", "c1"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Reject(e.ctx, approver("bob", "c2"), e.prog, 2, "not during the sale"); err != nil {
		t.Fatal(err)
	}
	e.work()
	ex, _ := e.execution(2)
	if ex.State != bot.ExecutionCancelled || !strings.Contains(ex.Message, "rejected by bob: not during the sale") {
		t.Fatalf("#2 is %s (%s), want cancelled by bob's reject", ex.State, ex.Message)
	}
	if s := e.step(2, bot.StepDeployProduction); s.State != bot.StepSkipped {
		t.Errorf("deploy-production is %s, want skipped", s.State)
	}
	_, err := e.eng.Approve(e.ctx, approver("carol", "c3"), e.prog, 2)
	wantRefused(t, err, bot.RefusalWrongState)
}

// Rule G inside a quorum: each approval must be an explicit rollback
// approval, and each counts once toward the same quorum.
func TestQuorumRollback(t *testing.T) {
	e := newGateEnvRollback(t, gateYAML(quorumOfTwo))
	_, err := e.eng.Approve(e.ctx, approver("alice", "c1"), e.prog, 2)
	wantRefused(t, err, bot.RefusalNeedsRollbackApproval)
	if _, err := e.eng.ApproveRollback(e.ctx, approver("alice", "c2"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	if s := e.wantApprovalWaiting(2); !strings.HasPrefix(s.Message, "waiting for Approve Rollback: 1 of 2 approvals: @alice; 1 more needed (would roll") {
		t.Errorf("approval step says %q", s.Message)
	}
	_, err = e.eng.ApproveRollback(e.ctx, approver("alice", "c3"), e.prog, 2)
	wantRefused(t, err, bot.RefusalAlreadyApproved)
	if _, err := e.eng.ApproveRollback(e.ctx, approver("bob", "c4"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	e.work()
	if ex, _ := e.execution(2); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("#2 is %s, want succeeded", ex.State)
	}
	want := []string{"alice approved-rollback 1 of 2 approvals: @alice", "bob approved-rollback 2 of 2 approvals: @alice, @bob"}
	if diff := cmp.Diff(want, e.approvals(2)); diff != "" {
		t.Errorf("approval events (-want +got):\n%s", diff)
	}
	if s := e.step(2, bot.StepApproval); !strings.HasPrefix(s.Message, "rollback approved by alice, bob (2 of 2 approvals: @alice, @bob): would roll") {
		t.Errorf("approval step says %q", s.Message)
	}
}

// Attack: the pushed commit's own file lowers required to 1. The policy is
// the default branch's file, so one approval is still not enough.
func TestQuorumSideBranchFileCannotLowerIt(t *testing.T) {
	side := gateYAML("    approvers: {users: [alice, bob, carol, dev], required: 1}\n")
	e := newGateEnv(t, gateYAML(quorumOfTwo), side)
	if _, err := e.eng.Approve(e.ctx, approver("alice", "c1"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	e.work()
	e.wantApprovalWaiting(2)
}
