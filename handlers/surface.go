package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/ghapp"
)

// InteractAPI is what the handlers of clicks and comments ask of GitHub.
type InteractAPI interface {
	CreateComment(ctx context.Context, inst int64, owner, repo string, issue int, body string) (int64, error)
	React(ctx context.Context, inst int64, owner, repo string, commentID int64, content string) error
	Permission(ctx context.Context, inst int64, owner, repo, user string) (string, error)
	IsTeamMember(ctx context.Context, inst int64, org, team, user string) (bool, error)
}

// refusal is a click or command Stagehand would not carry out: it is
// answered, logged and counted, and changes nothing.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// refuse records a refusal: logged and counted.
func (h *Webhooks) refuse(ctx context.Context, who, what string, err error) {
	h.Logger.InfoContext(ctx, "refused", "sender", who, "action", what, "reason", err.Error())
	if h.Refusals != nil {
		h.Refusals(what)
	}
}

// writeLevels are the repository permissions that may use Stagehand.
var writeLevels = map[string]bool{"admin": true, "maintain": true, "write": true}

// authorize checks, at the moment of the click or command, that user has
// write permission on the repository, and for approvals that they are in
// the configured approvers (SPEC §5). Self-approval is the engine's check.
func (h *Webhooks) authorize(ctx context.Context, prog bot.Program, user string, approval bool) error {
	perm, err := h.GitHub.Permission(ctx, prog.InstallationID, prog.Owner, prog.Repo, user)
	if err != nil {
		return fmt.Errorf("checking %s's permission on %s: %w", user, prog.FullName(), err)
	}
	if !writeLevels[perm] {
		return &refusal{fmt.Sprintf("@%s has %s permission on %s; Stagehand needs write or higher", user, perm, prog.FullName())}
	}
	if !approval {
		return nil
	}
	cfg := h.latestConfig(ctx, prog)
	if cfg == nil || cfg.Production == nil {
		return nil
	}
	a := cfg.Production.Approvers
	if len(a.Users) == 0 && len(a.Teams) == 0 {
		return nil
	}
	for _, u := range a.Users {
		if strings.EqualFold(u, user) {
			return nil
		}
	}
	for _, t := range a.Teams {
		org, slug, _ := strings.Cut(t, "/")
		ok, err := h.GitHub.IsTeamMember(ctx, prog.InstallationID, org, slug, user)
		if err != nil {
			return fmt.Errorf("checking whether %s is in team %s: %w", user, t, err)
		}
		if ok {
			return nil
		}
	}
	return &refusal{fmt.Sprintf("@%s is not one of the production approvers (%s)", user, strings.Join(append(append([]string{}, a.Users...), a.Teams...), ", "))}
}

// latestConfig is the configuration of the program's newest execution.
func (h *Webhooks) latestConfig(ctx context.Context, prog bot.Program) *bot.Config {
	var raw []byte
	_ = h.Store.View(ctx, func(tx bot.Tx) error {
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID, Limit: 1})
		if err == nil && len(es) == 1 {
			raw = es[0].Config
		}
		return err
	})
	if raw == nil {
		return nil
	}
	cfg, err := h.ParseConfig(raw)
	if err != nil {
		return nil
	}
	return cfg
}

// checkRun handles clicks on check-run buttons and re-run requests.
func (h *Webhooks) checkRun(ctx context.Context, d delivery, ev *github.CheckRunEvent) error {
	if ev.GetCheckRun().GetApp().GetID() != h.AppID || h.Commands == nil {
		return h.record(ctx, d, "check run of another app ignored")
	}
	if ev.GetSender().GetType() == "Bot" {
		return h.record(ctx, d, "check run event sent by a bot ignored")
	}
	id, err := strconv.ParseInt(ev.GetCheckRun().GetExternalID(), 10, 64)
	if err != nil {
		return h.record(ctx, d, "check run without a Stagehand execution ignored")
	}
	if done, err := h.processed(ctx, d.guid); err != nil || done {
		return err
	}
	var ex bot.Execution
	var prog bot.Program
	err = h.Store.View(ctx, func(tx bot.Tx) error {
		var err error
		if ex, err = tx.Execution(ctx, id); err != nil {
			return err
		}
		prog, err = tx.Program(ctx, ex.ProgramID)
		return err
	})
	if errors.Is(err, bot.ErrNotFound) {
		return h.record(ctx, d, "check run of an unknown execution ignored")
	}
	if err != nil {
		return err
	}
	user := ev.GetSender().GetLogin()
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, prog.FullName()), slog.Int(bot.LogExecution, ex.Number))
	action := ev.GetAction()
	if action == "requested_action" {
		action = ev.GetRequestedAction().Identifier
	}
	approval := action == ghapp.ActionApprove || action == ghapp.ActionApproveRollback || action == ghapp.ActionReject
	if err := h.authorize(ctx, prog, user, approval); err != nil {
		return h.answerClick(ctx, d, ex, user, action, err)
	}
	// The key makes the click take effect once, although the delivery is
	// handled again when recording it fails or the process dies.
	ctx = bot.WithCommandKey(ctx, d.guid+"/click")
	var cmdErr error
	switch action {
	case "rerequested":
		_, cmdErr = h.Commands.Rerun(ctx, prog.ID, ex.Number, user)
	case ghapp.ActionPromote:
		cmdErr = h.promoteRequested(ctx, prog, ex, user)
	case ghapp.ActionConfirm, ghapp.ActionCreatePromote:
		_, cmdErr = h.Commands.Promote(ctx, prog.ID, ex.Number, user, action == ghapp.ActionCreatePromote)
	case ghapp.ActionDismiss:
		cmdErr = h.note(ctx, ex, user, EventPromoteDismissed, "")
	case ghapp.ActionApprove, ghapp.ActionApproveRollback:
		_, cmdErr = h.Commands.Approve(ctx, prog.ID, ex.Number, user, action == ghapp.ActionApproveRollback)
	case ghapp.ActionReject:
		_, cmdErr = h.Commands.Reject(ctx, prog.ID, ex.Number, user, "rejected on GitHub")
	case ghapp.ActionDeployNow:
		_, cmdErr = h.Commands.Schedule(ctx, prog.ID, ex.Number, user, h.Clock.Now())
	default:
		return h.record(ctx, d, "check run action not used by Stagehand", slog.String("action", action))
	}
	return h.answerClick(ctx, d, ex, user, action, cmdErr)
}

