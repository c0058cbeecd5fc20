package githubapp

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// CheckRunView is everything Stagehand sends for one check run.
type CheckRunView struct {
	Name       string // "stagehand/<pipeline>"
	HeadSHA    string
	ExternalID string // the execution id, decimal
	DetailsURL string
	Status     string // queued | in_progress | completed
	// Conclusion is set when Status is completed: success | failure |
	// cancelled | skipped | action_required | neutral.
	Conclusion           string
	Title, Summary, Text string
	// Actions are set only with Status completed: GitHub shows action
	// buttons only on completed check runs.
	Actions []*github.CheckRunAction
	// Annotations point at lines of .github/stagehand.yml (ConfigCheckRun
	// only); at most 50, GitHub's limit per request.
	Annotations []*github.CheckRunAnnotation
}

// RenderInput is what the reporter knows about an execution.
type RenderInput struct {
	// The execution, its program, steps, events and source (prod-only: the
	// stage-only execution it promotes).
	bot.ExecutionDetail
	// Phase is 0 for the first check run of the execution; a gate completes
	// phase N with action_required and phase N+1 continues.
	Phase int
	// LatestSuccessfulStageOnly: this succeeded stage-only execution is the
	// latest successful one of its program, so it offers Promote Build
	// (rule D).
	LatestSuccessfulStageOnly bool
	// HasProdOnly: the program has a prod-only pipeline (Confirm), or not
	// yet (Create & Promote).
	HasProdOnly bool
	// PromoteRequested: someone clicked Promote Build; the check run asks
	// for confirmation (Confirm or Create & Promote, and Dismiss).
	PromoteRequested bool
	// RestorePin: production runs a restored build ("pinned by restore
	// of #N"); promoting a build older than the one rolled back from asks
	// for an extra confirmation.
	RestorePin bot.RestorePin
	// Scheduled: the pipeline is scheduled (scheduled: true). The Deploy
	// Now button itself appears whenever the schedule step waits.
	Scheduled bool
	// RequiredApprovals is the production quorum the execution runs
	// under (approvers.required; 0 or 1: one approval).
	RequiredApprovals int
	// BreakGlassOff: production forbids break-glass overrides
	// (break_glass: false), so a held deploy's check run does not offer
	// one.
	BreakGlassOff bool
	DetailsURL    string
	Now           time.Time // for the durations of running and waiting steps
}

// Identifiers of the check-run buttons (at most 20 characters each). The
// handler of check_run.requested_action maps them back.
const (
	ActionPromote         = "promote"
	ActionConfirm         = "confirm"
	ActionCreatePromote   = "create-promote"
	ActionDismiss         = "dismiss"
	ActionApprove         = "approve"
	ActionApproveRollback = "approve-rollback"
	ActionReject          = "reject"
	ActionDeployNow       = "deploy-now"
)

// Check-run statuses and conclusions Stagehand sends.
const (
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"

	ConclusionSuccess        = "success"
	ConclusionFailure        = "failure"
	ConclusionCancelled      = "cancelled"
	ConclusionSkipped        = "skipped"
	ConclusionActionRequired = "action_required"
	ConclusionNeutral        = "neutral"
)

// GitHub's limits for check runs, enforced by renderLimits only.
const (
	renderMaxActions     = 3
	renderMaxLabel       = 20    // characters
	renderMaxDescription = 40    // characters
	renderMaxIdentifier  = 20    // characters
	renderMaxTitle       = 255   // bytes (GitHub documents no limit; stay safe)
	renderMaxOutput      = 65535 // bytes, for summary and for text
	renderMaxAnnotations = 50    // per request
	renderMaxEvents      = 20    // shown in the activity list
	renderShortTitle     = 100   // runes of a message quoted in a title
)

