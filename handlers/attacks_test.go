package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// The attacks of SPEC §7 by a person with write permission (mallory), each
// driven through signed-webhook handling only, each asserting that nothing
// ran or changed. docs/security.md lists them with these tests' names.

// guardedPolicy is the default branch's policy of the attack tests:
// stage-only on main, prod-only behind an approval that only bob (or the
// release team) may give, scheduled.
func guardedPolicy() string {
	return strings.Replace(sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n"),
		"    variables: {LOG_LEVEL: info}\n",
		"    variables: {LOG_LEVEL: info}\n    approvers: {users: [bob]}\n    prevent_self_approval: true\n", 1)
}

// pushBranch commits files on branch (created from main when new) and
// sends the push webhook GitHub would send for it.
func (e *surfaceEnv) pushBranch(branch string, files map[string]string) string {
	e.t.Helper()
	r := e.repo
	r.git("checkout", "-q", "-B", branch)
	sha := r.commit("change on "+branch, files)
	r.git("checkout", "-q", "main")
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("push/branch-created.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	p["ref"], p["after"], p["created"] = "refs/heads/"+branch, sha, true
	p["sender"].(map[string]any)["login"] = "mallory"
	e.setRepo(p)
	e.deliver("push", p)
	return sha
}

// deliverComment sends issue_comment.created as GitHub would and returns
// the bot's replies to it.
func (e *surfaceEnv) deliverComment(user, body string, edit func(p map[string]any)) []string {
	e.t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("issue_comment/created.with-installation.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	before := len(e.gh.Comments(owner, repo, 1))
	e.lastComment = e.gh.AddComment(owner, repo, 1, user, body)
	c := p["comment"].(map[string]any)
	c["body"], c["id"], c["created_at"] = body, e.lastComment, e.clock.Now().UTC().Format(time.RFC3339)
	c["user"].(map[string]any)["login"] = user
	p["sender"].(map[string]any)["login"] = user
	e.setRepo(p)
	if edit != nil {
		edit(p)
	}
	e.deliver("issue_comment", p)
	return e.repliesSince(before + 1)
}

// repliesSince returns the bot's comments after the first n of issue 1.
func (e *surfaceEnv) repliesSince(n int) []string {
	var out []string
	for _, c := range e.gh.Comments(owner, repo, 1)[min(n, len(e.gh.Comments(owner, repo, 1))):] {
		out = append(out, c.Body)
	}
	return out
}

// snapshotState is what an attack must not change: executions, the
// pipeline set, variables, deployments and what the deploy scripts did.
func (e *surfaceEnv) snapshotState() string {
	e.t.Helper()
	var b strings.Builder
	ctx := context.Background()
	e.view(func(tx bot.Tx) error {
		progs, err := tx.Programs(ctx)
		if err != nil {
			return err
		}
		for _, p := range progs {
			fmt.Fprintf(&b, "program %s\n", p.FullName())
			ps, err := tx.Pipelines(ctx, p.ID)
			if err != nil {
				return err
			}
			for _, pl := range ps {
				fmt.Fprintf(&b, "  pipeline %s %+v\n", pl.Kind, pl.PipelineConfig)
			}
			es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID})
			if err != nil {
				return err
			}
			for _, ex := range es {
				steps, err := tx.Steps(ctx, ex.ID)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "  %s %s %s at %s\n", ex, ex.State, strings.Join(stepStates(steps), ","), ex.ScheduledAt.UTC().Format(time.RFC3339))
			}
			for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
				vars, err := tx.Variables(ctx, p.ID, env)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "  variables %s %v\n", env, vars)
			}
		}
		return nil
	})
	fmt.Fprintf(&b, "deploys:\n%s", e.repo.readRecord("deploys.log"))
	fmt.Fprintf(&b, "builds:\n%s", e.repo.readRecord("builds.log"))
	return b.String()
}

// settle waits until every step job an attack might have started has
// finished, then reports. Handlers work synchronously: what a delivery
// starts is dispatched before it returns.
func (e *surfaceEnv) settle() {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for e.jobs.running.Load() > 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d step jobs still run after 60s", e.jobs.running.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.report()
}

// TestAttackSideBranchPolicy: a push to a new branch whose file declares
// `full-stack: {branch: evil, trigger: on-git-changes, approval: false}`
// builds nothing, deploys nothing, leaves the pipeline set as the default
// branch has it, and gets a neutral stagehand/config check run that says
// policy is read from the default branch.
func TestAttackSideBranchPolicy(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	before := e.snapshotState()

	evil := strings.Replace(guardedPolicy(), "  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n",
		"  full-stack: {branch: evil, trigger: on-git-changes, approval: false}\n", 1)
	evil = strings.Replace(evil, "    approvers: {users: [bob]}\n", "", 1)
	sha := e.pushBranch("evil", map[string]string{".github/stagehand.yml": evil})
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("the side branch's push changed state (-before +after):\n%s", diff)
	}
	var cfgRun *githubtest.CheckRun
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		if cr.Name == "stagehand/config" && cr.HeadSHA == sha {
			cfgRun = &cr
		}
	}
	if cfgRun == nil || cfgRun.Conclusion != "neutral" || !strings.Contains(cfgRun.Output.Title, "default branch, main") {
		t.Errorf("stagehand/config check run of the side branch = %+v", cfgRun)
	}
	if got := e.checkRuns(bot.FullStack, sha); len(got) != 0 {
		t.Errorf("full-stack check runs on the evil branch: %+v", got)
	}
}

