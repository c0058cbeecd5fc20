package handlers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

const splitPipelines = `  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {approval: true}
`

func mustRule(t *testing.T, err error, rule string, contains ...string) {
	t.Helper()
	var re *bot.RuleError
	if !errors.As(err, &re) || re.Rule != rule {
		t.Fatalf("err = %v, want a refusal under rule %s", err, rule)
	}
	for _, c := range contains {
		if !strings.Contains(re.Error(), c) {
			t.Errorf("refusal %q does not mention %q", re.Error(), c)
		}
	}
}

func field(line string, i int) string {
	f := strings.Fields(line)
	if i < len(f) {
		return f[i]
	}
	return ""
}

// TestStageOnlyPromoteProdOnly: the build runs once, and production
// receives the byte-identical artifact stage received (rule F).
func TestStageOnlyPromoteProdOnly(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig(splitPipelines))
	sha := e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	ctx := context.Background()
	res, err := e.engine.Promote(ctx, bot.Internal("alice"), e.prog.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Number != 2 || res.Execution.Pipeline != bot.ProdOnly {
		t.Fatalf("promotion started %s", res.Execution)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if _, err := e.engine.Approve(ctx, bot.Internal("bob"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	prod := e.waitState(2, bot.ExecutionSucceeded)

	if got := e.repo.lines("builds.log"); len(got) != 1 {
		t.Errorf("builds = %q, want exactly one", got)
	}
	deploys := e.repo.lines("deploys.log")
	if len(deploys) != 2 || field(deploys[0], 1) != "stage" || field(deploys[1], 1) != "production" {
		t.Fatalf("deploys = %q, want stage then production", deploys)
	}
	if field(deploys[0], 5) != field(deploys[1], 5) {
		t.Errorf("stage got artifact %s, production %s: not the same bytes", field(deploys[0], 5), field(deploys[1], 5))
	}
	if field(deploys[1], 4) != sha || field(deploys[1], 2) != "prod-only" || field(deploys[1], 6) != "LOG_LEVEL=info" {
		t.Errorf("production deploy = %q", deploys[1])
	}
	if a, b := e.repo.readRecord("stage/app.txt"), e.repo.readRecord("production/app.txt"); a == "" || a != b {
		t.Errorf("stage app %q and production app %q differ", a, b)
	}
	src, _ := e.execution(1)
	if prod.ArtifactDigest != src.ArtifactDigest || prod.SourceID != src.ID {
		t.Errorf("prod-only digest %s source %d, want %s and %d", prod.ArtifactDigest, prod.SourceID, src.ArtifactDigest, src.ID)
	}
	_, steps := e.execution(2)
	if !strings.Contains(steps[0].Message, "stage-only #1") || !strings.Contains(steps[0].Message, src.ArtifactDigest[:12]) {
		t.Errorf("artifact-preparation says %q; it must name the source and its digest", steps[0].Message)
	}
	var dep bot.Deployment
	e.view(func(tx bot.Tx) error {
		var err error
		dep, err = tx.Deployment(ctx, e.prog.ID, bot.Production)
		return err
	})
	if dep.Number != 2 || dep.ArtifactDigest != src.ArtifactDigest || dep.Commit != sha {
		t.Errorf("production runs %+v", dep)
	}
}

// TestFullStackStepsAndReject: all six steps in order; rejecting at the
// approval ends the execution cancelled with stage deployed and production
// untouched.
func TestFullStackStepsAndReject(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig("  full-stack: {branch: main, trigger: on-git-changes}\n"))
	ctx := context.Background()
	e.push()
	e.waitStep(1, bot.StepApproval, bot.StepWaiting)
	_, steps := e.execution(1)
	want := []string{"build:succeeded", "deploy-stage:succeeded", "stage-tests:succeeded", "approval:waiting", "schedule:pending", "deploy-production:pending"}
	if diff := cmp.Diff(want, stepStates(steps)); diff != "" {
		t.Errorf("steps at approval (-want +got):\n%s", diff)
	}
	if _, err := e.engine.Reject(ctx, bot.Internal("carol"), e.prog.ID, 1, "not today"); err != nil {
		t.Fatal(err)
	}
	ex := e.waitState(1, bot.ExecutionCancelled)
	_, steps = e.execution(1)
	want = []string{"build:succeeded", "deploy-stage:succeeded", "stage-tests:succeeded", "approval:cancelled", "schedule:skipped", "deploy-production:skipped"}
	if diff := cmp.Diff(want, stepStates(steps)); diff != "" {
		t.Errorf("steps after reject (-want +got):\n%s", diff)
	}
	if !strings.Contains(ex.Message, "rejected by carol: not today") {
		t.Errorf("message %q", ex.Message)
	}
	if deploys := e.repo.lines("deploys.log"); len(deploys) != 1 || field(deploys[0], 1) != "stage" {
		t.Errorf("deploys = %q, want stage only", deploys)
	}
	if e.repo.readRecord("production/app.txt") != "" {
		t.Error("production was touched")
	}

	// A second run goes through all six steps, in order.
	e.repo.commit("second", nil)
	e.push()
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if _, err := e.engine.Approve(ctx, bot.Internal("carol"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	_, steps = e.execution(2)
	for i := 1; i < len(steps); i++ {
		if steps[i].State != bot.StepSucceeded || steps[i].StartedAt.Before(steps[i-1].FinishedAt) {
			t.Errorf("step %s (%s, started %v) did not run after %s (finished %v)", steps[i].Name, steps[i].State, steps[i].StartedAt, steps[i-1].Name, steps[i-1].FinishedAt)
		}
	}
	if deploys := e.repo.lines("deploys.log"); len(deploys) != 3 || field(deploys[2], 1) != "production" {
		t.Errorf("deploys = %q", deploys)
	}
}

// TestQueueingAndExclusion is rules B and C.
func TestQueueingAndExclusion(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig("  full-stack: {branch: main, trigger: manual}\n"+splitPipelines))
	ctx := context.Background()
	release := e.repo.hold("hold-build")
	e.push() // stage-only #1
	e.waitStep(1, bot.StepBuild, bot.StepRunning)
	release()
	e.waitState(1, bot.ExecutionSucceeded)

	// A manual full-stack run, held in its build.
	release = e.repo.hold("hold-build")
	res, err := e.engine.StartManual(ctx, bot.Internal("dave"), e.prog.ID, bot.FullStack, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Number != 2 {
		t.Fatalf("full-stack is %s", res.Execution)
	}
	e.waitStep(2, bot.StepBuild, bot.StepRunning)

	// Three pushes while it runs: queued, coalesced to the newest.
	var shas []string
	for i := range 3 {
		e.repo.commit("change "+string(rune('a'+i)), nil)
		shas = append(shas, e.push())
	}
	for n, want := range map[int]bot.ExecutionState{3: bot.ExecutionSkipped, 4: bot.ExecutionSkipped, 5: bot.ExecutionQueued} {
		ex, _ := e.execution(n)
		if ex.State != want {
			t.Errorf("#%d is %s (%s), want %s", n, ex.State, ex.Message, want)
		}
	}
	if ex, _ := e.execution(3); ex.Message != "superseded by "+shas[1][:7] {
		t.Errorf("#3 says %q", ex.Message)
	}
	if ex, _ := e.execution(5); !strings.Contains(ex.Message, "waiting for full-stack #2") {
		t.Errorf("#5 says %q; it must name its blocker", ex.Message)
	}
	// A manual start while blocked is refused, naming the blocker.
	_, err = e.engine.StartManual(ctx, bot.Internal("erin"), e.prog.ID, bot.StageOnly, 0)
	mustRule(t, err, "B", "full-stack #2", "running", "http://stagehand.test/programs/Codertocat/Hello-World/executions/2")
	_, err = e.engine.Promote(ctx, bot.Internal("erin"), e.prog.ID, 0)
	mustRule(t, err, "B", "full-stack #2")

	// The full-stack execution waits for approval: it still blocks.
	release()
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if ex, _ := e.execution(5); ex.State != bot.ExecutionQueued {
		t.Errorf("#5 is %s while full-stack waits for approval", ex.State)
	}
	// When it ends, the queued stage-only starts by itself.
	if _, err := e.engine.Reject(ctx, bot.Internal("dave"), e.prog.ID, 2, ""); err != nil {
		t.Fatal(err)
	}
	ex := e.waitState(5, bot.ExecutionSucceeded)
	if ex.Commit != shas[2] {
		t.Errorf("#5 built %s, want the newest %s", ex.Commit, shas[2])
	}

	// Stage-only and prod-only run at the same time.
	if _, err := e.engine.Promote(ctx, bot.Internal("erin"), e.prog.ID, 5); err != nil {
		t.Fatal(err)
	}
	e.waitStep(6, bot.StepApproval, bot.StepWaiting)
	release = e.repo.hold("hold-build")
	e.repo.commit("while prod-only waits", nil)
	e.push()
	e.waitStep(7, bot.StepBuild, bot.StepRunning)
	if ex, _ := e.execution(6); ex.State != bot.ExecutionWaiting {
		t.Errorf("prod-only #6 is %s while stage-only #7 runs", ex.State)
	}
	release()
	if _, err := e.engine.Approve(ctx, bot.Internal("frank"), e.prog.ID, 6); err != nil {
		t.Fatal(err)
	}
	e.waitState(6, bot.ExecutionSucceeded)
	e.waitState(7, bot.ExecutionSucceeded)
}

// TestEnvironmentLocks is rule E.
func TestEnvironmentLocks(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig("  full-stack: {branch: main, trigger: manual}\n"+splitPipelines))
	ctx := context.Background()
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	if _, err := e.engine.StartManual(ctx, bot.Internal("dave"), e.prog.ID, bot.FullStack, 0); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	_, err := e.engine.SetVariable(ctx, bot.Internal("dave"), e.prog.ID, bot.Production, "LOG_LEVEL", "trace")
	mustRule(t, err, "E", "production is held by full-stack #2", "waiting")
	if _, err := e.engine.Reject(ctx, bot.Internal("dave"), e.prog.ID, 2, ""); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionCancelled)

	release := e.repo.hold("hold-tests")
	e.repo.commit("next", nil)
	e.push()
	e.waitStep(3, bot.StepStageTests, bot.StepRunning)
	msg, err := e.engine.SetVariable(ctx, bot.Internal("dave"), e.prog.ID, bot.Production, "LOG_LEVEL", "trace")
	if err != nil {
		t.Fatalf("setting a production variable while stage-only tests: %v", err)
	}
	if !strings.Contains(msg, "LOG_LEVEL set") {
		t.Errorf("answer %q", msg)
	}
	_, err = e.engine.SetVariable(ctx, bot.Internal("dave"), e.prog.ID, bot.Stage, "LOG_LEVEL", "x")
	mustRule(t, err, "E", "stage is held by stage-only #3")
	release()
	e.waitState(3, bot.ExecutionSucceeded)
	vars, err := e.engine.Variables(ctx, e.prog.ID, bot.Production)
	if err != nil || vars["LOG_LEVEL"] != "trace" {
		t.Errorf("production variables = %v, %v", vars, err)
	}
	if _, err := e.engine.Promote(ctx, bot.Internal("erin"), e.prog.ID, 0); err != nil {
		t.Fatal(err)
	}
	e.waitStep(4, bot.StepApproval, bot.StepWaiting)
	if _, err := e.engine.Approve(ctx, bot.Internal("frank"), e.prog.ID, 4); err != nil {
		t.Fatal(err)
	}
	e.waitState(4, bot.ExecutionSucceeded)
	deploys := e.repo.lines("deploys.log")
	last := deploys[len(deploys)-1]
	if field(last, 1) != "production" || field(last, 6) != "LOG_LEVEL=trace" {
		t.Errorf("the next production deploy saw %q, want LOG_LEVEL=trace", last)
	}
}

// TestArtifactReuseAndRollbackGuard: prod-only deploys the stage-only
// artifact although full-stack deployed another one to stage in between
// (rule F), and the rollback this causes needs Approve Rollback (rule G).
func TestArtifactReuseAndRollbackGuard(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig("  full-stack: {branch: main, trigger: manual}\n"+splitPipelines))
	ctx := context.Background()
	old := e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	stageOnlyApp := e.repo.readRecord("stage/app.txt")

	newer := e.repo.commit("newer", nil)
	if _, err := e.engine.StartManual(ctx, bot.Internal("dave"), e.prog.ID, bot.FullStack, 0); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	if _, err := e.engine.Approve(ctx, bot.Internal("dave"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	fullStackApp := e.repo.readRecord("stage/app.txt")
	if fullStackApp == stageOnlyApp || !strings.Contains(fullStackApp, newer) {
		t.Fatalf("full-stack did not deploy its own build to stage: %q", fullStackApp)
	}

	// Promote the stage-only execution: production runs full-stack #2's
	// newer commit, so this is a rollback.
	if _, err := e.engine.Promote(ctx, bot.Internal("erin"), e.prog.ID, 1); err != nil {
		t.Fatal(err)
	}
	e.waitStep(3, bot.StepApproval, bot.StepWaiting)
	ex, _ := e.execution(3)
	wantNote := "would roll production back from " + newer[:7] + " (full-stack #2) to " + old[:7] + " (stage-only #1)"
	if ex.Rollback != wantNote {
		t.Errorf("rollback note = %q, want %q", ex.Rollback, wantNote)
	}
	_, err := e.engine.Approve(ctx, bot.Internal("frank"), e.prog.ID, 3)
	mustRule(t, err, "G", wantNote, "--rollback")
	if _, err := e.engine.ApproveRollback(ctx, bot.Internal("frank"), e.prog.ID, 3); err != nil {
		t.Fatal(err)
	}
	e.waitState(3, bot.ExecutionSucceeded)
	if got := e.repo.readRecord("production/app.txt"); got != stageOnlyApp {
		t.Errorf("production got %q, want the stage-only artifact %q", got, stageOnlyApp)
	}
}

// TestRollbackWithoutApprovalStops: with approval off, a rollback stops and
// waits for Approve Rollback.
func TestRollbackWithoutApprovalStops(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig("  full-stack: {branch: main, trigger: manual, approval: false}\n  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: false}\n"))
	ctx := context.Background()
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	e.repo.commit("newer", nil)
	if _, err := e.engine.StartManual(ctx, bot.Internal("dave"), e.prog.ID, bot.FullStack, 0); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	if _, err := e.engine.Promote(ctx, bot.Internal("erin"), e.prog.ID, 1); err != nil {
		t.Fatal(err)
	}
	e.waitStep(3, bot.StepApproval, bot.StepWaiting)
	ex, _ := e.execution(3)
	if !strings.Contains(ex.Message, "stopped: would roll production back") {
		t.Errorf("message %q", ex.Message)
	}
	if _, err := e.engine.ApproveRollback(ctx, bot.Internal("frank"), e.prog.ID, 3); err != nil {
		t.Fatal(err)
	}
	e.waitState(3, bot.ExecutionSucceeded)
}

// TestScheduleSurvivesRestart: a deploy scheduled in the future is kept
// across a restart and runs at its time (injected clock).
func TestScheduleSurvivesRestart(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n"))
	ctx := context.Background()
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	if _, err := e.engine.Promote(ctx, bot.Internal("erin"), e.prog.ID, 1); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepApproval, bot.StepWaiting)
	at := e.clock.Now().Add(time.Hour).Truncate(time.Second)
	if _, err := e.engine.Schedule(ctx, bot.Internal("erin"), e.prog.ID, 2, at); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.Approve(ctx, bot.Internal("frank"), e.prog.ID, 2); err != nil {
		t.Fatal(err)
	}
	e.waitStep(2, bot.StepSchedule, bot.StepWaiting)

	e.restart()
	e.clock.Advance(59 * time.Minute)
	if err := e.engine.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if ex, _ := e.execution(2); ex.State != bot.ExecutionWaiting || !ex.ScheduledAt.Equal(at) {
		t.Fatalf("before its time #2 is %s scheduled %v, want waiting for %v", ex.State, ex.ScheduledAt, at)
	}
	if e.repo.readRecord("production/app.txt") != "" {
		t.Fatal("deployed before its time")
	}
	e.clock.Advance(2 * time.Minute)
	if err := e.engine.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	if e.repo.readRecord("production/app.txt") == "" {
		t.Error("production not deployed at the scheduled time")
	}
}

// TestCancelKillsRunningCommand: cancel stops the build's whole process
// group within a second.
func TestCancelKillsRunningCommand(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	release := e.repo.hold("hold-build")
	defer release()
	e.push()
	e.waitStep(1, bot.StepBuild, bot.StepRunning)
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(e.repo.record, "build.pid"))
		pid = atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the build never wrote its pid")
	}
	if _, err := e.engine.Cancel(ctx, bot.Internal("gina"), e.prog.ID, 1); err != nil {
		t.Fatal(err)
	}
	cancelled := time.Now()
	for syscall.Kill(pid, 0) == nil {
		if time.Since(cancelled) > time.Second {
			t.Fatalf("the build (pid %d) still runs %v after cancel", pid, time.Since(cancelled))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ex := e.waitState(1, bot.ExecutionCancelled)
	if ex.Message != "cancelled by gina" {
		t.Errorf("message %q", ex.Message)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestJobDeliveredTwiceRunsOnce: the same job given to two workers at once
// (a redelivery) runs the build once.
func TestJobDeliveredTwiceRunsOnce(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig(splitPipelines))
	release := e.repo.hold("hold-build")
	e.push()
	e.waitStep(1, bot.StepBuild, bot.StepRunning)
	_, steps := e.execution(1)
	job := bot.Job{ExecutionID: steps[0].ExecutionID, Step: bot.StepBuild, Dispatch: "again"}
	for range 3 {
		if err := e.worker.Start(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	release()
	e.waitState(1, bot.ExecutionSucceeded)
	if got := e.repo.lines("builds.log"); len(got) != 1 {
		t.Errorf("builds = %q, want one", got)
	}
	if _, steps = e.execution(1); steps[0].Attempt != 1 {
		t.Errorf("build attempts = %d, want 1", steps[0].Attempt)
	}
}

// TestBuildMatchingNoFileFails names the globs that matched nothing.
func TestBuildMatchingNoFileFails(t *testing.T) {
	cfg := strings.Replace(sampleConfig(splitPipelines), "artifacts: [dist/**]", "artifacts: [dist/**, out/*.zip]", 1)
	e := newPipelineEnv(t, cfg)
	e.push()
	ex := e.waitState(1, bot.ExecutionFailed)
	if !strings.Contains(ex.Message, "out/*.zip") || strings.Contains(ex.Message, "dist/**") {
		t.Errorf("failure says %q; it must name out/*.zip (and only the globs that matched nothing)", ex.Message)
	}
}

// TestRerunAndVariables: re-run starts a new execution of the same pipeline
// at the same commit; env unset removes a set value.
func TestRerunAndVariables(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	sha := e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	e.repo.commit("later", nil)
	res, err := e.engine.Rerun(ctx, bot.Internal("hank"), e.prog.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Execution.Number != 2 || res.Execution.Commit != sha || res.Execution.Pipeline != bot.StageOnly {
		t.Fatalf("re-run started %+v", res.Execution)
	}
	e.waitState(2, bot.ExecutionSucceeded)
	if got := e.repo.lines("builds.log"); len(got) != 2 || field(got[1], 3) != sha {
		t.Errorf("builds = %q, want the re-run to build %s again", got, sha)
	}

	for _, step := range []struct {
		key, value string
		unset      bool
		want       map[string]string
	}{
		{"FEATURE_X", "on", false, map[string]string{"LOG_LEVEL": "debug", "FEATURE_X": "on"}},
		{"LOG_LEVEL", "warn", false, map[string]string{"LOG_LEVEL": "warn", "FEATURE_X": "on"}},
		{"LOG_LEVEL", "", true, map[string]string{"LOG_LEVEL": "debug", "FEATURE_X": "on"}},
	} {
		change := func() (string, error) {
			return e.engine.SetVariable(ctx, bot.Internal("hank"), e.prog.ID, bot.Stage, step.key, step.value)
		}
		if step.unset {
			change = func() (string, error) {
				return e.engine.UnsetVariable(ctx, bot.Internal("hank"), e.prog.ID, bot.Stage, step.key)
			}
		}
		if _, err := change(); err != nil {
			t.Fatal(err)
		}
		got, err := e.engine.Variables(ctx, e.prog.ID, bot.Stage)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("after %s=%q unset=%v (-want +got):\n%s", step.key, step.value, step.unset, diff)
		}
	}
	_, err = e.engine.SetVariable(ctx, bot.Internal("hank"), e.prog.ID, bot.Stage, "STAGEHAND_TOKEN", "x")
	var re *bot.RuleError
	if !errors.As(err, &re) {
		t.Errorf("setting a STAGEHAND_ variable: err = %v, want a refusal", err)
	}
}