var (
	renderButtonPromote         = github.CheckRunAction{Label: "Promote Build", Description: "Deploy these artifacts to production", Identifier: ActionPromote}
	renderButtonConfirm         = github.CheckRunAction{Label: "Confirm", Description: "Start prod-only with these artifacts", Identifier: ActionConfirm}
	renderButtonCreatePromote   = github.CheckRunAction{Label: "Create & Promote", Description: "Create default prod-only and promote", Identifier: ActionCreatePromote}
	renderButtonDismiss         = github.CheckRunAction{Label: "Dismiss", Description: "Do not promote now", Identifier: ActionDismiss}
	renderButtonPromoteToProd   = github.CheckRunAction{Label: "Promote to Prod", Description: "Approve the production deploy", Identifier: ActionApprove}
	renderButtonApprove         = github.CheckRunAction{Label: "Approve", Description: "Approve the production deploy", Identifier: ActionApprove}
	renderButtonApproveRollback = github.CheckRunAction{Label: "Approve Rollback", Description: "Deploy although production rolls back", Identifier: ActionApproveRollback}
	renderButtonReject          = github.CheckRunAction{Label: "Reject", Description: "End this execution as cancelled", Identifier: ActionReject}
	renderButtonDeployNow       = github.CheckRunAction{Label: "Deploy Now", Description: "Deploy to production now, not later", Identifier: ActionDeployNow}
)

// ButtonIdentifiers are the identifiers of every button a check run may
// show: the webhook room acts on each of them.
func ButtonIdentifiers() []string {
	var ids []string
	for _, b := range []github.CheckRunAction{renderButtonPromote, renderButtonConfirm, renderButtonCreatePromote, renderButtonDismiss,
		renderButtonPromoteToProd, renderButtonApprove, renderButtonApproveRollback, renderButtonReject, renderButtonDeployNow} {
		if !slices.Contains(ids, b.Identifier) {
			ids = append(ids, b.Identifier)
		}
	}
	return ids
}

// renderPhase is what a check run shows of an execution.
type renderPhase int

const (
	renderOther renderPhase = iota
	renderQueued
	renderRunning
	renderApproval
	renderSchedule
	renderHeld // a deploy waiting for its environment's deploy windows or the end of a freeze
	renderSucceeded
	renderFailed
	renderCancelled
	renderSkipped
)

// renderClassify decides what the execution shows. The waiting step, not
// the execution's state alone, tells a gate apart, so a check run is right
// even when it is rendered between the two updates.
func renderClassify(ex bot.Execution, cur *bot.Step) renderPhase {
	switch ex.State {
	case bot.ExecutionQueued:
		return renderQueued
	case bot.ExecutionRunning, bot.ExecutionWaiting:
		if cur != nil && cur.State == bot.StepWaiting {
			switch bot.KindOf(cur.Name).Gate {
			case bot.GateApproval:
				return renderApproval
			case bot.GateSchedule:
				return renderSchedule
			}
			if bot.KindOf(cur.Name).Deploy {
				return renderHeld
			}
		}
		return renderRunning
	case bot.ExecutionSucceeded:
		return renderSucceeded
	case bot.ExecutionFailed:
		return renderFailed
	case bot.ExecutionCancelled:
		return renderCancelled
	case bot.ExecutionSkipped:
		return renderSkipped
	}
	return renderOther
}

// Gate reports whether the execution currently sits at a gate: its
// approval or schedule step waits, or it is a succeeded stage-only
// execution offering Promote Build (or its confirmation). The current
// phase's check run is then completed with action_required (success for
// the stage-only execution) and carries the buttons; when the execution
// goes on past an approval or schedule gate, phase N+1 continues it.
func Gate(in RenderInput) bool {
	steps := renderOrder(in.Execution.Pipeline, in.Steps)
	switch renderClassify(in.Execution, renderCurrent(steps)) {
	case renderApproval, renderSchedule:
		return true
	case renderSucceeded:
		return in.Execution.Pipeline == bot.StageOnly && in.LatestSuccessfulStageOnly
	}
	return false
}

