package web

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// withWaitingQuorum adds prod-only #6 to the fixture: it holds production
// and waits for approval under a quorum of two, approved so far by alice;
// bob overrode the deploy windows with a reason. The dashboard reads the
// quorum from the execution's configuration.
func (f *dashFixture) withWaitingQuorum() {
	f.t.Helper()
	ctx := context.Background()
	err := f.store.Update(ctx, func(tx bot.Tx) error {
		ex, err := tx.CreateExecution(ctx, bot.Execution{
			ProgramID: f.prog.ID, Pipeline: bot.ProdOnly, Commit: commitOne, State: bot.ExecutionWaiting, Message: "waiting for approval: 1 of 2 approvals: @alice; 1 more needed",
			Cause: bot.CausePromotion, TriggeredBy: "dave", SourceID: f.ex[1].ID, Config: []byte("quorum: 2"), CreatedAt: dashAt(42), StartedAt: dashAt(42),
		})
		if err != nil {
			return err
		}
		f.ex[ex.Number] = ex
		for name, s := range map[bot.StepName]bot.Step{
			bot.StepArtifactPreparation: {State: bot.StepSucceeded, Attempt: 1, StartedAt: dashAt(42), FinishedAt: dashAt(42)},
			bot.StepApproval:            {State: bot.StepWaiting, Attempt: 1, StartedAt: dashAt(42), Message: "waiting for approval: 1 of 2 approvals: @alice; 1 more needed"},
		} {
			s.ExecutionID, s.Name = ex.ID, name
			if err := tx.UpdateStep(ctx, s); err != nil {
				return err
			}
		}
		for _, ev := range []bot.Event{
			{ExecutionID: ex.ID, At: dashAt(43), Actor: "alice", Kind: bot.EventApproved, Detail: "1 of 2 approvals: @alice"},
			{ExecutionID: ex.ID, At: dashAt(44), Actor: "bob", Kind: bot.EventPolicyOverride, Detail: "INC-42: payments " + dashEvil},
		} {
			if err := tx.AddEvent(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.dash.ParseConfig = func(data []byte) (*bot.Config, bot.Diagnostics) {
		cfg := &bot.Config{Production: &bot.Environment{}}
		if string(data) == "quorum: 2" {
			cfg.Production.Approvers.Required = 2
		}
		return cfg, nil
	}
}

// The environments page, the execution page and the API show where a
// waiting approval's quorum stands, and a break-glass override's reason.
func TestDashboardQuorumAndOverride(t *testing.T) {
	f := newDashFixture(t)
	f.withWaitingQuorum()

	env := text(f.page("/programs/acme/app/environments"))
	mustContain(t, "environments page", env,
		"Held by prod-only #6 waiting since 2026-03-01 10:42:00 UTC",
		"prod-only #6 waits for approval: 1 of 2 approvals: @alice; 1 more needed.")

	body := f.page("/programs/acme/app/executions/6")
	mustContain(t, "execution page", text(body),
		"Approval: 1 of 2 approvals: @alice; waiting for 1 more approver. Each approver counts once; a reject by any approver ends it.",
		"Break-glass override of the deploy windows and freezes by bob at 2026-03-01 10:44:00 UTC : INC-42: payments "+dashEvil,
		"break-glass override of the deploy windows and freezes by bob at 2026-03-01 10:44:00 UTC — INC-42: payments "+dashEvil)
	mustNotContain(t, "execution page", body, dashEvil)

	var got APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/6", 200, &got)
	want := &APIQuorum{Required: 2, Approvals: 1, Approvers: []string{"alice"}, Missing: 1, Summary: "1 of 2 approvals: @alice"}
	if diff := cmp.Diff(want, got.Approval); diff != "" {
		t.Errorf("API approval (-want +got):\n%s", diff)
	}
	if n := len(got.Events); n == 0 || got.Events[n-1].Kind != "policy-override" || got.Events[n-1].Detail != "INC-42: payments "+dashEvil {
		t.Errorf("API events end with %+v, want bob's override and its reason", got.Events[n-1])
	}
	var prog APIProgramDetail
	f.getJSON("/api/v1/programs/acme/app", 200, &prog)
	wantWaiting := []APIWaitingApproval{{Number: 6, HTMLPath: "/programs/acme/app/executions/6", Approval: *want}}
	for _, e := range prog.Environments {
		if e.Name == "production" {
			if diff := cmp.Diff(wantWaiting, e.WaitingApprovals); diff != "" {
				t.Errorf("API production waiting_approvals (-want +got):\n%s", diff)
			}
		} else if len(e.WaitingApprovals) != 0 {
			t.Errorf("API %s waiting_approvals: %+v", e.Name, e.WaitingApprovals)
		}
	}

	// A finished execution shows no approval state.
	var two APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/2", 200, &two)
	if two.Approval != nil {
		t.Errorf("prod-only #2 (succeeded) shows approval %+v", two.Approval)
	}
}
