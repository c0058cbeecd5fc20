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
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// surfaceEnv is a pipelineEnv whose GitHub is the stand-in: check runs,
// deployments, comments and permissions go through the real client.
type surfaceEnv struct {
	*pipelineEnv
	gh          *githubtest.Server
	reporter    *reporter.Reporter
	n           int
	lastComment int64
}

func newSurfaceEnv(t *testing.T, cfg string) *surfaceEnv {
	t.Helper()
	gh := githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(testAppID, &key.PublicKey)
	gh.AddInstallation(inst, owner)
	gh.AddRepo(inst, owner, repo)
	for user, perm := range map[string]string{"alice": "write", "bob": "admin", "rita": "read", "mallory": "write"} {
		gh.SetPermission(owner, repo, user, perm)
	}
	app, err := githubapp.New(githubapp.Options{AppID: testAppID, PrivateKeyPEM: pemBytes, APIURL: gh.URL(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	e := &surfaceEnv{pipelineEnv: newPipelineEnv(t, cfg), gh: gh}
	e.hooks.GitHub, e.hooks.Checks, e.hooks.Commands, e.hooks.AppID, e.hooks.PublicURL = app, app, e.engine, testAppID, "http://stagehand.test"
	e.reporter = &reporter.Reporter{Store: e.store, GitHub: app, Clock: e.clock, Logger: e.hooks.Logger, PublicURL: "http://stagehand.test", ParseConfig: parseConfig}
	t.Cleanup(func() { gh.AssertNoErrors(t) })
	return e
}

// report brings GitHub up to date, as the reporter's loop would.
func (e *surfaceEnv) report() {
	e.t.Helper()
	if err := e.reporter.ReportOnce(context.Background()); err != nil {
		e.t.Fatalf("reporting: %v", err)
	}
}

// checkRuns returns the check runs of a pipeline, oldest first.
func (e *surfaceEnv) checkRuns(kind bot.PipelineKind, sha string) []githubtest.CheckRun {
	var out []githubtest.CheckRun
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		if cr.Name == "stagehand/"+string(kind) && (sha == "" || cr.HeadSHA == sha) {
			out = append(out, cr)
		}
	}
	return out
}

func labels(cr githubtest.CheckRun) []string {
	var out []string
	for _, a := range cr.Actions {
		out = append(out, a.Label)
	}
	return out
}

// click sends check_run.requested_action for a button, as GitHub would.
func (e *surfaceEnv) click(cr githubtest.CheckRun, identifier, user string) {
	e.t.Helper()
	e.deliver("check_run", e.clickPayload(cr, identifier, user))
}

// clickPayload is the check_run.requested_action GitHub sends for a click.
func (e *surfaceEnv) clickPayload(cr githubtest.CheckRun, identifier, user string) map[string]any {
	e.t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("check_run/requested_action.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	run := p["check_run"].(map[string]any)
	run["external_id"], run["id"], run["head_sha"] = cr.ExternalID, cr.ID, cr.HeadSHA
	run["app"].(map[string]any)["id"] = testAppID
	p["requested_action"] = map[string]any{"identifier": identifier}
	p["sender"].(map[string]any)["login"] = user
	e.setRepo(p)
	return p
}

// rerun sends check_run.rerequested for cr by user, as GitHub does when
// someone asks to re-run a check run.
func (e *surfaceEnv) rerun(cr githubtest.CheckRun, user string) {
	e.t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("check_run/rerequested.openapi-example.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	run := p["check_run"].(map[string]any)
	run["external_id"], run["head_sha"] = cr.ExternalID, cr.HeadSHA
	run["app"].(map[string]any)["id"] = testAppID
	p["sender"].(map[string]any)["login"] = user
	e.setRepo(p)
	e.deliver("check_run", p)
}

func (e *surfaceEnv) setRepo(p map[string]any) {
	r := p["repository"].(map[string]any)
	r["name"], r["full_name"] = repo, owner+"/"+repo
	r["owner"].(map[string]any)["login"] = owner
	r["default_branch"] = "main"
	r["id"] = 186853002 // the repository of push/branch-created.json, as GitHub names it in every event
	p["installation"] = map[string]any{"id": inst, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
}

// comment sends issue_comment.created with body by user.
func (e *surfaceEnv) comment(user, body string) githubtest.Comment {
	e.t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("issue_comment/created.with-installation.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	c := p["comment"].(map[string]any)
	before := len(e.gh.Comments(owner, repo, 1))
	e.lastComment = e.gh.AddComment(owner, repo, 1, user, body) // the person's comment, on GitHub
	c["body"], c["id"], c["created_at"] = body, e.lastComment, e.clock.Now().UTC().Format(time.RFC3339)
	c["user"].(map[string]any)["login"] = user
	p["sender"].(map[string]any)["login"] = user
	e.setRepo(p)
	before++
	e.deliver("issue_comment", p)
	after := e.gh.Comments(owner, repo, 1)
	if len(after) != before+1 {
		e.t.Fatalf("the bot answered %d comments to %q, want 1", len(after)-before, body)
	}
	return after[len(after)-1]
}

func (e *surfaceEnv) deliver(event string, p map[string]any) {
	e.t.Helper()
	body, _ := json.Marshal(p)
	e.n++
	if err := e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: fmt.Sprintf("%s-%d", event, e.n), Event: event, Payload: body}); err != nil {
		e.t.Fatalf("%s delivery: %v", event, err)
	}
}

func (e *surfaceEnv) waitReported(n int, st bot.ExecutionState) {
	e.t.Helper()
	e.waitState(n, st)
	e.report()
	e.report() // the touch of an older execution is reported on the next tick
}

// TestButtonLifeCycle drives the whole flow through webhooks only: push →
// stage-only check runs → Promote Build → Confirm → prod-only → Approve →
// production deployed → Deployment statuses; a newer stage-only success
// removes the older one's button.
func TestButtonLifeCycle(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	sha := e.push()
	e.report()
	e.waitReported(1, bot.ExecutionSucceeded)
	runs := e.checkRuns(bot.StageOnly, sha)
	if len(runs) != 1 {
		t.Fatalf("stage-only check runs = %d, want 1", len(runs))
	}
	cr := runs[0]
	if cr.Status != "completed" || cr.Conclusion != "success" || strings.Join(labels(cr), ",") != "Promote Build" {
		t.Fatalf("stage-only check run: %s/%s %v", cr.Status, cr.Conclusion, labels(cr))
	}
	if cr.ExternalID == "" || !strings.HasPrefix(cr.DetailsURL, "http://stagehand.test/programs/Codertocat/Hello-World/executions/1") {
		t.Errorf("external id %q, details %q", cr.ExternalID, cr.DetailsURL)
	}

	e.click(cr, githubapp.ActionPromote, "alice")
	e.report()
	cr = e.gh.CheckRun(cr.ID)
	if got := strings.Join(labels(cr), ","); got != "Confirm,Dismiss" {
		t.Fatalf("after Promote Build the buttons are %q, want Confirm,Dismiss", got)
	}
	e.click(cr, githubapp.ActionConfirm, "alice")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.report()
	prodRuns := e.checkRuns(bot.ProdOnly, sha)
	if len(prodRuns) != 1 || prodRuns[0].Conclusion != "action_required" || !strings.Contains(strings.Join(labels(prodRuns[0]), ","), "Approve") {
		t.Fatalf("prod-only check runs at approval: %+v", prodRuns)
	}
	e.click(prodRuns[0], githubapp.ActionApprove, "bob")
	e.waitReported(2, bot.ExecutionSucceeded)
	prodRuns = e.checkRuns(bot.ProdOnly, sha)
	if got := labels(prodRuns[0]); len(got) != 0 || prodRuns[0].Output.Title != "approval passed" {
		t.Errorf("the passed approval's check run still shows %v (%q)", got, prodRuns[0].Output.Title)
	}
	if len(prodRuns) != 2 || prodRuns[1].Conclusion != "success" {
		t.Fatalf("after approval: %d prod-only check runs, last %s/%s; want a second one, successful", len(prodRuns), prodRuns[len(prodRuns)-1].Status, prodRuns[len(prodRuns)-1].Conclusion)
	}
	deps := e.gh.Deployments(owner, repo)
	var envs []string
	for _, d := range deps {
		var states []string
		for _, s := range d.Statuses {
			if !s.ByGitHub {
				states = append(states, s.State)
			}
		}
		envs = append(envs, d.Environment+":"+strings.Join(states, ">"))
		if d.AutoMerge == nil || *d.AutoMerge || d.RequiredContexts == nil || len(d.RequiredContexts) != 0 {
			t.Errorf("deployment %d: auto_merge %v required_contexts %v", d.ID, d.AutoMerge, d.RequiredContexts)
		}
	}
	if got := strings.Join(envs, " "); got != "stage:in_progress>success production:in_progress>success" {
		t.Errorf("deployments = %s", got)
	}

	// A newer stage-only success takes the button away from the older one.
	newer := e.repo.commit("newer", nil)
	e.push()
	e.waitReported(3, bot.ExecutionSucceeded)
	if got := labels(e.gh.CheckRun(cr.ID)); len(got) != 0 {
		t.Errorf("the older stage-only check run still shows %v", got)
	}
	if got := e.checkRuns(bot.StageOnly, newer); len(got) != 1 || strings.Join(labels(got[0]), ",") != "Promote Build" {
		t.Errorf("the newer stage-only check run: %+v", got)
	}
}

// TestRefusals: a read-only user's click and command, a stale button and a
// self-approval change nothing and are answered.
func TestRefusals(t *testing.T) {
	cfg := strings.Replace(sampleConfig(splitPipelines), "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    prevent_self_approval: true\n", 1)
	e := newSurfaceEnv(t, cfg)
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	cr := e.checkRuns(bot.StageOnly, "")[0]

	e.click(cr, githubapp.ActionPromote, "rita")
	e.report()
	if got := strings.Join(labels(e.gh.CheckRun(cr.ID)), ","); got != "Promote Build" {
		t.Errorf("a read-only click changed the buttons to %q", got)
	}
	if !strings.Contains(e.gh.CheckRun(cr.ID).Output.Summary+e.gh.CheckRun(cr.ID).Output.Text, "refused") {
		t.Errorf("the check run does not explain the refusal:\n%s", e.gh.CheckRun(cr.ID).Output.Summary)
	}
	reply := e.comment("rita", "/stagehand promote")
	if !strings.Contains(reply.Body, "read permission") {
		t.Errorf("reply to a read-only user: %q", reply.Body)
	}
	var n int
	e.view(func(tx bot.Tx) error {
		es, err := tx.Executions(context.Background(), bot.ExecutionFilter{ProgramID: e.prog.ID})
		n = len(es)
		return err
	})
	if n != 1 {
		t.Fatalf("a refused command started an execution: %d executions", n)
	}
	if got := e.gh.Reactions(e.lastComment); len(got) == 0 || got[0] != "eyes" {
		t.Errorf("reactions = %v, want eyes", got)
	}

	// Self-approval: alice promotes, alice may not approve.
	reply = e.comment("alice", "/stagehand promote")
	if !strings.Contains(reply.Body, "prod-only #2") {
		t.Fatalf("promote reply: %q", reply.Body)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	reply = e.comment("alice", "/stagehand approve 2")
	if !strings.Contains(reply.Body, "prevent_self_approval") {
		t.Errorf("self-approval reply: %q", reply.Body)
	}
	if ex, _ := e.execution(2); ex.State != bot.ExecutionWaiting {
		t.Errorf("self-approval changed #2 to %s", ex.State)
	}

	// A stale button: Promote Build on an execution that is no longer the
	// latest successful stage-only one.
	e.comment("bob", "/stagehand reject 2 not now")
	e.waitState(2, bot.ExecutionCancelled)
	e.repo.commit("newer", nil)
	e.push()
	e.waitReported(3, bot.ExecutionSucceeded)
	e.click(cr, githubapp.ActionPromote, "alice")
	e.report()
	if got := labels(e.gh.CheckRun(cr.ID)); len(got) != 0 {
		t.Errorf("a stale Promote Build click brought back buttons %v", got)
	}
	if !strings.Contains(e.gh.CheckRun(cr.ID).Output.Summary+e.gh.CheckRun(cr.ID).Output.Text, "no longer the latest") {
		t.Errorf("the stale check run does not say why:\n%s", e.gh.CheckRun(cr.ID).Output.Summary)
	}

	// Bot comments and edits are ignored: no reply.
	before := len(e.gh.Comments(owner, repo, 1))
	var p map[string]any
	_ = json.Unmarshal(githubtest.Payload("issue_comment/edited.json"), &p)
	e.setRepo(p)
	e.deliver("issue_comment", p)
	_ = json.Unmarshal(githubtest.Payload("issue_comment/created.with-installation.json"), &p)
	e.setRepo(p)
	p["comment"].(map[string]any)["body"] = "/stagehand status"
	p["sender"].(map[string]any)["type"] = "Bot"
	e.deliver("issue_comment", p)
	if after := len(e.gh.Comments(owner, repo, 1)); after != before {
		t.Errorf("the bot answered %d ignored comments", after-before)
	}
	// Another app's check run is ignored: a Promote Build click on the
	// latest stage-only check run, the same in every field but the app's
	// id, runs no command, records no event and makes no GitHub call.
	latest := e.checkRuns(bot.StageOnly, "")
	target := latest[len(latest)-1]
	q := e.clickPayload(target, githubapp.ActionPromote, "alice")
	q["check_run"].(map[string]any)["app"].(map[string]any)["id"] = testAppID + 1
	state, events, calls := e.snapshotState(), e.eventsState(), len(e.gh.Calls())
	e.deliver("check_run", q)
	if diff := cmp.Diff(state, e.snapshotState()); diff != "" {
		t.Errorf("another app's check run changed the state (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(events, e.eventsState()); diff != "" {
		t.Errorf("another app's check run recorded events (-before +after):\n%s", diff)
	}
	if got := e.gh.Calls()[calls:]; len(got) != 0 {
		t.Errorf("another app's check run made %d GitHub calls: %+v", len(got), got)
	}
	// The same click on Stagehand's own check run asks for confirmation:
	// only the app told them apart.
	q["check_run"].(map[string]any)["app"].(map[string]any)["id"] = testAppID
	e.deliver("check_run", q)
	e.report()
	if got := strings.Join(labels(e.gh.CheckRun(target.ID)), ","); got != "Confirm,Dismiss" {
		t.Errorf("after Stagehand's own Promote Build click the buttons are %q, want Confirm,Dismiss", got)
	}
}

// eventsState is every event of every execution, in order.
func (e *surfaceEnv) eventsState() string {
	e.t.Helper()
	var b strings.Builder
	ctx := context.Background()
	e.view(func(tx bot.Tx) error {
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: e.prog.ID})
		if err != nil {
			return err
		}
		for _, ex := range es {
			evs, err := tx.Events(ctx, ex.ID)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				fmt.Fprintf(&b, "%s: %s %s %s %q\n", ex, ev.At.UTC().Format(time.RFC3339Nano), ev.Actor, ev.Kind, ev.Detail)
			}
		}
		return nil
	})
	return b.String()
}

// TestCreateAndPromoteAndDeployNow: without a prod-only pipeline the
// button offers Create & Promote; a scheduled pipeline shows Deploy Now.
func TestCreateAndPromoteAndDeployNow(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n"))
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	cr := e.checkRuns(bot.StageOnly, "")[0]
	e.click(cr, githubapp.ActionPromote, "alice")
	e.report()
	if got := strings.Join(labels(e.gh.CheckRun(cr.ID)), ","); got != "Create & Promote,Dismiss" {
		t.Fatalf("buttons = %q", got)
	}
	e.click(e.gh.CheckRun(cr.ID), githubapp.ActionCreatePromote, "alice")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	e.report()
	pr := e.checkRuns(bot.ProdOnly, "")
	e.click(pr[len(pr)-1], githubapp.ActionReject, "bob")
	e.waitReported(2, bot.ExecutionCancelled)
	pr = e.checkRuns(bot.ProdOnly, "")
	if last := pr[len(pr)-1]; last.Conclusion != "cancelled" {
		t.Errorf("after Reject the prod-only check run is %s/%s", last.Status, last.Conclusion)
	}
	// Re-run from check_run.rerequested.
	e.rerun(cr, "alice")
	if ex := e.waitState(3, bot.ExecutionSucceeded); ex.Pipeline != bot.StageOnly || ex.Commit != cr.HeadSHA {
		t.Errorf("re-run started %s at %s", ex, ex.Commit)
	}

	// Deploy Now: the default branch's file makes prod-only scheduled. Its
	// schedule gate shows Deploy Now, nothing reaches production before
	// the click, and the click deploys stage-only #4's artifacts at once.
	e.repo.commit("schedule prod-only", map[string]string{
		".github/stagehand.yml": sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n")})
	e.push()
	e.waitReported(4, bot.ExecutionSucceeded)
	stageApp := e.repo.readRecord("stage/app.txt")
	if reply := e.comment("alice", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #5") {
		t.Fatalf("promote reply: %q", reply.Body)
	}
	e.waitStep(5, bot.StepApproval, bot.StepWaiting)
	e.report()
	pr = e.checkRuns(bot.ProdOnly, "")
	e.click(pr[len(pr)-1], githubapp.ActionApprove, "bob")
	e.waitStep(5, bot.StepSchedule, bot.StepWaiting)
	e.report()
	pr = e.checkRuns(bot.ProdOnly, "")
	sched := pr[len(pr)-1]
	if sched.Conclusion != "action_required" || strings.Join(labels(sched), ",") != "Deploy Now" {
		t.Fatalf("schedule gate: %s/%s buttons %v, want Deploy Now", sched.Status, sched.Conclusion, labels(sched))
	}
	if got := e.repo.readRecord("production/app.txt"); got != "" {
		t.Fatalf("production deployed %q before Deploy Now", got)
	}
	e.click(sched, githubapp.ActionDeployNow, "bob")
	ex := e.waitState(5, bot.ExecutionSucceeded)
	e.report()
	if got := e.repo.readRecord("production/app.txt"); got != stageApp {
		t.Errorf("after Deploy Now production runs %q, want stage-only #4's artifact %q", got, stageApp)
	}
	if ex.ScheduledAt.IsZero() || !strings.Contains(moreEventsOf(e, ex.ID), string(bot.EventScheduled)) {
		t.Errorf("Deploy Now left no schedule on prod-only #5: scheduled at %v, events %q", ex.ScheduledAt, moreEventsOf(e, ex.ID))
	}
	pr = e.checkRuns(bot.ProdOnly, "")
	if last := pr[len(pr)-1]; last.Status != "completed" || last.Conclusion != "success" || len(last.Actions) != 0 {
		t.Errorf("prod-only #5's check run after Deploy Now: %s/%s buttons %v, want completed/success without buttons", last.Status, last.Conclusion, labels(last))
	}
}

// TestPushExplainsWhatDidNotStart: an invalid configuration fails the
// stagehand/config check run with an annotation at each error's line, and
// full-stack held back by stage-only's priority (rule A) gets a skipped
// check run that says why.
func TestPushExplainsWhatDidNotStart(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig("  full-stack: {branch: main, trigger: on-git-changes}\n  stage-only: {branch: main, trigger: on-git-changes}\n"))
	sha := e.push()
	runs := e.checkRuns(bot.FullStack, sha)
	if len(runs) != 1 || runs[0].Conclusion != "skipped" || !strings.Contains(runs[0].Output.Title, "stage-only has priority on main") {
		t.Fatalf("full-stack check runs = %+v", runs)
	}
	bad := e.repo.commit("break the config", map[string]string{".github/stagehand.yml": badConfig})
	e.push()
	var cfgRun *githubtest.CheckRun
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		if cr.Name == "stagehand/config" && cr.HeadSHA == bad {
			cfgRun = &cr
		}
	}
	if cfgRun == nil || cfgRun.Conclusion != "failure" || len(cfgRun.Output.Annotations) == 0 {
		t.Fatalf("stagehand/config check run = %+v", cfgRun)
	}
	a := cfgRun.Output.Annotations[0]
	if a.Path != ".github/stagehand.yml" || a.StartLine == 0 || a.AnnotationLevel != "failure" {
		t.Errorf("annotation = %+v", a)
	}
	// Exactly one annotation per error, each at its line and column.
	_, diags := config.ParseRepoConfig(config.RepoConfigPath, []byte(badConfig))
	if len(diags.Errors()) == 0 || len(diags.Warnings()) != 0 {
		t.Fatalf("the broken file's diagnostics are %v; the test wants errors only", diags)
	}
	if diff := cmp.Diff(annotationsOf(diags), shownAnnotations(cfgRun.Output.Annotations)); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

// TestPushWarningReachesTheCheckRun: a valid file with a warning (full-stack
// beside stage-only) starts its pipelines, and its stagehand/config check
// run is neutral with one warning annotation at the warning's line.
func TestPushWarningReachesTheCheckRun(t *testing.T) {
	cfg := sampleConfig("  full-stack: {branch: main, trigger: manual}\n  stage-only: {branch: main, trigger: on-git-changes}\n")
	e := newSurfaceEnv(t, cfg)
	sha := e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	_, diags := config.ParseRepoConfig(config.RepoConfigPath, []byte(cfg))
	if len(diags.Warnings()) != 1 || len(diags.Errors()) != 0 {
		t.Fatalf("the file's diagnostics are %v; the test wants one warning", diags)
	}
	var cfgRuns []githubtest.CheckRun
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		if cr.Name == "stagehand/config" && cr.HeadSHA == sha {
			cfgRuns = append(cfgRuns, cr)
		}
	}
	if len(cfgRuns) != 1 || cfgRuns[0].Conclusion != "neutral" || !strings.Contains(cfgRuns[0].Output.Title, "1 warning") {
		t.Fatalf("stagehand/config check runs = %+v, want one, neutral, with 1 warning", cfgRuns)
	}
	if diff := cmp.Diff(annotationsOf(diags), shownAnnotations(cfgRuns[0].Output.Annotations)); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

// badConfig is a file with three errors and no warning.
const badConfig = "version: 1\npipelines:\n  prod-only: {trigger: on-git-changes}\n"

// annotationsOf is what a stagehand/config check run should annotate for
// diags: errors first, then warnings, as "level path:line:col message".
func annotationsOf(diags bot.Diagnostics) []string {
	var out []string
	for _, d := range append(diags.Errors(), diags.Warnings()...) {
		level := "failure"
		if d.Severity == bot.SeverityWarning {
			level = "warning"
		}
		out = append(out, fmt.Sprintf("%s %s:%d:%d %s", level, d.Path, d.Line, d.Column, d.Message))
	}
	return out
}

// shownAnnotations are a check run's annotations in annotationsOf's form.
func shownAnnotations(as []githubtest.Annotation) []string {
	var out []string
	for _, a := range as {
		if a.EndLine != a.StartLine || a.EndColumn != a.StartColumn {
			out = append(out, fmt.Sprintf("%+v spans more than one place", a))
			continue
		}
		out = append(out, fmt.Sprintf("%s %s:%d:%d %s", a.AnnotationLevel, a.Path, a.StartLine, a.StartColumn, a.Message))
	}
	return out
}

// TestApproversAndSuiteRerun: with approvers set, a writer who is not one
// is refused (and counted); a team member may approve; check_suite
// rerequested re-runs the pipelines of that commit.
func TestApproversAndSuiteRerun(t *testing.T) {
	cfg := strings.Replace(sampleConfig(splitPipelines), "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    approvers: {users: [bob], teams: [Codertocat/release]}\n", 1)
	e := newSurfaceEnv(t, cfg)
	refused := map[string]int{}
	e.hooks.Refusals = func(action string) { refused[action]++ }
	e.gh.SetPermission(owner, repo, "tina", "write")
	e.gh.AddTeamMember("Codertocat", "release", "tina")
	sha := e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	e.comment("alice", "/stagehand promote")
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	reply := e.comment("mallory", "/stagehand approve")
	if !strings.Contains(reply.Body, "not one of the production approvers") {
		t.Errorf("a non-approver's approval was answered %q", reply.Body)
	}
	if refused["approve"] != 1 {
		t.Errorf("refusals counted = %v, want approve: 1", refused)
	}
	if ex, _ := e.execution(2); ex.State != bot.ExecutionWaiting {
		t.Fatalf("a refused approval moved #2 to %s", ex.State)
	}
	reply = e.comment("tina", "/stagehand approve")
	if !strings.Contains(reply.Body, "approved by tina") {
		t.Errorf("a team member's approval was answered %q", reply.Body)
	}
	e.waitState(2, bot.ExecutionSucceeded)

	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("check_suite/rerequested.json"), &p); err != nil {
		t.Fatal(err)
	}
	suite := p["check_suite"].(map[string]any)
	suite["head_sha"] = sha
	suite["app"].(map[string]any)["id"] = testAppID
	p["sender"].(map[string]any)["login"] = "alice"
	e.setRepo(p)
	e.deliver("check_suite", p)
	ex := e.waitState(3, bot.ExecutionSucceeded)
	if ex.Pipeline != bot.StageOnly || ex.Commit != sha || ex.Cause != bot.CauseRerun {
		t.Errorf("the suite re-run started %s at %s (%s)", ex, ex.Commit, ex.Cause)
	}
}
