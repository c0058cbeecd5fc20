package bot_test

import (
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The deploy calendar gate holds every execution to the windows and
// freezes of the program's latest default-branch policy, not to the policy
// it was created under: a freeze merged while a deploy is queued or waits
// for approval holds it; a freeze lifted lets it go.

// approvalPolicy is a default branch's file whose full-stack pipeline
// waits for an approval before production; freezes is production's
// freezes: section, or "".
func approvalPolicy(freezes string) []byte {
	return []byte(`version: 1
build: {run: make dist, artifacts: ["dist/**"]}
environments:
  stage: {deploy: ./deploy.sh stage}
  production:
    deploy: ./deploy.sh production` + freezes + `
pipelines:
  full-stack: {branch: main, trigger: on-git-changes, approval: true}
`)
}

// yearEndFreeze is production's year-end freeze.
const yearEndFreeze = `
    freezes:
      - {from: 2026-12-20T00:00:00+01:00, to: 2027-01-04T00:00:00+01:00, reason: "year-end freeze"}`

// land records file as the program's latest policy, as the push handler
// does in its transaction for a push of a valid file to the default
// branch, and reconciles.
func (r *calendarRig) land(sha string, file []byte) {
	r.t.Helper()
	err := r.store.Update(r.ctx, func(tx bot.Tx) error {
		return tx.SetLatestPolicy(r.ctx, r.prog.ID, bot.Policy{Branch: "main", Commit: sha, Raw: file})
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.latest = file
	r.reconcile()
	r.work()
}

// calendar is the production calendar a claimed deploy must have started
// in: the latest policy's when one landed, else its own configuration's.
func (r *calendarRig) calendar(own *bot.Config) bot.DeployCalendar {
	r.t.Helper()
	if r.latest == nil {
		return own.Production.Calendar()
	}
	cfg, err := parseRepoConfig.Config(r.latest)
	if err != nil {
		return bot.DeployCalendar{} // TestCalendarLatestNoLongerParses: nothing deploys
	}
	return cfg.Production.Calendar()
}

// approve approves ex's production deploy as a production approver, under
// the default branch's policy (the latest one that landed).
func (r *calendarRig) approve(ex bot.Execution) {
	r.t.Helper()
	file := approvalPolicy("")
	if r.latest != nil {
		file = r.latest
	}
	cfg, err := parseRepoConfig.Config(file)
	if err != nil {
		cfg, _ = parseRepoConfig.Config(approvalPolicy(""))
	}
	req := bot.Internal("approver")
	req.Policy = &bot.Policy{Branch: "main", Commit: "head", Raw: file, Config: cfg}
	if _, err := r.eng.Approve(r.ctx, req, r.prog.ID, ex.Number); err != nil {
		r.t.Fatalf("approving %s: %v", ex, err)
	}
	r.work()
}

// TestCalendarFreezeLandsWhileWaitingForApproval is the year-end runbook:
// an execution waits for approval when the freeze is merged to the default
// branch; approved inside the freeze it waits, and deploys after it, with
// no cancel and re-run.
func TestCalendarFreezeLandsWhileWaitingForApproval(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 12, 18, 10, 0))
	ex := r.push("aaa", approvalPolicy(""), approvalPolicy(""))
	r.work()
	if _, s := r.step(ex, bot.StepApproval); s.State != bot.StepWaiting {
		t.Fatalf("approval is %s (%q), want waiting", s.State, s.Message)
	}
	r.land("bbb", approvalPolicy(yearEndFreeze))
	r.set(berlin(t, 2026, 12, 21, 10, 0))
	r.approve(ex)
	r.held(ex, "waiting: production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze")
	for _, at := range []time.Time{berlin(t, 2026, 12, 24, 12, 0), berlin(t, 2027, 1, 3, 23, 59)} {
		r.set(at)
		r.reconcile()
		r.work()
	}
	r.held(ex, "year-end freeze")
	after := berlin(t, 2027, 1, 4, 0, 0)
	r.set(after)
	r.reconcile()
	r.work()
	r.deployed(ex, after)
}

// TestCalendarFreezeLandsWhileQueued: a deploy that becomes due after the
// freeze landed waits, although its execution was created before.
func TestCalendarFreezeLandsWhileQueued(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 12, 21, 10, 0))
	ex := r.push("aaa", sideBranchFile, sideBranchFile) // no approval, no freeze
	r.land("bbb", approvalPolicy(yearEndFreeze))        // before a worker ran the build
	r.held(ex, "production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze")
}

// TestCalendarFreezeLiftedOnDefaultBranch: a deploy held by a freeze goes
// when the freeze is removed from the default branch.
func TestCalendarFreezeLiftedOnDefaultBranch(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 12, 21, 10, 0))
	ex := r.push("aaa", approvalPolicy(yearEndFreeze), approvalPolicy(yearEndFreeze))
	r.work()
	r.approve(ex)
	r.held(ex, "year-end freeze")
	r.set(berlin(t, 2026, 12, 21, 11, 0))
	r.land("bbb", approvalPolicy(""))
	r.deployed(ex, berlin(t, 2026, 12, 21, 11, 0))
}

// TestCalendarLatestNoLongerParses: a recorded latest policy that a newer
// Stagehand no longer parses leaves the calendar unknown; the deploy waits
// (fail closed) rather than falling back to the execution's own policy,
// which has no freeze.
func TestCalendarLatestNoLongerParses(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 12, 21, 10, 0))
	ex := r.push("aaa", approvalPolicy(""), approvalPolicy(""))
	r.work()
	r.land("bbb", []byte("version: 1\nno_such_key: true\n"))
	r.approve(ex)
	r.held(ex, "waiting: the policy on the default branch (main at bbb) no longer parses")
}
