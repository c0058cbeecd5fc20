package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
	"github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/state"
)

// auditSince returns the audit records after the one of ID after, oldest
// first.
func (e *surfaceEnv) auditSince(after int64) []bot.AuditRecord {
	e.t.Helper()
	var out []bot.AuditRecord
	e.view(func(tx bot.Tx) (err error) {
		out, err = tx.AuditRecords(context.Background(), bot.AuditFilter{Oldest: true, After: after})
		return err
	})
	return out
}

// executionID is the id of execution number n.
func (e *surfaceEnv) executionID(n int) int64 {
	e.t.Helper()
	ex, _ := e.execution(n)
	return ex.ID
}

// lastAuditID is the ID of the newest record (0: none).
func (e *surfaceEnv) lastAuditID() int64 {
	e.t.Helper()
	var out []bot.AuditRecord
	e.view(func(tx bot.Tx) (err error) {
		out, err = tx.AuditRecords(context.Background(), bot.AuditFilter{Limit: 1})
		return err
	})
	if len(out) == 0 {
		return 0
	}
	return out[0].ID
}

// refusal is what an attack's record must say.
type refusal struct {
	Actor, Action, Code string
	Outcome             bot.AuditOutcome
}

// TestAuditAttacksLeaveRefusals: every command and click of the attack
// table (docs/security.md) leaves a refusal record naming the person, the
// action, the refusal's code and the delivery it came from, and changes
// nothing else.
func TestAuditAttacksLeaveRefusals(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.gh.SetPermission(owner, repo, "stranger", "none")
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	refused := func(a, action, code string) refusal {
		return refusal{Actor: a, Action: action, Code: code, Outcome: bot.AuditRefused}
	}
	check := func(name string, attack func(), want ...refusal) {
		t.Helper()
		from := e.lastAuditID()
		attack()
		var got []refusal
		for _, r := range e.auditSince(from) {
			if r.Delivery == "" {
				t.Errorf("%s: record %+v names no delivery", name, r)
			}
			if r.Outcome != bot.AuditRefused || r.Reason == "" {
				t.Errorf("%s: record %+v, want a refusal with its words", name, r)
			}
			got = append(got, refusal{Actor: r.Actor, Action: string(r.Action), Code: r.Code, Outcome: r.Outcome})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: audit records (-want +got):\n%s", name, diff)
		}
	}

	// A side branch's file: its push starts nothing; the decision is
	// recorded, refused with rule A's reason.
	evil := strings.Replace(guardedPolicy(), "  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n",
		"  full-stack: {branch: evil, trigger: on-git-changes, approval: false}\n", 1)
	from := e.lastAuditID()
	e.pushBranch("evil", map[string]string{".github/stagehand.yml": evil})
	e.settle()
	pushed := e.auditSince(from)
	if len(pushed) == 0 {
		t.Error("the side branch's push left no audit record")
	}
	for _, r := range pushed {
		if r.Action != bot.AuditTrigger || r.Outcome != bot.AuditRefused || r.Actor != "mallory" || r.Code == "" || r.Delivery == "" {
			t.Errorf("the side branch's push left %+v, want refused triggers by mallory with a reason code", r)
		}
	}

	e.comment("alice", "/stagehand promote")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.report()
	check("a writer approves by comment", func() { e.deliverComment("mallory", "/stagehand approve 2", nil) },
		refused("mallory", "approve", string(bot.RefusalNotApprover)))
	// The refusal names the execution the command named.
	if recs, two := e.auditSince(e.lastAuditID()-1), e.executionID(2); len(recs) != 1 || recs[0].ExecutionID != two {
		t.Errorf("the refused approve 2 was recorded as %+v, want execution %d", recs, two)
	}
	prod := e.checkRuns(bot.ProdOnly, "")
	check("a writer approves by button", func() { e.click(prod[len(prod)-1], githubapp.ActionApprove, "mallory"); e.settle() },
		refused("mallory", githubapp.ActionApprove, string(bot.RefusalNotApprover)))
	check("a denied variable name", func() { e.deliverComment("bob", "/stagehand env set stage BASH_ENV=/tmp/x", nil) },
		refused("bob", "env", string(bot.RefusalBadRequest)))
	check("a writer rejects", func() { e.deliverComment("mallory", "/stagehand reject 2 no", nil) },
		refused("mallory", "reject", string(bot.RefusalNotApprover)))
	check("a writer restores production", func() { e.deliverComment("mallory", "/stagehand restore production 1", nil) },
		refused("mallory", "restore", string(bot.RefusalNotApprover)))
	check("a writer breaks the glass", func() { e.deliverComment("mallory", `/stagehand deploy-now 2 --override "I want it out"`, nil) },
		refused("mallory", "deploy-now", string(bot.RefusalNotApprover)))
	check("who may not: read permission", func() { e.deliverComment("rita", "/stagehand promote", nil) },
		refused("rita", "promote", string(bot.RefusalNoPermission)))
	check("who may not: no access, by button", func() { e.click(e.checkRuns(bot.StageOnly, "")[0], githubapp.ActionPromote, "stranger"); e.settle() },
		refused("stranger", githubapp.ActionPromote, string(bot.RefusalNoPermission)))

	e.comment("bob", "/stagehand approve 2")
	e.waitStep(2, bot.StepSchedule, bot.StepWaiting)
	e.report()
	for _, cmd := range []struct{ body, action string }{
		{"/stagehand schedule now 2", "schedule"}, {"/stagehand schedule 2030-01-01T10:00:00Z 2", "schedule"}, {"/stagehand cancel 2", "cancel"},
		{"/stagehand env set production LOG_LEVEL=trace", "env"}, {"/stagehand env unset production LOG_LEVEL", "env"},
	} {
		check(cmd.body+" by a writer", func() { e.deliverComment("mallory", cmd.body, nil) },
			refused("mallory", cmd.action, string(bot.RefusalNotApprover)))
	}
	prod = e.checkRuns(bot.ProdOnly, "")
	check("Deploy Now by a writer", func() { e.click(prod[len(prod)-1], githubapp.ActionDeployNow, "mallory"); e.settle() },
		refused("mallory", githubapp.ActionDeployNow, string(bot.RefusalNotApprover)))

	// Replays: a comment under a new GUID; the same comment too late; a
	// click its check run no longer offers.
	var captured []byte
	e.deliverComment("bob", "/stagehand cancel 2", func(p map[string]any) { captured, _ = json.Marshal(p) })
	e.waitState(2, bot.ExecutionCancelled)
	e.report()
	check("a replayed comment", func() {
		if err := e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: "replayed-guid", Event: "issue_comment", Payload: captured}); err != nil {
			t.Fatal(err)
		}
	}, refused("bob", "cancel", "already-done"))
	e.clock.Advance(11 * 60e9)
	check("a stale comment", func() {
		if err := e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: "replayed-later", Event: "issue_comment", Payload: captured}); err != nil {
			t.Fatal(err)
		}
	}, refused("bob", "stale-comment", string(bot.RefusalStale)))
	check("a replayed click", func() { e.click(prod[len(prod)-1], githubapp.ActionDeployNow, "bob"); e.settle() },
		refused("bob", githubapp.ActionDeployNow, string(bot.RefusalStale)))

	// prevent_self_approval: bob promotes, then approves his own promotion.
	e.comment("bob", "/stagehand promote")
	e.waitStep(3, bot.StepApproval, bot.StepWaiting)
	check("a self-approval", func() { e.deliverComment("bob", "/stagehand approve 3", nil) },
		refused("bob", "approve", string(bot.RefusalSelfApproval)))
}

