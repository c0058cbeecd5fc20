package githubapp_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

var renderUpdate = flag.Bool("update", false, "rewrite the golden files under testdata/render")

// GitHub's documented limits, written down here independently of the code.
const (
	ghMaxActions     = 3
	ghMaxLabel       = 20
	ghMaxDescription = 40
	ghMaxIdentifier  = 20
	ghMaxTitle       = 255
	ghMaxOutput      = 65535
	ghMaxAnnotations = 50
)

var (
	renderT0      = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	renderProgram = bot.Program{ID: 1, InstallationID: 7, Owner: "acme", Repo: "widgets"}
)

const (
	renderSHAStage   = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
	renderSHANew     = "abc1234def5678901234567890abcdef12345678"
	renderSHAFull    = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f"
	renderDigest     = "3b5d5c3712955042212316173ccf37be800b4fb1a8e7b3e1f2a0d9c8b7a6f5e4"
	renderRollback   = "would roll production back from abc1234 (full-stack #12) to 9f8e7d6 (stage-only #10)"
	renderDetailsURL = "https://stagehand.example.com/programs/acme/widgets/executions/"
)

func renderAt(d time.Duration) time.Time { return renderT0.Add(d) }

// renderStep describes one step: offsets from renderT0; end 0 means it
// has not finished; start -1 means it never started.
type renderStep struct {
	state      bot.StepState
	start, end time.Duration
	msg, log   string
}

// renderSteps builds the steps of an execution: the given ones first, in
// the pipeline's order, the rest pending.
func renderSteps(id int64, kind bot.PipelineKind, specs ...renderStep) []bot.Step {
	var out []bot.Step
	for i, name := range bot.StepsOf(kind) {
		s := bot.Step{ExecutionID: id, Name: name, State: bot.StepPending}
		if i < len(specs) {
			sp := specs[i]
			s.State, s.Message, s.LogTail = sp.state, sp.msg, sp.log
			if sp.start >= 0 {
				s.StartedAt = renderAt(sp.start)
				s.Attempt = 1
			}
			if sp.end > 0 {
				s.FinishedAt = renderAt(sp.end)
			}
		}
		out = append(out, s)
	}
	return out
}

func renderEvent(id int64, d time.Duration, actor, kind, detail string) bot.Event {
	return bot.Event{ExecutionID: id, At: renderAt(d), Actor: actor, Kind: bot.EventKind(kind), Detail: detail}
}

func renderExec(id int64, number int, kind bot.PipelineKind, sha string, st bot.ExecutionState, msg string) bot.Execution {
	return bot.Execution{
		ID: id, ProgramID: renderProgram.ID, Number: number, Pipeline: kind, Commit: sha, Branch: "main",
		State: st, Message: msg, Cause: bot.CausePush, TriggeredBy: "octocat", CreatedAt: renderT0,
	}
}

func renderInput(ex bot.Execution, steps []bot.Step, events ...bot.Event) githubapp.RenderInput {
	return githubapp.RenderInput{
		ExecutionDetail: bot.ExecutionDetail{Program: renderProgram, Execution: ex, Steps: steps, Events: events},
		DetailsURL:      fmt.Sprintf("%s%d", renderDetailsURL, ex.Number), Now: renderAt(5 * time.Minute),
	}
}

// renderSourceExec is stage-only #10, the source of the prod-only cases.
func renderSourceExec() *bot.Execution {
	src := renderExec(110, 10, bot.StageOnly, renderSHAStage, bot.ExecutionSucceeded, "succeeded")
	src.ArtifactDigest = renderDigest
	return &src
}

const renderTestLog = `=== RUN   TestSmoke/home
--- PASS: TestSmoke/home (0.41s)
=== RUN   TestSmoke/login
waiting for https://stage.example.com/login ...`

const renderBuildLog = "\x1b[1mgo build ./...\x1b[0m\n" +
	"# example.com/widgets\n" +
	"./main.go:12:2: undefined: server\n" +
	"the README says:\n" +
	"```sh\n" +
	"make dist\n" +
	"```\n" +
	"make: *** [Makefile:3: dist] Error 1\n"

