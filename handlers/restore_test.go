package handlers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/handlers/web"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// deployBuilds pushes n builds, each promoted by mallory and approved by
// alice through comments, so production ran each in turn: build i is
// stage-only #2i+1, its deploy prod-only #2i+2. It returns their artifact
// digests and what production held after each deploy.
func (e *surfaceEnv) deployBuilds(n int) (digests, production []string) {
	e.t.Helper()
	for i := range n {
		digest, prod := e.deployBuild(i)
		digests, production = append(digests, digest), append(production, prod)
	}
	return digests, production
}

// deployBuild is build i of deployBuilds: stage-only #2i+1, promoted and
// deployed as prod-only #2i+2. It returns the build's artifact digest and
// what production then held.
func (e *surfaceEnv) deployBuild(i int) (digest, production string) {
	e.t.Helper()
	build, deploy := 2*i+1, 2*i+2
	e.repo.commit("change "+strconv.Itoa(i), map[string]string{"page.txt": strconv.Itoa(i)})
	e.push()
	digest = e.waitState(build, bot.ExecutionSucceeded).ArtifactDigest
	if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #"+strconv.Itoa(deploy)) {
		e.t.Fatalf("promote reply: %q", reply.Body)
	}
	e.waitStep(deploy, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve "+strconv.Itoa(deploy)); !strings.HasPrefix(reply.Body, "✅") {
		e.t.Fatalf("alice's approval of #%d was answered %q", deploy, reply.Body)
	}
	e.waitState(deploy, bot.ExecutionSucceeded)
	return digest, e.repo.readRecord("production/app.txt")
}

// TestRestoreProductionToAnOlderBuild: builds A and B ran in production,
// each promoted and approved through comments. mallory (write, not an
// approver) may not restore; bob restores A: a prod-only execution from
// stage-only #1 whose approval needs Approve Rollback (a plain approve is
// refused), and production then runs A's byte-identical artifacts. The
// restore is in the audit trail.
func TestRestoreProductionToAnOlderBuild(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob, alice]}\n"))
	digests, production := e.deployBuilds(2)
	if digests[0] == digests[1] || production[0] == production[1] {
		t.Fatalf("the builds made equal artifact sets %v; the test needs distinct ones", digests)
	}

	// An attack: write permission is not enough for a production action.
	if reply := e.comment("mallory", "/stagehand restore production 1"); !strings.Contains(reply.Body, "not one of the production approvers") {
		t.Fatalf("mallory's restore was answered %q", reply.Body)
	}
	if _, err := e.executionOrErr(5); err == nil {
		t.Fatal("mallory's refused restore created #5")
	}
	if reply := e.comment("bob", "/stagehand restore stage 1"); !strings.Contains(reply.Body, "only production can be restored") {
		t.Errorf("restore stage was answered %q", reply.Body)
	}
	if reply := e.comment("bob", "/stagehand restore production 2"); !strings.Contains(reply.Body, "only the build of a succeeded stage-only or full-stack execution can be restored") {
		t.Errorf("restore of prod-only #2 was answered %q", reply.Body)
	}
	if reply := e.comment("bob", "/stagehand restore production 99"); !strings.Contains(reply.Body, "has no execution #99") {
		t.Errorf("restore of #99 was answered %q", reply.Body)
	}

	before := e.lastAuditID()
	reply := e.comment("bob", "/stagehand restore production 1")
	if !strings.HasPrefix(reply.Body, "✅") || !strings.Contains(reply.Body, "prod-only #5 restores stage-only #1") {
		t.Fatalf("bob's restore was answered %q", reply.Body)
	}
	var recorded bool
	for _, r := range e.auditSince(before) {
		if r.Action == bot.AuditRestore && r.Actor == "bob" && r.Outcome == bot.AuditDone && r.Detail == "from stage-only #1" {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("no audit record of bob's restore: %+v", e.auditSince(before))
	}

	// Going back from B to A is a rollback (rule G): a plain approve is
	// refused and changes nothing.
	e.waitStep(5, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve 5"); strings.HasPrefix(reply.Body, "✅") || !strings.Contains(reply.Body, "--rollback") {
		t.Fatalf("a plain approve of the restore was answered %q", reply.Body)
	}
	if ex, _ := e.execution(5); ex.State != bot.ExecutionWaiting {
		t.Fatalf("a plain approve of the restore moved #5 to %s", ex.State)
	}
	if got := e.repo.readRecord("production/app.txt"); got != production[1] {
		t.Fatalf("production changed before the rollback was approved: %q", got)
	}
	if reply := e.comment("alice", "/stagehand approve 5 --rollback"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("alice's approve --rollback was answered %q", reply.Body)
	}
	ex := e.waitState(5, bot.ExecutionSucceeded)
	if ex.Cause != bot.CauseRestore || ex.ArtifactDigest != digests[0] {
		t.Errorf("#5: cause %q, artifact set %s; want restore of %s", ex.Cause, ex.ArtifactDigest, digests[0])
	}
	if got := e.repo.readRecord("production/app.txt"); got != production[0] {
		t.Errorf("after the restore production holds %q, want A's byte-identical %q", got, production[0])
	}
	var deployedSum string
	for _, line := range strings.Split(e.repo.readRecord("deploys.log"), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[1] == "production" && f[3] == "#5" {
			deployedSum = f[5]
		}
	}
	for _, line := range strings.Split(e.repo.readRecord("deploys.log"), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[1] == "production" && f[3] == "#2" && f[5] != deployedSum {
			t.Errorf("#5 deployed a file with sha256 %s, #2 (build A) %s", deployedSum, f[5])
		}
	}
	var d bot.Deployment
	e.view(func(tx bot.Tx) (err error) {
		d, err = tx.Deployment(context.Background(), ex.ProgramID, bot.Production)
		return err
	})
	if d.ArtifactDigest != digests[0] {
		t.Errorf("production's deployment holds set %s, want A's %s", d.ArtifactDigest, digests[0])
	}

	// While A runs there, the program says production is pinned.
	if reply := e.comment("alice", "/stagehand status"); !strings.Contains(reply.Body, "Production is pinned by restore of #1 (prod-only #5, rolled back from #3)") {
		t.Errorf("status does not show the pin:\n%s", reply.Body)
	}
	if page := e.programPage(); !strings.Contains(page, "pinned by restore of #1 (prod-only #5, rolled back from #3)") {
		t.Errorf("the program page does not show the pin:\n%s", page)
	}
}