// RenderCheckRun turns an execution into the check run GitHub shows. The
// result always fits GitHub's limits.
func RenderCheckRun(in RenderInput) CheckRunView {
	ex := in.Execution
	steps := renderOrder(ex.Pipeline, in.Steps)
	cur := renderCurrent(steps)
	phase := renderClassify(ex, cur)
	v := CheckRunView{
		Name:       "stagehand/" + string(ex.Pipeline),
		HeadSHA:    ex.Commit,
		ExternalID: strconv.FormatInt(ex.ID, 10),
		DetailsURL: in.DetailsURL,
		Status:     StatusCompleted,
	}
	var intro []string // the state paragraph(s) of the summary
	var logStep *bot.Step
	n := ex.Number
	switch phase {
	case renderQueued:
		v.Status = StatusQueued
		v.Title = renderPrefixed("queued", ex.Message)
		intro = append(intro, "⏳ "+renderSentence(renderPrefixed("Queued", strings.TrimPrefix(renderInline(ex.Message), "queued")))+" It starts by itself as soon as it may run.")
	case renderRunning:
		v.Status = StatusInProgress
		v.Title = cmp.Or(ex.Message, "running")
		if cur != nil && cur.State == bot.StepRunning {
			v.Title = string(cur.Name) + " running"
			logStep = cur
			p := "🔄 **" + string(cur.Name) + "** is running."
			if strings.Contains(cur.Message, "again") || strings.Contains(cur.Message, "handed back") {
				p += " " + renderSentence(renderInline(cur.Message))
			}
			intro = append(intro, p)
		} else {
			intro = append(intro, "🔄 "+renderSentence(renderInline(cmp.Or(ex.Message, "running"))))
		}
	case renderApproval:
		v.Conclusion = ConclusionActionRequired
		approve := renderButtonApprove
		if ex.Pipeline == bot.FullStack {
			approve = renderButtonPromoteToProd
		}
		if ex.Rollback != "" {
			v.Title = "waiting for Approve Rollback: this deploy would roll production back"
			intro = append(intro, fmt.Sprintf("**Approve Rollback** deploys commit `%s` to production anyway (or comment `/stagehand approve %d --rollback`); **Reject** ends this execution as cancelled (`/stagehand reject %d [reason]`).", bot.ShortSHA(ex.Commit), n, n))
			approve = renderButtonApproveRollback
		} else {
			v.Title = "waiting for approval to deploy " + bot.ShortSHA(ex.Commit) + " to production"
			intro = append(intro, fmt.Sprintf("⏸️ Waiting for approval. **%s** deploys commit `%s` to production (or comment `/stagehand approve %d`); **Reject** ends this execution as cancelled (`/stagehand reject %d [reason]`).", approve.Label, bot.ShortSHA(ex.Commit), n, n))
		}
		if q, ok := renderQuorumState(in); ok {
			v.Title += ": " + q.String()
			intro = append(intro, renderQuorum(q))
		}
		if in.Scheduled {
			intro = append(intro, fmt.Sprintf("The pipeline is scheduled: after approval the deploy waits for its time (`/stagehand schedule <RFC 3339 time> %d`, or **Deploy Now**).", n))
		}
		v.Actions = []*github.CheckRunAction{&approve, &renderButtonReject}
		logStep = cur
	case renderSchedule:
		v.Conclusion = ConclusionActionRequired
		if ex.ScheduledAt.IsZero() {
			v.Title = "waiting for a deploy time: schedule it or Deploy Now"
			intro = append(intro, fmt.Sprintf("⏰ The production deploy waits for a time: comment `/stagehand schedule <RFC 3339 time> %d`, or click **Deploy Now**.", n))
		} else {
			at := renderTime(ex.ScheduledAt)
			v.Title = "scheduled: deploys to production at " + at
			p := fmt.Sprintf("⏰ The production deploy is scheduled for **%s**", at)
			if !in.Now.IsZero() && ex.ScheduledAt.After(in.Now) {
				p += " (in " + renderDuration(ex.ScheduledAt.Sub(in.Now)) + ")"
			}
			intro = append(intro, p+fmt.Sprintf(". **Deploy Now** deploys at once; `/stagehand schedule <RFC 3339 time> %d` changes the time.", n))
		}
		v.Actions = []*github.CheckRunAction{&renderButtonDeployNow}
	case renderHeld:
		// Nothing to click: it starts by itself when the calendar opens.
		v.Status = StatusInProgress
		why := strings.TrimPrefix(cur.Message, "waiting: ")
		v.Title = renderShort(string(cur.Name) + " waits: " + why)
		if i := strings.LastIndex(why, "; "); i >= 0 {
			v.Title = renderShort(string(cur.Name) + " waits: " + why[i+2:])
		}
		intro = append(intro, "⏸️ **"+string(cur.Name)+" waits**: "+renderSentence(renderInline(why))+" It starts by itself then; the execution holds its environments meanwhile.")
		intro = append(intro, renderBreakGlass(in))
	case renderSucceeded:
		v.Conclusion = ConclusionSuccess
		switch {
		case ex.Pipeline != bot.StageOnly:
			v.Title = "deployed to production"
			intro = append(intro, fmt.Sprintf("✅ Succeeded: commit `%s` runs on production.", bot.ShortSHA(ex.Commit)))
		case !in.LatestSuccessfulStageOnly:
			v.Title = "succeeded on stage"
			intro = append(intro, "✅ Succeeded on stage. Promote Build is offered only on the latest successful stage-only execution, and a newer one has succeeded since.")
		case !in.PromoteRequested:
			v.Title = "succeeded on stage: ready to promote"
			intro = append(intro, fmt.Sprintf("✅ Succeeded on stage. **Promote Build** deploys exactly these artifacts to production through the prod-only pipeline, without rebuilding (or comment `/stagehand promote %d`).", n))
			v.Actions = []*github.CheckRunAction{&renderButtonPromote}
		case in.HasProdOnly && in.RestorePin.OlderThanRolledBack(n):
			v.Title = "older than the build rolled back from: Confirm or Dismiss"
			intro = append(intro, fmt.Sprintf("⚠️ Production is %s. This build, #%d, is **older than #%d, the build production was rolled back from**: confirm only if you mean to deploy an older build. **Confirm** starts a prod-only execution that deploys exactly these artifacts to production; **Dismiss** promotes nothing.", in.RestorePin, n, in.RestorePin.From))
			v.Actions = []*github.CheckRunAction{&renderButtonConfirm, &renderButtonDismiss}
		case in.HasProdOnly:
			v.Title = "promote to production? Confirm or Dismiss"
			intro = append(intro, "❔ Promotion requested. **Confirm** starts a prod-only execution that deploys exactly these artifacts to production; **Dismiss** promotes nothing.")
			v.Actions = []*github.CheckRunAction{&renderButtonConfirm, &renderButtonDismiss}
		default:
			v.Title = "no prod-only pipeline yet: Create & Promote or Dismiss"
			intro = append(intro, "❔ Promotion requested, but this program has no prod-only pipeline yet. **Create & Promote** creates one with the default settings (approval on, no schedule) and starts it with these artifacts; **Dismiss** creates and promotes nothing. To choose other settings, add `prod-only` to `"+bot.ConfigPath+"` first.")
			v.Actions = []*github.CheckRunAction{&renderButtonCreatePromote, &renderButtonDismiss}
		}
		if in.RestorePin.Pinned() && !strings.Contains(strings.Join(intro, "\n"), in.RestorePin.String()) {
			intro = append(intro, "📌 Production is "+in.RestorePin.String()+".")
		}
	case renderFailed:
		v.Conclusion = ConclusionFailure
		failed := renderFind(steps, bot.StepFailed)
		if failed != nil {
			logStep = failed
			v.Title = renderPrefixed(string(failed.Name)+" failed", renderShort(failed.Message))
			intro = append(intro, "❌ **"+string(failed.Name)+" failed**"+renderQuoted(failed.Message))
		} else {
			v.Title = renderPrefixed("failed", renderShort(ex.Message))
			intro = append(intro, "❌ **Failed**"+renderQuoted(ex.Message))
		}
	case renderCancelled:
		v.Conclusion = ConclusionCancelled
		v.Title = renderPrefixed("cancelled", renderShort(ex.Message))
		p := "⏹️ **Cancelled**" + renderQuoted(ex.Message)
		if renderDeployedStage(steps) {
			p += "\n\nWhat was deployed to stage stays."
		}
		intro = append(intro, p)
		logStep = renderFind(steps, bot.StepCancelled)
	case renderSkipped:
		v.Conclusion = ConclusionSkipped
		v.Title = renderPrefixed("skipped", renderShort(ex.Message))
		p := "⏭️ **Skipped**" + renderQuoted(ex.Message)
		if strings.HasPrefix(ex.Message, "superseded") {
			p += "\n\nA newer push took this queued execution's place before it could start: one queued execution per pipeline, the newest commit wins."
		}
		intro = append(intro, p)
	default:
		v.Conclusion = ConclusionNeutral
		v.Title = cmp.Or(renderShort(ex.Message), string(ex.State))
		intro = append(intro, renderSentence(renderInline(cmp.Or(ex.Message, string(ex.State)))))
	}

	v.Summary = renderSummary(in, steps, phase, intro)
	if logStep != nil && strings.TrimSpace(logStep.LogTail) != "" {
		v.Text = renderLog(logStep)
	}
	renderLimits(&v)
	return v
}