// auditChain is what a chain test compares of a record.
type auditChain struct {
	Action    bot.AuditAction
	Actor     string
	Outcome   bot.AuditOutcome
	Execution int64
	Detail    string
}

// TestAuditPromoteApproveDeploy: a push, a promotion, an approval by one
// of two approvers, the second approval and Deploy Now leave the expected
// chain of records, each in the transaction of what it records.
func TestAuditPromoteApproveDeploy(t *testing.T) {
	cfg := strings.Replace(guardedPolicy(), "    approvers: {users: [bob]}\n", "    approvers: {users: [bob, carol], required: 2}\n", 1)
	e := newSurfaceEnv(t, cfg)
	e.gh.SetPermission(owner, repo, "carol", "write")
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	e.comment("alice", "/stagehand promote")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.comment("bob", "/stagehand approve 2")
	e.comment("carol", "/stagehand approve 2")
	e.waitStep(2, bot.StepSchedule, bot.StepWaiting)
	scheduledFrom := e.clock.Now().UTC().Truncate(time.Second)
	e.comment("bob", "/stagehand schedule now 2")
	e.waitState(2, bot.ExecutionSucceeded)
	scheduledBy := e.clock.Now().UTC()
	ex1, _ := e.execution(1)
	ex2, _ := e.execution(2)

	var got []auditChain
	for _, r := range e.auditSince(0) {
		if r.Outcome == bot.AuditDone && r.Delivery == "" && r.Action != bot.AuditStarted { // Stagehand's own decision comes from no delivery
			t.Errorf("record %+v names no delivery", r)
		}
		if r.Action == bot.AuditTrigger && r.Outcome == bot.AuditRefused {
			continue // prod-only is not started by pushes
		}
		detail := r.Detail
		switch r.Action {
		case bot.AuditPolicyChange:
			detail, _, _ = strings.Cut(detail, ":") // sha256:<hex>
		case bot.AuditSchedule:
			// "now": the moment the command ran, between the comment and
			// the execution's end (the clock is the real one).
			if at, err := time.Parse(time.RFC3339, detail); err != nil || at.Before(scheduledFrom) || at.After(scheduledBy) {
				t.Errorf("schedule record's detail %q, want the time it was scheduled for (between %s and %s)", detail, scheduledFrom.Format(time.RFC3339), scheduledBy.Format(time.RFC3339))
			}
			detail = ""
		}
		got = append(got, auditChain{r.Action, r.Actor, r.Outcome, r.ExecutionID, detail})
	}
	sender := "Codertocat" // the push payload's sender
	want := []auditChain{
		{bot.AuditPolicyChange, sender, bot.AuditDone, 0, "sha256"},
		{bot.AuditTrigger, sender, bot.AuditDone, ex1.ID, string(bot.StageOnly)},
		{bot.AuditStarted, "", bot.AuditDone, ex1.ID, ""},
		{bot.AuditPromote, "alice", bot.AuditDone, ex2.ID, "from stage-only #1"},
		{bot.AuditStarted, "", bot.AuditDone, ex2.ID, ""},
		{bot.AuditApprove, "bob", bot.AuditDone, ex2.ID, "1 of 2 approvals: @bob"},
		{bot.AuditApprove, "carol", bot.AuditDone, ex2.ID, "2 of 2 approvals: @bob, @carol"},
		{bot.AuditSchedule, "bob", bot.AuditDone, ex2.ID, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit chain (-want +got):\n%s", diff)
	}
}

// TestAuditNeverHoldsSecrets: a canary secret set through --secrets-dir
// and canary variable values set (and mistyped) by comment appear in no
// audit record; the variables are recorded by name.
func TestAuditNeverHoldsSecrets(t *testing.T) {
	const secret, variable = "sk_canary_secret_5f1e2d", "canary-variable-value-9a8b"
	cfg := strings.Replace(guardedPolicy(), "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    secrets: [DEPLOY_TOKEN]\n", 1)
	e := newSurfaceEnv(t, cfg)
	dir := t.TempDir()
	for _, env := range []string{"stage", "production"} {
		p := filepath.Join(dir, owner, repo, env, "DEPLOY_TOKEN")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.worker.Secrets = worker.SecretsDir{Dir: dir}
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	e.deliverComment("alice", "/stagehand env set stage CANARY="+variable, nil)
	e.deliverComment("mallory", "/stagehand env set production CANARY="+variable, nil)
	e.deliverComment("bob", "/stagehand env set production CANARY="+variable, nil)
	e.deliverComment("bob", "/stagehand env set production CANARY="+variable+" extra words", nil)
	e.deliverComment("bob", "/stagehand env set nowhere CANARY="+variable, nil)
	e.deliverComment("bob", "/stagehand env unset stage CANARY", nil)
	e.deliverComment("alice", "/stagehand env set stage DEPLOY_TOKEN="+secret, nil)
	records := e.auditSince(0)
	var sets int
	for _, r := range records {
		text := fmt.Sprintf("%+v", r)
		for _, leak := range []string{secret, variable} {
			if strings.Contains(text, leak) {
				t.Errorf("audit record shows a value (%q): %s", leak, text)
			}
		}
		if r.Action == bot.AuditVariableSet && r.Outcome == bot.AuditDone {
			sets++
			if !strings.HasSuffix(r.Detail, "/CANARY") && !strings.HasSuffix(r.Detail, "/DEPLOY_TOKEN") {
				t.Errorf("a variable record does not name the variable: %+v", r)
			}
		}
	}
	// Nor does the compliance export, in either format.
	for _, format := range []string{"jsonl", "csv"} {
		var out strings.Builder
		if err := state.ExportAudit(context.Background(), e.store, bot.AuditFilter{}, format, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "CANARY") {
			t.Errorf("the %s export does not name the variable:\n%s", format, out.String())
		}
		for _, leak := range []string{secret, variable} {
			if strings.Contains(out.String(), leak) {
				t.Errorf("the %s export shows a value (%q):\n%s", format, leak, out.String())
			}
		}
	}
	if sets < 2 {
		t.Errorf("%d variable-set records, want the stage and production sets:\n%+v", sets, records)
	}
}

// TestAuditRecordsEveryKindOfDecision: through webhooks only, each kind
// of decision the issue names leaves its own record, done, with the
// person, the execution and the delivery it came from: Promote Build and
// Dismiss clicks, a promotion, a rejection, a manual start, a re-run, an
// approval, a break-glass override (its reason in detail) and a cancel.
func TestAuditRecordsEveryKindOfDecision(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob]}\n"+centuryFreeze))
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	build := e.checkRuns(bot.StageOnly, "")[0]
	from := e.lastAuditID()

	e.click(build, githubapp.ActionPromote, "alice")
	e.report()
	e.click(e.gh.CheckRun(build.ID), githubapp.ActionDismiss, "alice")
	if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #2") {
		t.Fatalf("promote: %q", reply.Body)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("bob", "/stagehand reject 2 not today"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("reject: %q", reply.Body)
	}
	if reply := e.comment("alice", "/stagehand run stage-only"); !strings.Contains(reply.Body, "stage-only #3") {
		t.Fatalf("run: %q", reply.Body)
	}
	e.waitState(3, bot.ExecutionSucceeded)
	e.rerun(build, "alice")
	e.waitState(4, bot.ExecutionSucceeded)
	if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #5") {
		t.Fatalf("promote: %q", reply.Body)
	}
	e.waitStep(5, bot.StepApproval, bot.StepWaiting)
	e.comment("bob", "/stagehand approve 5")
	e.waitStep(5, bot.StepDeployProduction, bot.StepWaiting) // the freeze holds it
	if reply := e.comment("bob", `/stagehand deploy-now 5 --override "INC-7: hotfix"`); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("override: %q", reply.Body)
	}
	e.waitState(5, bot.ExecutionSucceeded)
	e.comment("mallory", "/stagehand promote")
	e.waitStep(6, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("bob", "/stagehand cancel 6"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("cancel: %q", reply.Body)
	}
	e.waitState(6, bot.ExecutionCancelled)

	number := map[int64]int{}
	for n := 1; n <= 6; n++ {
		number[e.executionID(n)] = n
	}
	var got []string
	for _, r := range e.auditSince(from) {
		if r.Action == bot.AuditStarted || r.Action == bot.AuditTrigger {
			continue // Stagehand's own decisions, checked in TestAuditPromoteApproveDeploy
		}
		if r.Outcome != bot.AuditDone || r.Delivery == "" || r.Reason == "" {
			t.Errorf("record %+v: want done, with its words and the delivery it came from", r)
		}
		s := fmt.Sprintf("%s %s #%d", r.Actor, r.Action, number[r.ExecutionID])
		if r.Detail != "" {
			s += " (" + r.Detail + ")"
		}
		got = append(got, s)
	}
	want := []string{
		"alice promote-request #1",
		"alice promote-dismiss #1",
		"mallory promote #2 (from stage-only #1)",
		"bob reject #2",
		"alice start #3 (stage-only)",
		"alice rerun #4 (re-run of stage-only #1)",
		"mallory promote #5 (from stage-only #4)",
		"bob approve #5 (1 of 1 approvals: @bob)",
		"bob override #5 (INC-7: hotfix)",
		"mallory promote #6 (from stage-only #4)",
		"bob cancel #6",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
}

// TestAuditPolicyChanges: a policy-change record is appended when a push
// to the default branch brings a .github/stagehand.yml other than the one
// seen last (its SHA-256, or "invalid"), and only then: not for a push
// that leaves the file as it was, nor for a side branch's file.
func TestAuditPolicyChanges(t *testing.T) {
	first := policyWith("")
	second := policyWith("    approvers: {users: [bob]}\n")
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(h[:]) }
	e := newSurfaceEnv(t, first)
	e.push()
	e.repo.commit("docs only", map[string]string{"README.md": "words\n"})
	e.push()
	e.pushBranch("side", map[string]string{bot.ConfigPath: second})
	e.pushMain(second)
	e.pushMain("version: [1\n")
	e.pushMain(first)
	e.settle()

	var got []string
	for _, r := range e.auditSince(0) {
		if r.Action != bot.AuditPolicyChange {
			continue
		}
		if r.Outcome != bot.AuditDone || r.Delivery == "" || r.Actor == "" || !strings.Contains(r.Reason, "changed at") {
			t.Errorf("policy-change record %+v: want done, by the pusher, with the delivery and its words", r)
		}
		got = append(got, r.Detail)
	}
	want := []string{sum(first), sum(second), "invalid", sum(first)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy-change records (-want +got):\n%s", diff)
	}
}