// TestRestoreOfAPrunedBuildIsRefused: three builds ran in production; a
// retention pass that keeps only production's last two deploys removes the
// first build's artifact set, and restoring it is refused with the reason.
func TestRestoreOfAPrunedBuildIsRefused(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob, alice]}\n"))
	e.deployBuilds(3)
	r := &worker.Retainer{Store: e.store, Artifacts: e.worker.Artifacts.(worker.ArtifactPruner), DataDir: e.dataDir, Clock: e.clock,
		Policy: bot.Retention{Age: 30 * 24 * time.Hour, KeepDeployed: 2}, Logger: e.hooks.Logger}
	e.clock.Advance(31 * 24 * time.Hour)
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	reply := e.comment("bob", "/stagehand restore production 1")
	for _, want := range []string{"stage-only #1 cannot be restored", "pruned by retention on " + e.clock.Now().UTC().Format("2006-01-02"), "restorable builds are listed on the environment history page", "/environments/production/deployments"} {
		if !strings.Contains(reply.Body, want) {
			t.Errorf("the restore of a pruned build was answered %q, which does not say %q", reply.Body, want)
		}
	}
	if _, err := e.executionOrErr(7); err == nil {
		t.Error("the refused restore created #7")
	}
	if reply := e.comment("bob", "/stagehand restore production 3"); !strings.Contains(reply.Body, "prod-only #7 restores stage-only #3") {
		t.Errorf("the restore of a kept build was answered %q", reply.Body)
	}
}

// restoreApproved has bob restore production to build and alice approve
// the rollback of the prod-only execution restore that makes.
func (e *surfaceEnv) restoreApproved(build, restore int) {
	e.t.Helper()
	if reply := e.comment("bob", "/stagehand restore production "+strconv.Itoa(build)); !strings.Contains(reply.Body, "prod-only #"+strconv.Itoa(restore)+" restores ") {
		e.t.Fatalf("bob's restore of #%d was answered %q", build, reply.Body)
	}
	e.waitStep(restore, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve "+strconv.Itoa(restore)+" --rollback"); !strings.HasPrefix(reply.Body, "✅") {
		e.t.Fatalf("alice's approve %d --rollback was answered %q", restore, reply.Body)
	}
}