// NotStartedView renders the check run of a pipeline that a push did not
// start (rule A): completed, skipped, with the reason in words (for example
// "full-stack not started: stage-only has priority on main") as its title.
// An invalid configuration gets ConfigCheckRun instead.
func NotStartedView(pipeline bot.PipelineKind, sha string, why bot.TriggerReason, detailsURL string) CheckRunView {
	reason := cmp.Or(strings.TrimSpace(why.String()), string(pipeline)+" not started")
	v := CheckRunView{
		Name:       "stagehand/" + string(pipeline),
		HeadSHA:    sha,
		DetailsURL: detailsURL,
		Status:     StatusCompleted,
		Conclusion: ConclusionSkipped,
		Title:      renderShort(reason),
		Summary:    fmt.Sprintf("⏭️ No %s execution started for `%s`%s\n", pipeline, bot.ShortSHA(sha), renderQuoted(reason)),
	}
	renderLimits(&v)
	return v
}

// renderOrder sorts steps in their pipeline's order; a step the
// execution does not have yet is shown pending.
func renderOrder(kind bot.PipelineKind, steps []bot.Step) []bot.Step {
	order := bot.StepsOf(kind)
	idx := func(n bot.StepName) int {
		if i := slices.Index(order, n); i >= 0 {
			return i
		}
		return len(order)
	}
	out := slices.Clone(steps)
	for _, n := range order {
		if !slices.ContainsFunc(out, func(s bot.Step) bool { return s.Name == n }) {
			out = append(out, bot.Step{Name: n, State: bot.StepPending})
		}
	}
	slices.SortStableFunc(out, func(a, b bot.Step) int { return cmp.Compare(idx(a.Name), idx(b.Name)) })
	return out
}

// renderCurrent is the first step that has not passed, or nil.
func renderCurrent(steps []bot.Step) *bot.Step {
	for i := range steps {
		if steps[i].State != bot.StepSucceeded && steps[i].State != bot.StepSkipped {
			return &steps[i]
		}
	}
	return nil
}

func renderFind(steps []bot.Step, st bot.StepState) *bot.Step {
	for i := range steps {
		if steps[i].State == st {
			return &steps[i]
		}
	}
	return nil
}

func renderDeployedStage(steps []bot.Step) bool {
	for _, s := range steps {
		if k := bot.KindOf(s.Name); k.Deploy && k.Environment == bot.Stage && s.State == bot.StepSucceeded {
			return true
		}
	}
	return false
}