// TestAttackSideBranchDropsApprovers: a push to a side branch whose file
// has no approvers does not let a writer who is not an approver approve
// production, by comment or by button.
func TestAttackSideBranchDropsApprovers(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	e.comment("alice", "/stagehand promote")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.report()
	open := strings.Replace(guardedPolicy(), "    approvers: {users: [bob]}\n", "", 1)
	e.pushBranch("feature", map[string]string{".github/stagehand.yml": open})
	// The side branch's own pipeline set matches nothing either: a
	// stage-only on main does not fire for feature.
	before := e.snapshotState()

	replies := e.deliverComment("mallory", "/stagehand approve 2", nil)
	if len(replies) != 1 || !strings.Contains(replies[0], "not one of the production approvers") && !strings.Contains(replies[0], "production approvers (bob)") {
		t.Errorf("mallory's approval was answered %q", replies)
	}
	prod := e.checkRuns(bot.ProdOnly, "")
	e.click(prod[len(prod)-1], githubapp.ActionApprove, "mallory")
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("a non-approver's approval changed state (-before +after):\n%s", diff)
	}
	if ex, _ := e.execution(2); ex.State != bot.ExecutionWaiting {
		t.Errorf("#2 is %s after mallory's approvals, want waiting", ex.State)
	}
}

// TestAttackDeniedVariableNames: /stagehand env set of a name that changes
// how the shell, the loader or git behaves is refused for every name of
// the deny list, and sets nothing.
func TestAttackDeniedVariableNames(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	before := e.snapshotState()
	for _, name := range []string{"BASH_ENV", "ENV", "LD_PRELOAD", "LD_LIBRARY_PATH", "GIT_SSH_COMMAND", "GIT_CONFIG_GLOBAL", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS", "PATH", "HOME", "STAGEHAND_COMMIT", "lower"} {
		replies := e.deliverComment("bob", "/stagehand env set stage "+name+"=/tmp/x", nil)
		if len(replies) != 1 || !strings.HasPrefix(replies[0], "🚫") || !strings.Contains(replies[0], name) {
			t.Errorf("env set stage %s was answered %q", name, replies)
		}
	}
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("denied names changed state (-before +after):\n%s", diff)
	}
}

// TestAttackProductionActionsByWriter: Deploy Now, schedule, cancel of an
// execution holding production and env set|unset production need a
// production approver; a writer who is not one changes nothing. The
// approver then may.
func TestAttackProductionActionsByWriter(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	e.comment("alice", "/stagehand promote")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.comment("bob", "/stagehand approve 2")
	e.waitStep(2, bot.StepSchedule, bot.StepWaiting)
	e.report()
	before := e.snapshotState()

	for _, cmd := range []string{"/stagehand schedule now 2", "/stagehand schedule 2030-01-01T10:00:00Z 2", "/stagehand cancel 2", "/stagehand env set production LOG_LEVEL=trace", "/stagehand env unset production LOG_LEVEL"} {
		replies := e.deliverComment("mallory", cmd, nil)
		if len(replies) != 1 || !strings.HasPrefix(replies[0], "🚫") || !strings.Contains(replies[0], "production approvers (bob)") {
			t.Errorf("%s by mallory was answered %q", cmd, replies)
		}
	}
	prod := e.checkRuns(bot.ProdOnly, "")
	last := prod[len(prod)-1]
	if !strings.Contains(strings.Join(labels(last), ","), "Deploy Now") {
		t.Fatalf("the schedule check run shows %v, want Deploy Now", labels(last))
	}
	e.click(last, githubapp.ActionDeployNow, "mallory")
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("production actions by a writer changed state (-before +after):\n%s", diff)
	}
	// A stage variable is not a production action.
	if replies := e.deliverComment("mallory", "/stagehand env set stage LOG_LEVEL=trace", nil); len(replies) != 1 || !strings.HasPrefix(replies[0], "✅") {
		t.Errorf("env set stage by a writer was answered %q", replies)
	}
	// The approver may.
	e.click(e.gh.CheckRun(last.ID), githubapp.ActionDeployNow, "bob")
	e.waitState(2, bot.ExecutionSucceeded)
}