// executionOrErr reads execution n, or says it does not exist.
func (e *pipelineEnv) executionOrErr(n int) (bot.Execution, error) {
	var ex bot.Execution
	err := e.store.View(context.Background(), func(tx bot.Tx) (err error) {
		ex, err = tx.ExecutionByNumber(context.Background(), e.prog.ID, n)
		return err
	})
	return ex, err
}

// programPage reads the program's page on the dashboard (served publicly).
func (e *surfaceEnv) programPage() string {
	e.t.Helper()
	mux := http.NewServeMux()
	(&web.Dashboard{Store: e.store, Public: true}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/programs/" + owner + "/" + repo)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET the program page: %d, %v", resp.StatusCode, err)
	}
	return string(body)
}

// fullStackInProduction: a program with full-stack (manual), stage-only
// and prod-only pipelines; stage-only #1 built the first commit, full-stack
// #2 a later one and ran in production, approved by alice.
func fullStackInProduction(t *testing.T) *surfaceEnv {
	t.Helper()
	e := newSurfaceEnv(t, strings.Replace(sampleConfig("  full-stack: {branch: main, trigger: manual}\n  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true}\n"),
		"    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    approvers: {users: [bob, alice]}\n", 1))
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	e.repo.commit("full-stack change", map[string]string{"page.txt": "fs"})
	if reply := e.comment("bob", "/stagehand run full-stack"); !strings.Contains(reply.Body, "full-stack #2") {
		t.Fatalf("run full-stack: %q", reply.Body)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve 2"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("approve 2: %q", reply.Body)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	return e
}

// TestRestoreAFullStackBuild: the build of full-stack #2 ran in
// production, then stage-only #3 promoted as #4; restoring #2 deploys
// full-stack #2's byte-identical artifacts after Approve Rollback.
func TestRestoreAFullStackBuild(t *testing.T) {
	e := fullStackInProduction(t)
	fs, _ := e.execution(2)
	fullStackProduction := e.repo.readRecord("production/app.txt")

	e.repo.commit("later", map[string]string{"page.txt": "later"})
	e.push()
	e.waitState(3, bot.ExecutionSucceeded)
	if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #4") {
		t.Fatalf("promote: %q", reply.Body)
	}
	e.waitStep(4, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve 4"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("approve 4: %q", reply.Body)
	}
	e.waitState(4, bot.ExecutionSucceeded)
	if e.repo.readRecord("production/app.txt") == fullStackProduction {
		t.Fatal("#4 did not change production")
	}

	e.restoreApproved(2, 5)
	if ex := e.waitState(5, bot.ExecutionSucceeded); ex.ArtifactDigest != fs.ArtifactDigest {
		t.Errorf("#5 deployed set %s, want full-stack #2's %s", ex.ArtifactDigest, fs.ArtifactDigest)
	}
	if got := e.repo.readRecord("production/app.txt"); got != fullStackProduction {
		t.Errorf("after the restore production holds %q, want full-stack #2's %q", got, fullStackProduction)
	}
}

// TestPinShownOnTheLatestBuild: the check run of the latest successful
// stage-only build, the one offering Promote Build, is brought up to date
// when production's newest successful deploy changes: it gains "pinned by
// restore" once the restore has run in production, and loses it once a
// promotion ends the pin, without anything happening to the build itself.
func TestPinShownOnTheLatestBuild(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob, alice]}\n"))
	e.deployBuilds(2) // builds #1, #3; deploys #2, #4
	e.report()
	latest, _ := e.execution(3)
	summary := func() string {
		e.t.Helper()
		e.report()
		e.report() // what the first pass asked to render again
		runs := e.checkRuns(bot.StageOnly, latest.Commit)
		if len(runs) == 0 {
			t.Fatal("stage-only #3 has no check run")
		}
		return e.gh.CheckRun(runs[len(runs)-1].ID).Output.Summary
	}
	const pin = "📌 Production is pinned by restore of #1 (prod-only #5, rolled back from #3)."
	if s := summary(); strings.Contains(s, "pinned") {
		t.Fatalf("before the restore #3's check run says:\n%s", s)
	}

	e.restoreApproved(1, 5)
	e.waitState(5, bot.ExecutionSucceeded)
	if s := summary(); !strings.Contains(s, pin) {
		t.Errorf("while production is pinned #3's check run says:\n%s\nwant %q", s, pin)
	}

	if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #6") {
		t.Fatalf("promote: %q", reply.Body)
	}
	e.waitStep(6, bot.StepApproval, bot.StepWaiting)
	e.comment("alice", "/stagehand approve 6")
	e.waitState(6, bot.ExecutionSucceeded)
	if s := summary(); strings.Contains(s, "pinned") {
		t.Errorf("after #6 ended the pin #3's check run still says:\n%s", s)
	}
}