// renderCases are the golden cases, one per thing a user sees.
func renderCases() map[string]githubapp.RenderInput {
	cases := map[string]githubapp.RenderInput{}

	// A push-triggered full-stack execution queued behind a stage-only one.
	{
		ex := renderExec(103, 3, bot.FullStack, renderSHANew, bot.ExecutionQueued, "queued: waiting for stage-only #2 (running) to end")
		cases["queued"] = renderInput(ex, nil, renderEvent(103, 0, "octocat", "triggered", "push to main"))
	}
	// A stage-only execution in its stage tests.
	{
		ex := renderExec(104, 4, bot.StageOnly, renderSHAStage, bot.ExecutionRunning, "stage-tests running")
		ex.StartedAt, ex.ArtifactDigest = renderT0, renderDigest
		steps := renderSteps(104, bot.StageOnly,
			renderStep{bot.StepSucceeded, 0, 65 * time.Second, "built 12 files", "ok"},
			renderStep{bot.StepSucceeded, 65 * time.Second, 130 * time.Second, "deployed", "deployed"},
			renderStep{bot.StepRunning, 130 * time.Second, 0, "running", renderTestLog},
		)
		cases["running"] = renderInput(ex, steps, renderEvent(104, 0, "octocat", "triggered", "push to main"))
	}
	// A failed build; its log has colours and a fence of its own.
	{
		ex := renderExec(105, 5, bot.StageOnly, renderSHANew, bot.ExecutionFailed, "build failed: exit status 2")
		ex.StartedAt, ex.FinishedAt = renderT0, renderAt(42*time.Second)
		steps := renderSteps(105, bot.StageOnly,
			renderStep{bot.StepFailed, 0, 42 * time.Second, "exit status 2", renderBuildLog},
			renderStep{bot.StepSkipped, -1, 0, "not run: the execution failed", ""},
			renderStep{bot.StepSkipped, -1, 0, "not run: the execution failed", ""},
		)
		cases["failed"] = renderInput(ex, steps, renderEvent(105, 0, "octocat", "triggered", "push to main"))
	}
	// A promotion waiting for approval that would roll production back.
	{
		ex := renderExec(113, 13, bot.ProdOnly, renderSHAStage, bot.ExecutionWaiting, "waiting for approval: "+renderRollback)
		ex.Cause, ex.TriggeredBy, ex.SourceID, ex.ArtifactDigest = bot.CausePromotion, "alice", 110, renderDigest
		ex.StartedAt, ex.Rollback = renderT0, renderRollback
		steps := renderSteps(113, bot.ProdOnly,
			renderStep{bot.StepSucceeded, 0, 8 * time.Second, "verified 12 files of stage-only #10", ""},
			renderStep{bot.StepWaiting, 8 * time.Second, 0, "waiting for approval: " + renderRollback + "; deploying needs Approve Rollback (/stagehand approve --rollback)", ""},
		)
		in := renderInput(ex, steps, renderEvent(113, 0, "alice", "promoted", "from stage-only #10"))
		in.Source = renderSourceExec()
		cases["approval-rollback"] = in
	}
	// A full-stack execution waiting for Promote to Prod.
	{
		ex := renderExec(107, 7, bot.FullStack, renderSHAFull, bot.ExecutionWaiting, "waiting for approval")
		ex.StartedAt, ex.ArtifactDigest = renderT0, renderDigest
		steps := renderSteps(107, bot.FullStack,
			renderStep{bot.StepSucceeded, 0, time.Minute, "built", ""},
			renderStep{bot.StepSucceeded, time.Minute, 2 * time.Minute, "deployed", ""},
			renderStep{bot.StepSucceeded, 2 * time.Minute, 3 * time.Minute, "passed", ""},
			renderStep{bot.StepWaiting, 3 * time.Minute, 0, "waiting for approval", ""},
		)
		cases["approval"] = renderInput(ex, steps, renderEvent(107, 0, "octocat", "triggered", "push to main"))
	}
	// The promoted prod-only execution deploying its source's artifacts,
	// in the check run that continues after its approval.
	{
		ex := renderExec(114, 14, bot.ProdOnly, renderSHAStage, bot.ExecutionRunning, "deploy-production running")
		ex.Cause, ex.TriggeredBy, ex.SourceID, ex.ArtifactDigest = bot.CausePromotion, "alice", 110, renderDigest
		ex.StartedAt = renderT0
		steps := renderSteps(114, bot.ProdOnly,
			renderStep{bot.StepSucceeded, 0, 8 * time.Second, "verified 12 files of stage-only #10", ""},
			renderStep{bot.StepSucceeded, 8 * time.Second, 3 * time.Minute, "approved by bob", ""},
			renderStep{bot.StepSucceeded, 3 * time.Minute, 3 * time.Minute, "no schedule: the pipeline is not scheduled", ""},
			renderStep{bot.StepRunning, 3 * time.Minute, 0, "running", "uploading 12 files to production\nswitching traffic"},
		)
		in := renderInput(ex, steps,
			renderEvent(114, 0, "alice", "promoted", "from stage-only #10"),
			renderEvent(114, 3*time.Minute, "bob", "approved", ""),
		)
		in.Source, in.Phase = renderSourceExec(), 1
		cases["promoted"] = in
	}
	// The latest successful stage-only execution: Promote Build.
	stageDone := func() githubapp.RenderInput {
		ex := renderExec(110, 10, bot.StageOnly, renderSHAStage, bot.ExecutionSucceeded, "succeeded")
		ex.StartedAt, ex.FinishedAt, ex.ArtifactDigest = renderT0, renderAt(4*time.Minute), renderDigest
		steps := renderSteps(110, bot.StageOnly,
			renderStep{bot.StepSucceeded, 0, time.Minute, "built 12 files", "ok"},
			renderStep{bot.StepSucceeded, time.Minute, 2 * time.Minute, "deployed", "ok"},
			renderStep{bot.StepSucceeded, 2 * time.Minute, 4 * time.Minute, "passed", "ok"},
		)
		in := renderInput(ex, steps, renderEvent(110, 0, "octocat", "triggered", "push to main"))
		in.LatestSuccessfulStageOnly, in.HasProdOnly = true, true
		return in
	}
	cases["stage-only-promote"] = stageDone()
	{
		in := stageDone()
		in.PromoteRequested, in.HasProdOnly = true, false
		cases["promote-requested-create"] = in
	}
	// A scheduled full-stack deploy, approved, waiting for its time.
	{
		ex := renderExec(115, 15, bot.FullStack, renderSHAFull, bot.ExecutionWaiting, "scheduled for 2026-03-03T07:00:00Z")
		ex.StartedAt, ex.ArtifactDigest, ex.ScheduledAt = renderT0, renderDigest, renderAt(22*time.Hour)
		steps := renderSteps(115, bot.FullStack,
			renderStep{bot.StepSucceeded, 0, time.Minute, "built", ""},
			renderStep{bot.StepSucceeded, time.Minute, 2 * time.Minute, "deployed", ""},
			renderStep{bot.StepSucceeded, 2 * time.Minute, 3 * time.Minute, "passed", ""},
			renderStep{bot.StepSucceeded, 3 * time.Minute, 50 * time.Minute, "approved by bob", ""},
			renderStep{bot.StepWaiting, 50 * time.Minute, 0, "scheduled for 2026-03-03T07:00:00Z", ""},
		)
		in := renderInput(ex, steps,
			renderEvent(115, 0, "octocat", "triggered", "push to main"),
			renderEvent(115, 50*time.Minute, "bob", "approved", ""),
			renderEvent(115, 52*time.Minute, "bob", "scheduled", "2026-03-03T07:00:00Z"),
		)
		in.Phase, in.Scheduled, in.Now = 1, true, renderAt(time.Hour)
		cases["schedule"] = in
	}
	// A queued execution superseded by a newer push (rule C).
	{
		ex := renderExec(116, 16, bot.StageOnly, renderSHAStage, bot.ExecutionSkipped, "superseded by abc1234")
		ex.FinishedAt = renderAt(time.Minute)
		cases["superseded"] = renderInput(ex, renderSteps(116, bot.StageOnly), renderEvent(116, 0, "octocat", "triggered", "push to main"))
	}
	// A full-stack execution rejected at approval.
	{
		ex := renderExec(117, 17, bot.FullStack, renderSHAFull, bot.ExecutionCancelled, "rejected by carol: stage tests are flaky")
		ex.StartedAt, ex.FinishedAt = renderT0, renderAt(10*time.Minute)
		steps := renderSteps(117, bot.FullStack,
			renderStep{bot.StepSucceeded, 0, time.Minute, "built", ""},
			renderStep{bot.StepSucceeded, time.Minute, 2 * time.Minute, "deployed", ""},
			renderStep{bot.StepSucceeded, 2 * time.Minute, 3 * time.Minute, "passed", ""},
			renderStep{bot.StepCancelled, 3 * time.Minute, 10 * time.Minute, "rejected by carol: stage tests are flaky", ""},
			renderStep{bot.StepSkipped, -1, 0, "not run: the execution cancelled", ""},
			renderStep{bot.StepSkipped, -1, 0, "not run: the execution cancelled", ""},
		)
		cases["rejected"] = renderInput(ex, steps,
			renderEvent(117, 0, "octocat", "triggered", "push to main"),
			renderEvent(117, 10*time.Minute, "carol", "rejected", "stage tests are flaky"),
		)
	}
	return cases
}

