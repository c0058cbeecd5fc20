package bot_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// audited lists the audit records as "actor action outcome detail",
// oldest first.
func (e *gateEnv) audited() []string {
	e.t.Helper()
	var rs []bot.AuditRecord
	err := e.store.View(e.ctx, func(tx bot.Tx) (err error) {
		rs, err = tx.AuditRecords(e.ctx, bot.AuditFilter{Oldest: true})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Actor+" "+string(r.Action)+" "+string(r.Outcome)+" "+r.Detail+" "+r.Delivery)
	}
	return out
}

// TestAuditOfCommands: the engine's commands write their audit record in
// their own transaction, with the request's delivery; a refused command
// writes none (the webhook room records the refusal), and a variable is
// recorded by name, never by value.
func TestAuditOfCommands(t *testing.T) {
	e := newGateEnv(t, gateYAML("    approvers: {users: [alice]}\n"+frozen), nil)
	withDelivery := func(r bot.Request, guid string) bot.Request { r.Delivery = guid; return r }
	if _, err := e.eng.Approve(e.ctx, withDelivery(approver("alice", "a1"), "guid-approve"), e.prog, 2); err != nil {
		t.Fatal(err)
	}
	e.work()
	_, err := e.eng.Override(e.ctx, approver("alice", "o1"), e.prog, 2, "")
	wantRefused(t, err, bot.RefusalBadRequest)
	if _, err := e.eng.Override(e.ctx, withDelivery(approver("alice", "o2"), "guid-override"), e.prog, 2, "INC-42"); err != nil {
		t.Fatal(err)
	}
	e.work()
	if _, err := e.eng.SetVariable(e.ctx, withDelivery(approver("alice", "v1"), "guid-var"), e.prog, bot.Stage, "LOG_LEVEL", "value-canary-77"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.UnsetVariable(e.ctx, approver("alice", "v2"), e.prog, bot.Stage, "LOG_LEVEL"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"alice approve done 1 of 1 approvals: @alice guid-approve",
		"alice override done INC-42 guid-override",
		"alice variable-set done stage/LOG_LEVEL guid-var",
		"alice variable-unset done stage/LOG_LEVEL ",
	}
	got := e.audited()
	if len(got) >= len(want) {
		got = got[len(got)-len(want):] // after the records of the setup's start and promotion
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
}