// TestRestoreIsHeldByAFreeze: a restore passes production's gates as any
// deploy does: with a freeze on the default branch, the approved restore
// waits before its deploy and production keeps running the newer build
// until a production approver breaks the glass with a reason.
func TestRestoreIsHeldByAFreeze(t *testing.T) {
	approvers := "    approvers: {users: [bob, alice]}\n"
	e := newSurfaceEnv(t, policyWith(approvers))
	_, production := e.deployBuilds(2) // builds #1, #3; deploys #2, #4
	e.pushMain(policyWith(approvers + centuryFreeze))
	e.waitState(5, bot.ExecutionSucceeded)

	e.restoreApproved(1, 6)
	e.waitStep(6, bot.StepDeployProduction, bot.StepWaiting)
	if err := e.engine.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	ex, steps := e.execution(6)
	if last := steps[len(steps)-1]; ex.State != bot.ExecutionWaiting || last.State != bot.StepWaiting || !strings.Contains(last.Message, "the long freeze") {
		t.Fatalf("#6 is %s, %s %s (%q); want its deploy held by the freeze", ex.State, last.Name, last.State, last.Message)
	}
	if got := e.repo.readRecord("production/app.txt"); got != production[1] {
		t.Fatalf("production changed while the restore was held: %q", got)
	}
	if reply := e.comment("bob", `/stagehand deploy-now 6 --override "INC-9: bad release"`); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("override: %q", reply.Body)
	}
	e.waitState(6, bot.ExecutionSucceeded)
	if got := e.repo.readRecord("production/app.txt"); got != production[0] {
		t.Errorf("after the override production holds %q, want build #1's %q", got, production[0])
	}
}

// TestPromoteBuildOlderThanRolledBackAsksPlainly: full-stack #2 ran in
// production after stage-only #1 was built; production is then restored to
// #1's build. #1's check run, the latest build's, says production is
// pinned and still offers Promote Build; clicking it asks to Confirm with
// the plain warning that #1 is older than #2, the build rolled back from,
// and Confirm still promotes.
func TestPromoteBuildOlderThanRolledBackAsksPlainly(t *testing.T) {
	e := fullStackInProduction(t)
	e.restoreApproved(1, 3)
	e.waitState(3, bot.ExecutionSucceeded)
	e.report()
	e.report()

	build := e.checkRuns(bot.StageOnly, "")[0]
	build = e.gh.CheckRun(build.ID)
	if !strings.Contains(build.Output.Summary, "📌 Production is pinned by restore of #1 (prod-only #3, rolled back from #2).") || strings.Join(labels(build), ",") != "Promote Build" {
		t.Fatalf("#1's check run: buttons %v\n%s", labels(build), build.Output.Summary)
	}
	e.click(build, githubapp.ActionPromote, "mallory")
	e.report()
	build = e.gh.CheckRun(build.ID)
	if !strings.Contains(build.Output.Summary, "This build, #1, is **older than #2, the build production was rolled back from**") || strings.Join(labels(build), ",") != "Confirm,Dismiss" {
		t.Fatalf("after Promote Build #1's check run: buttons %v\n%s", labels(build), build.Output.Summary)
	}
	e.click(build, githubapp.ActionConfirm, "mallory")
	e.waitStep(4, bot.StepApproval, bot.StepWaiting)
	if ex, _ := e.execution(4); ex.Pipeline != bot.ProdOnly || ex.Cause != bot.CausePromotion {
		t.Errorf("Confirm started %s (%s)", ex, ex.Cause)
	}
}