// renderGolden is a view as a reviewer reads it.
func renderGolden(v githubapp.CheckRunView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nhead_sha: %s\nexternal_id: %s\ndetails_url: %s\nstatus: %s\nconclusion: %s\ntitle: %s\n",
		v.Name, v.HeadSHA, v.ExternalID, v.DetailsURL, v.Status, v.Conclusion, v.Title)
	b.WriteString("actions:\n")
	for _, a := range v.Actions {
		fmt.Fprintf(&b, "- [%s] %s: %s\n", a.Identifier, a.Label, a.Description)
	}
	if len(v.Annotations) > 0 {
		b.WriteString("annotations:\n")
		for _, a := range v.Annotations {
			fmt.Fprintf(&b, "- %s:%d:%d %s %q: %s\n", a.GetPath(), a.GetStartLine(), a.GetStartColumn(), a.GetAnnotationLevel(), a.GetTitle(), a.GetMessage())
		}
	}
	b.WriteString("=============== summary ===============\n")
	b.WriteString(v.Summary)
	b.WriteString("=============== text ===============\n")
	if v.Text != "" {
		b.WriteString(v.Text + "\n")
	}
	return b.String()
}

func renderCheckGolden(t *testing.T, name string, v githubapp.CheckRunView) {
	t.Helper()
	got := renderGolden(v)
	path := filepath.Join("testdata", "render", name+".golden")
	if *renderUpdate {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot/githubapp -run Render -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got; -update rewrites it):\n%s", path, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	for name, in := range renderCases() {
		t.Run(name, func(t *testing.T) {
			v := githubapp.RenderCheckRun(in)
			renderCheckLimits(t, v)
			renderCheckGolden(t, name, v)
		})
	}
	t.Run("not-started", func(t *testing.T) {
		v := githubapp.NotStartedView(bot.FullStack, renderSHANew, renderPriority, renderDetailsURL)
		renderCheckLimits(t, v)
		renderCheckGolden(t, "not-started", v)
	})
	t.Run("config", func(t *testing.T) {
		v := githubapp.ConfigCheckRun(renderSHANew, bot.Diagnostics{
			{Line: 14, Column: 5, Message: `unknown key "deploy_cmd"`},
			{Line: 3, Column: 1, Message: "using full-stack together with stage-only/prod-only pipelines can roll production back", Severity: bot.SeverityWarning},
			{Line: 22, Column: 16, Message: "prod-only cannot have a trigger"},
		})
		renderCheckLimits(t, v)
		renderCheckGolden(t, "config", v)
	})
}