// answerClick records the delivery and, for a refused or stale click,
// notes the reason on the execution, so its check run is re-rendered with
// the buttons that apply now and says why.
func (h *Webhooks) answerClick(ctx context.Context, d delivery, ex bot.Execution, user, action string, err error) error {
	var re *bot.RuleError
	var rf *refusal
	switch {
	case err == nil, errors.Is(err, bot.ErrAlreadyDone):
		err = nil
	case errors.As(err, &re) || errors.As(err, &rf):
		h.refuse(ctx, user, action, err)
		if nerr := h.note(ctx, ex, user, EventRefused, fmt.Sprintf("%s by @%s refused: %v", action, user, err)); nerr != nil {
			return nerr
		}
	default:
		return err // retried by the router
	}
	_, merr := h.mark(ctx, d, nil)
	return merr
}

// note adds an event to an execution; the event also makes the reporter
// render its check run again.
func (h *Webhooks) note(ctx context.Context, ex bot.Execution, user, kind, detail string) error {
	return h.Store.Update(ctx, func(tx bot.Tx) error {
		return tx.AddEvent(ctx, bot.Event{ExecutionID: ex.ID, At: h.Clock.Now(), Actor: user, Kind: kind, Detail: detail})
	})
}

// promoteRequested is a click on Promote Build: it is allowed only on the
// latest successful stage-only execution (rule D); the check run then asks
// for confirmation.
func (h *Webhooks) promoteRequested(ctx context.Context, prog bot.Program, ex bot.Execution, user string) error {
	var latest []bot.Execution
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		var err error
		latest, err = tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID, Pipeline: bot.StageOnly, States: []bot.ExecutionState{bot.ExecutionSucceeded}, Limit: 1})
		return err
	})
	if err != nil {
		return err
	}
	if len(latest) == 0 || latest[0].ID != ex.ID {
		return &bot.RuleError{Rule: "D", Message: fmt.Sprintf("%s is no longer the latest successful stage-only execution", ex)}
	}
	return h.note(ctx, ex, user, EventPromoteRequested, "")
}

// checkSuite re-runs, at the suite's commit, each pipeline that ran there.
func (h *Webhooks) checkSuite(ctx context.Context, d delivery, ev *github.CheckSuiteEvent) error {
	if ev.GetAction() != "rerequested" || ev.GetCheckSuite().GetApp().GetID() != h.AppID || h.Commands == nil {
		return h.record(ctx, d, "check suite event ignored", slog.String("action", ev.GetAction()))
	}
	if done, err := h.processed(ctx, d.guid); err != nil || done {
		return err
	}
	owner, repo := ev.GetRepo().GetOwner().GetLogin(), ev.GetRepo().GetName()
	sha, user := ev.GetCheckSuite().GetHeadSHA(), ev.GetSender().GetLogin()
	var prog bot.Program
	var latest map[bot.PipelineKind]bot.Execution
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		var err error
		if prog, err = tx.ProgramByName(ctx, owner, repo); err != nil {
			return err
		}
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID})
		latest = map[bot.PipelineKind]bot.Execution{}
		for _, e := range es {
			if _, seen := latest[e.Pipeline]; !seen && e.Commit == sha {
				latest[e.Pipeline] = e
			}
		}
		return err
	})
	if errors.Is(err, bot.ErrNotFound) {
		return h.record(ctx, d, "check suite of an unknown repository ignored")
	}
	if err != nil {
		return err
	}
	if err := h.authorize(ctx, prog, user, false); err != nil {
		h.refuse(ctx, user, "rerequested", err)
		_, merr := h.mark(ctx, d, nil)
		return merr
	}
	for _, kind := range bot.PipelineKinds {
		if e, ok := latest[kind]; ok && !e.State.Active() {
			kctx := bot.WithCommandKey(ctx, fmt.Sprintf("%s/rerun-%s", d.guid, kind))
			if _, err := h.Commands.Rerun(kctx, prog.ID, e.Number, user); err != nil && !errors.Is(err, bot.ErrAlreadyDone) {
				h.refuse(ctx, user, "rerequested", err)
			}
		}
	}
	_, merr := h.mark(ctx, d, nil)
	return merr
}