// TestAttackReplayedComment: the same signed comment delivered again under
// a fresh GUID does not run its command again; a comment older than ten
// minutes is refused with a reply.
func TestAttackReplayedComment(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	var captured []byte
	e.deliverComment("alice", "/stagehand promote", func(p map[string]any) { captured, _ = json.Marshal(p) })
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.comment("bob", "/stagehand reject 2 not yet")
	e.waitState(2, bot.ExecutionCancelled)
	before := e.snapshotState()

	// The captured delivery, replayed with a new X-GitHub-Delivery.
	n := len(e.gh.Comments(owner, repo, 1))
	if err := e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: "replayed-guid", Event: "issue_comment", Payload: captured}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("a replayed comment changed state (-before +after):\n%s", diff)
	}
	if replies := e.repliesSince(n); len(replies) != 1 || !strings.Contains(replies[0], "did not repeat") {
		t.Errorf("the replay was answered %q", replies)
	}

	// Eleven minutes later the same comment is stale.
	e.clock.Advance(11 * time.Minute)
	n = len(e.gh.Comments(owner, repo, 1))
	if err := e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: "replayed-later", Event: "issue_comment", Payload: captured}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if replies := e.repliesSince(n); len(replies) != 1 || !strings.Contains(replies[0], "Nothing was done") {
		t.Errorf("the stale replay was answered %q", replies)
	}
	// So is a new comment whose delivery arrives late.
	stale := e.deliverComment("alice", "/stagehand promote", func(p map[string]any) {
		p["comment"].(map[string]any)["created_at"] = e.clock.Now().Add(-11 * time.Minute).UTC().Format(time.RFC3339)
	})
	if len(stale) != 1 || !strings.Contains(stale[0], "Nothing was done") {
		t.Errorf("a stale comment was answered %q", stale)
	}
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("stale comments changed state (-before +after):\n%s", diff)
	}
}

// TestAttackReplayedClick: a captured click delivered again under a new
// GUID acts at most once: a Confirm replayed after it took effect is
// stale, and the same person's second Approve on one gate counts once.
func TestAttackReplayedClick(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	cr := e.checkRuns(bot.StageOnly, "")[0]
	e.click(cr, githubapp.ActionPromote, "alice")
	e.report()
	e.click(e.gh.CheckRun(cr.ID), githubapp.ActionConfirm, "alice")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.comment("bob", "/stagehand reject 2")
	e.waitState(2, bot.ExecutionCancelled)
	e.report()
	before := e.snapshotState()
	// The same Confirm click, replayed: the check run shows Promote Build
	// now, not Confirm.
	e.click(e.gh.CheckRun(cr.ID), githubapp.ActionConfirm, "alice")
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("a replayed Confirm changed state (-before +after):\n%s", diff)
	}
	if s := e.gh.CheckRun(cr.ID).Output.Summary + e.gh.CheckRun(cr.ID).Output.Text; !strings.Contains(s, "stale") {
		t.Errorf("the stale click is not answered on the check run:\n%s", s)
	}

	// Approve on an approval gate: a replay of bob's click after it passed
	// is stale (the gate's check run no longer offers it).
	e.click(e.gh.CheckRun(cr.ID), githubapp.ActionPromote, "alice")
	e.report()
	e.click(e.gh.CheckRun(cr.ID), githubapp.ActionConfirm, "alice")
	e.waitStep(3, bot.StepApproval, bot.StepWaiting)
	e.report()
	prod := e.checkRuns(bot.ProdOnly, "")
	gate := prod[len(prod)-1]
	e.click(gate, githubapp.ActionApprove, "bob")
	e.waitStep(3, bot.StepSchedule, bot.StepWaiting)
	e.report()
	before = e.snapshotState()
	e.click(gate, githubapp.ActionApprove, "bob")
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("a replayed Approve changed state (-before +after):\n%s", diff)
	}
}

// TestAttackWhoMayNot: a read-only user, a user without access and a bot
// change nothing by comment or click.
func TestAttackWhoMayNot(t *testing.T) {
	e := newSurfaceEnv(t, guardedPolicy())
	e.gh.SetPermission(owner, repo, "stranger", "none")
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	cr := e.checkRuns(bot.StageOnly, "")[0]
	before := e.snapshotState()
	for _, user := range []string{"rita", "stranger"} {
		replies := e.deliverComment(user, "/stagehand promote", nil)
		if len(replies) != 1 || !strings.Contains(replies[0], "Stagehand needs write or higher") {
			t.Errorf("%s's promote was answered %q", user, replies)
		}
		e.click(cr, githubapp.ActionPromote, user)
	}
	replies := e.deliverComment("dependabot[bot]", "/stagehand promote", func(p map[string]any) {
		p["sender"].(map[string]any)["type"] = "Bot"
		p["comment"].(map[string]any)["user"].(map[string]any)["type"] = "Bot"
	})
	if len(replies) != 0 {
		t.Errorf("a bot's comment was answered %q", replies)
	}
	e.settle()
	if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
		t.Errorf("users without write changed state (-before +after):\n%s", diff)
	}
}