// renderShape is what the table test compares.
type renderShape struct {
	Status, Conclusion string
	Actions            []string // "identifier=Label"
	Gate               bool
}

func renderShapeOf(in githubapp.RenderInput) renderShape {
	v := githubapp.RenderCheckRun(in)
	s := renderShape{Status: v.Status, Conclusion: v.Conclusion, Gate: githubapp.Gate(in)}
	for _, a := range v.Actions {
		s.Actions = append(s.Actions, a.Identifier+"="+a.Label)
	}
	return s
}

func TestRenderStatesTable(t *testing.T) {
	cases := renderCases()
	with := func(name string, change func(*githubapp.RenderInput)) githubapp.RenderInput {
		in := cases[name]
		in.Steps = append([]bot.Step(nil), in.Steps...)
		change(&in)
		return in
	}
	tests := map[string]struct {
		in   githubapp.RenderInput
		want renderShape
	}{
		"queued":  {cases["queued"], renderShape{Status: "queued"}},
		"running": {cases["running"], renderShape{Status: "in_progress"}},
		"failed":  {cases["failed"], renderShape{Status: "completed", Conclusion: "failure"}},
		"full-stack approval": {cases["approval"], renderShape{Status: "completed", Conclusion: "action_required",
			Actions: []string{"approve=Promote to Prod", "reject=Reject"}, Gate: true}},
		"prod-only approval": {with("approval-rollback", func(in *githubapp.RenderInput) { in.Execution.Rollback = "" }),
			renderShape{Status: "completed", Conclusion: "action_required", Actions: []string{"approve=Approve", "reject=Reject"}, Gate: true}},
		"rollback approval": {cases["approval-rollback"], renderShape{Status: "completed", Conclusion: "action_required",
			Actions: []string{"approve-rollback=Approve Rollback", "reject=Reject"}, Gate: true}},
		"full-stack rollback approval": {with("approval", func(in *githubapp.RenderInput) { in.Execution.Rollback = renderRollback }),
			renderShape{Status: "completed", Conclusion: "action_required", Actions: []string{"approve-rollback=Approve Rollback", "reject=Reject"}, Gate: true}},
		"promoted running": {cases["promoted"], renderShape{Status: "in_progress"}},
		"schedule": {cases["schedule"], renderShape{Status: "completed", Conclusion: "action_required",
			Actions: []string{"deploy-now=Deploy Now"}, Gate: true}},
		"schedule without a time": {with("schedule", func(in *githubapp.RenderInput) { in.Execution.ScheduledAt = time.Time{} }),
			renderShape{Status: "completed", Conclusion: "action_required", Actions: []string{"deploy-now=Deploy Now"}, Gate: true}},
		"stage-only latest": {cases["stage-only-promote"], renderShape{Status: "completed", Conclusion: "success",
			Actions: []string{"promote=Promote Build"}, Gate: true}},
		"stage-only not latest": {with("stage-only-promote", func(in *githubapp.RenderInput) { in.LatestSuccessfulStageOnly = false }),
			renderShape{Status: "completed", Conclusion: "success"}},
		"stage-only not latest, promote requested": {with("stage-only-promote", func(in *githubapp.RenderInput) {
			in.LatestSuccessfulStageOnly, in.PromoteRequested = false, true
		}), renderShape{Status: "completed", Conclusion: "success"}},
		"promote requested with prod-only": {with("stage-only-promote", func(in *githubapp.RenderInput) { in.PromoteRequested = true }),
			renderShape{Status: "completed", Conclusion: "success", Actions: []string{"confirm=Confirm", "dismiss=Dismiss"}, Gate: true}},
		"promote requested without prod-only": {cases["promote-requested-create"], renderShape{Status: "completed", Conclusion: "success",
			Actions: []string{"create-promote=Create & Promote", "dismiss=Dismiss"}, Gate: true}},
		"full-stack succeeded": {with("approval", func(in *githubapp.RenderInput) {
			in.Execution.State = bot.ExecutionSucceeded
			for i := range in.Steps {
				in.Steps[i].State = bot.StepSucceeded
			}
			in.LatestSuccessfulStageOnly = true // not a stage-only execution: no Promote Build
		}), renderShape{Status: "completed", Conclusion: "success"}},
		"rejected":   {cases["rejected"], renderShape{Status: "completed", Conclusion: "cancelled"}},
		"superseded": {cases["superseded"], renderShape{Status: "completed", Conclusion: "skipped"}},
		"cancelled while running": {with("running", func(in *githubapp.RenderInput) {
			in.Execution.State, in.Execution.Message = bot.ExecutionCancelled, "cancelled by octocat"
			in.Steps[2].State, in.Steps[2].Message = bot.StepCancelled, "cancelled by octocat"
		}), renderShape{Status: "completed", Conclusion: "cancelled"}},
		// Between two updates the execution may still say running while its
		// approval step already waits: the step decides.
		"approval step waits, execution still running": {with("approval", func(in *githubapp.RenderInput) { in.Execution.State = bot.ExecutionRunning }),
			renderShape{Status: "completed", Conclusion: "action_required", Actions: []string{"approve=Promote to Prod", "reject=Reject"}, Gate: true}},
		"production deploy held by the calendar": {with("promoted", func(in *githubapp.RenderInput) {
			in.Execution.State = bot.ExecutionWaiting
			for i := range in.Steps {
				if in.Steps[i].Name == bot.StepDeployProduction {
					in.Steps[i].State, in.Steps[i].Message = bot.StepWaiting, renderHeldMessage
				}
			}
		}), renderShape{Status: "in_progress"}},
		"unknown state": {with("running", func(in *githubapp.RenderInput) { in.Execution.State = "exploded" }),
			renderShape{Status: "completed", Conclusion: "neutral"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			renderCheckLimits(t, githubapp.RenderCheckRun(tt.in))
			if diff := cmp.Diff(tt.want, renderShapeOf(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

const renderHeldMessage = "waiting: production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze; opens Mon 4 Jan 2027 09:00 Europe/Berlin (in 3 d 2 h)"

// TestRenderHeldByCalendar: the check run of a deploy held by its
// environment's windows or freezes says why and until when.
func TestRenderHeldByCalendar(t *testing.T) {
	in := renderCases()["promoted"]
	in.Steps = append([]bot.Step(nil), in.Steps...)
	in.Execution.State = bot.ExecutionWaiting
	for i := range in.Steps {
		if in.Steps[i].Name == bot.StepDeployProduction {
			in.Steps[i].State, in.Steps[i].Message = bot.StepWaiting, renderHeldMessage
		}
	}
	v := githubapp.RenderCheckRun(in)
	if want := "deploy-production waits: opens Mon 4 Jan 2027 09:00 Europe/Berlin (in 3 d 2 h)"; v.Title != want {
		t.Errorf("title = %q, want %q", v.Title, want)
	}
	if want := "⏸️ **deploy-production waits**: production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze; opens Mon 4 Jan 2027 09:00 Europe/Berlin (in 3 d 2 h). It starts by itself then"; !strings.Contains(v.Summary, want) {
		t.Errorf("summary lacks %q:\n%s", want, v.Summary)
	}
}

func TestRenderViewFields(t *testing.T) {
	in := renderCases()["promoted"]
	v := githubapp.RenderCheckRun(in)
	got := []string{v.Name, v.HeadSHA, v.ExternalID, v.DetailsURL, v.Title}
	want := []string{"stagehand/prod-only", renderSHAStage, "114", renderDetailsURL + "14", "deploy-production running"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, s := range []string{
		"Deploys the artifact set `3b5d5c371295` of stage-only #10 (`9f8e7d6`)",
		"**alice** promoted it (from stage-only #10)",
		"**bob** approved it",
		"| deploy-production | 🔄 running | 2m 00s |",
		"| artifact-preparation | ✅ succeeded | 8s |",
	} {
		if !strings.Contains(v.Summary, s) {
			t.Errorf("summary lacks %q:\n%s", s, v.Summary)
		}
	}

	// The rollback warning comes first.
	v = githubapp.RenderCheckRun(renderCases()["approval-rollback"])
	if !strings.HasPrefix(v.Summary, "> ⚠️ **This deploy "+renderRollback+".**") {
		t.Errorf("summary does not start with the rollback warning:\n%s", v.Summary)
	}

	// A log's own fence does not end the text's fence; colours are gone.
	v = githubapp.RenderCheckRun(renderCases()["failed"])
	if !strings.Contains(v.Text, "````text\n") || !strings.HasSuffix(v.Text, "\n````") || strings.Contains(v.Text, "\x1b") {
		t.Errorf("text is not fenced safely:\n%s", v.Text)
	}
	if v.Title != "build failed: exit status 2" {
		t.Errorf("title = %q", v.Title)
	}
}

func TestRenderNotStartedView(t *testing.T) {
	v := githubapp.NotStartedView(bot.FullStack, renderSHANew, renderPriority, "")
	got := renderShape{Status: v.Status, Conclusion: v.Conclusion}
	if diff := cmp.Diff(renderShape{Status: "completed", Conclusion: "skipped"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if v.Name != "stagehand/full-stack" || v.Title != "full-stack not started: stage-only has priority on main" {
		t.Errorf("name %q, title %q", v.Name, v.Title)
	}
}

func TestRenderActionIdentifiersFit(t *testing.T) {
	for _, id := range []string{githubapp.ActionPromote, githubapp.ActionConfirm, githubapp.ActionCreatePromote, githubapp.ActionDismiss,
		githubapp.ActionApprove, githubapp.ActionApproveRollback, githubapp.ActionReject, githubapp.ActionDeployNow} {
		if id == "" || len(id) > ghMaxIdentifier {
			t.Errorf("identifier %q: empty or over %d characters", id, ghMaxIdentifier)
		}
	}
}

// renderCheckLimits checks a view against GitHub's limits.
func renderCheckLimits(t *testing.T, v githubapp.CheckRunView) {
	t.Helper()
	if len(v.Title) > ghMaxTitle || strings.TrimSpace(v.Title) == "" {
		t.Errorf("title is empty or has %d bytes (max %d)", len(v.Title), ghMaxTitle)
	}
	for what, s := range map[string]string{"summary": v.Summary, "text": v.Text} {
		if len(s) > ghMaxOutput {
			t.Errorf("%s has %d bytes (max %d)", what, len(s), ghMaxOutput)
		}
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8", what)
		}
	}
	if v.Status != "completed" && len(v.Actions) > 0 {
		t.Errorf("status %s with %d actions: GitHub shows actions only on completed check runs", v.Status, len(v.Actions))
	}
	if (v.Status == "completed") != (v.Conclusion != "") {
		t.Errorf("status %q with conclusion %q", v.Status, v.Conclusion)
	}
	if len(v.Actions) > ghMaxActions {
		t.Errorf("%d actions (max %d)", len(v.Actions), ghMaxActions)
	}
	for _, a := range v.Actions {
		if n := utf8.RuneCountInString(a.Label); n == 0 || n > ghMaxLabel {
			t.Errorf("label %q: %d characters (max %d)", a.Label, n, ghMaxLabel)
		}
		if n := utf8.RuneCountInString(a.Description); n == 0 || n > ghMaxDescription {
			t.Errorf("description %q: %d characters (max %d)", a.Description, n, ghMaxDescription)
		}
		if n := utf8.RuneCountInString(a.Identifier); n == 0 || n > ghMaxIdentifier {
			t.Errorf("identifier %q: %d characters (max %d)", a.Identifier, n, ghMaxIdentifier)
		}
	}
	if len(v.Annotations) > ghMaxAnnotations {
		t.Errorf("%d annotations (max %d)", len(v.Annotations), ghMaxAnnotations)
	}
}

// renderBigLog is about size bytes of numbered lines.
func renderBigLog(size int, line string) (log, last string) {
	var b strings.Builder
	for i := 1; b.Len() < size; i++ {
		last = fmt.Sprintf("%06d %s", i, line)
		b.WriteString(last + "\n")
	}
	return b.String(), last
}

func TestRenderLimits(t *testing.T) {
	for _, tc := range []struct {
		name, line string
	}{
		{"ascii", "step output: compiling package example.com/widgets/internal/server"},
		{"multibyte", "ログ出力 — élan ✓ 🚀"},
		{"fences", "```"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, last := renderBigLog(200<<10, tc.line)
			for _, name := range []string{"running", "failed"} {
				in := renderCases()[name]
				in.Steps = append([]bot.Step(nil), in.Steps...)
				for i := range in.Steps {
					if in.Steps[i].State == bot.StepRunning || in.Steps[i].State == bot.StepFailed {
						in.Steps[i].LogTail = log
					}
				}
				v := githubapp.RenderCheckRun(in)
				renderCheckLimits(t, v)
				body, ok := strings.CutSuffix(v.Text, "\n```")
				if tc.name == "fences" {
					body, ok = strings.CutSuffix(v.Text, "\n````")
				}
				if !ok || !strings.HasSuffix(body, "\n"+last) {
					t.Errorf("%s: text does not end with the log's last line %q: ...%q", name, last, v.Text[max(0, len(v.Text)-200):])
				}
				if !strings.Contains(v.Text, "(truncated") {
					t.Errorf("%s: text does not say it is truncated", name)
				}
				// The kept part starts at a whole line.
				_, kept, _ := strings.Cut(v.Text, "text\n")
				if first, _, _ := strings.Cut(kept, "\n"); !strings.HasSuffix(first, tc.line) || len(first) != len(last) {
					t.Errorf("%s: the kept log starts mid-line: %q", name, first)
				}
				if len(v.Text) < ghMaxOutput-1000 {
					t.Errorf("%s: text has only %d bytes; the limit is %d", name, len(v.Text), ghMaxOutput)
				}
			}
		})
	}

	t.Run("huge messages and many events", func(t *testing.T) {
		in := renderCases()["failed"]
		in.Steps = append([]bot.Step(nil), in.Steps...)
		huge := strings.Repeat("error: something went wrong — ", 5000)
		in.Steps[0].Message = huge
		in.Execution.Message = "build failed: " + huge
		for i := range 2000 {
			in.Events = append(in.Events, bot.Event{ExecutionID: 105, At: renderAt(time.Duration(i) * time.Second), Actor: "octocat", Kind: "scheduled", Detail: huge[:500]})
		}
		v := githubapp.RenderCheckRun(in)
		renderCheckLimits(t, v)
		if !strings.HasPrefix(v.Title, "build failed: error: something went wrong") {
			t.Errorf("title = %q", v.Title)
		}
		if !strings.HasSuffix(v.Summary, "(truncated)") {
			t.Errorf("summary does not say it is truncated: ...%q", v.Summary[max(0, len(v.Summary)-100):])
		}
	})
}

func TestRenderConfigCheckRun(t *testing.T) {
	var problems bot.Diagnostics
	for i := range 60 {
		problems = append(problems, bot.Diagnostic{Line: 60 - i, Column: 3, Message: fmt.Sprintf("problem %d", 60-i), Severity: renderSeverity(i%6 == 0)})
	}
	v := githubapp.ConfigCheckRun(renderSHANew, problems)
	renderCheckLimits(t, v)
	if v.Name != "stagehand/config" || v.HeadSHA != renderSHANew || v.Status != "completed" || v.Conclusion != "failure" {
		t.Errorf("name %q, sha %q, status %q, conclusion %q", v.Name, v.HeadSHA, v.Status, v.Conclusion)
	}
	if len(v.Annotations) != 50 {
		t.Fatalf("%d annotations, want 50", len(v.Annotations))
	}
	if !strings.Contains(v.Summary, "10 more problems are not annotated") {
		t.Errorf("summary does not say how many problems are not annotated:\n%s", v.Summary)
	}
	// Every error is annotated before any warning; each at its line.
	var levels []string
	for _, a := range v.Annotations {
		levels = append(levels, a.GetAnnotationLevel())
		if a.GetPath() != ".github/stagehand.yml" || a.GetStartLine() != a.GetEndLine() || a.GetMessage() != fmt.Sprintf("problem %d", a.GetStartLine()) {
			t.Errorf("annotation %s:%d-%d %q", a.GetPath(), a.GetStartLine(), a.GetEndLine(), a.GetMessage())
		}
	}
	want := append(make([]string, 0, 50), strings.Split(strings.TrimSuffix(strings.Repeat("failure,", 50), ","), ",")...)
	if diff := cmp.Diff(want, levels); diff != "" {
		t.Errorf("levels (-want +got):\n%s", diff)
	}
	if !strings.Contains(v.Title, "50 errors, 10 warnings") {
		t.Errorf("title = %q", v.Title)
	}

	v = githubapp.ConfigCheckRun(renderSHANew, bot.Diagnostics{{Line: 3, Column: 1, Message: "mixing pipelines", Severity: bot.SeverityWarning}})
	if v.Conclusion != "neutral" || len(v.Annotations) != 1 || v.Annotations[0].GetAnnotationLevel() != "warning" {
		t.Errorf("warnings only: conclusion %q, %d annotations", v.Conclusion, len(v.Annotations))
	}
	if v = githubapp.ConfigCheckRun(renderSHANew, nil); v.Conclusion != "success" || len(v.Annotations) != 0 {
		t.Errorf("no problems: conclusion %q, %d annotations", v.Conclusion, len(v.Annotations))
	}
}

// renderSeverity is a warning when warning is set, else an error.
func renderSeverity(warning bool) bot.Severity {
	if warning {
		return bot.SeverityWarning
	}
	return bot.SeverityError
}

// renderPriority is rule A's reason not to start full-stack on main:
// "full-stack not started: stage-only has priority on main".
var renderPriority = bot.TriggerReason{Code: bot.ReasonPriority, Pipeline: bot.FullStack, Branch: "main"}

// TestRenderPolicyElsewhereWarnings: the neutral check run of a side
// branch's file lists and annotates the file's warnings; without warnings it
// has no annotation.
func TestRenderPolicyElsewhereWarnings(t *testing.T) {
	v := githubapp.PolicyElsewhereCheckRun(renderSHANew, "feature", "main", nil)
	renderCheckLimits(t, v)
	if v.Name != "stagehand/config" || v.Conclusion != "neutral" || len(v.Annotations) != 0 || !strings.Contains(v.Title, "default branch, main") {
		t.Errorf("without warnings: name %q, conclusion %q, title %q, %d annotations", v.Name, v.Conclusion, v.Title, len(v.Annotations))
	}
	warn := bot.Diagnostic{Path: ".github/stagehand.yml", Line: 7, Column: 3, Message: "pipelines.full-stack: not recommended", Severity: bot.SeverityWarning}
	v = githubapp.PolicyElsewhereCheckRun(renderSHANew, "feature", "main", bot.Diagnostics{warn})
	renderCheckLimits(t, v)
	if v.Conclusion != "neutral" || len(v.Annotations) != 1 {
		t.Fatalf("with a warning: conclusion %q, %d annotations", v.Conclusion, len(v.Annotations))
	}
	a := v.Annotations[0]
	if a.GetAnnotationLevel() != "warning" || a.GetStartLine() != 7 || a.GetStartColumn() != 3 || a.GetMessage() != warn.Message {
		t.Errorf("annotation = %s %d:%d %q", a.GetAnnotationLevel(), a.GetStartLine(), a.GetStartColumn(), a.GetMessage())
	}
	if !strings.Contains(v.Summary, "`.github/stagehand.yml:7:3` warning: pipelines.full-stack: not recommended") {
		t.Errorf("summary does not list the warning:\n%s", v.Summary)
	}
}
