package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
)

// InteractAPI is what the handlers of clicks and comments ask of GitHub.
type InteractAPI interface {
	CreateComment(ctx context.Context, inst int64, owner, repo string, issue int, body string) (int64, error)
	React(ctx context.Context, inst int64, owner, repo string, commentID int64, content string) error
	Permission(ctx context.Context, inst int64, owner, repo, user string) (string, error)
	IsTeamMember(ctx context.Context, inst int64, org, team, user string) (bool, error)
}

// refuse records a refusal (a *bot.Refusal: a click or command Stagehand
// would not carry out, answered and changing nothing; or one it could not
// check, and so did not carry out): logged, counted, and appended to the
// audit trail in a transaction of its own (the command's own transaction,
// if any, rolled back). This is the one place every refused click and
// command of the GitHub surface passes. err's words must hold no secret
// value: the engine's refusals name variables, never their values.
func (h *Webhooks) refuse(ctx context.Context, req bot.Request, what string, programID, executionID int64, err error) {
	h.Logger.InfoContext(ctx, "refused", "sender", req.Actor, "action", what, "reason", err.Error())
	if h.Refusals != nil {
		h.Refusals(what)
	}
	h.auditRefusal(ctx, bot.RefusalRecord(h.Clock.Now(), req, what, programID, executionID, err))
}

// auditRefusal appends the record of something not done to the audit
// trail, in a transaction of its own: a refusal, or a replay of what was
// done already (code "already-done"), which is not counted as a refusal.
func (h *Webhooks) auditRefusal(ctx context.Context, rec bot.AuditRecord) {
	if aerr := h.Store.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.AddAudit(ctx, rec)
		return err
	}); aerr != nil {
		h.Logger.ErrorContext(ctx, "recording a refusal in the audit trail", "action", string(rec.Action), bot.LogError, aerr)
	}
}

// writeLevels are the repository permissions that may use Stagehand.
var writeLevels = map[string]bool{"admin": true, "maintain": true, "write": true}

// authorization is what authorize established about a person at the
// moment of a click or a comment: they have write permission, and the
// policy read from the default branch. Whether they are a production
// approver is asked of GitHub only when an action needs it, once.
type authorization struct {
	h         *Webhooks
	prog      bot.Program
	user      string
	policy    bot.Policy
	approvers bot.Approvers
	approver  *bool // nil until asked
}

// authorize checks, at the moment of the click or comment, that user has
// write permission on the repository and reads the program's policy from
// its default branch. It fails closed: any error reading the permission or
// the policy refuses.
func (h *Webhooks) authorize(ctx context.Context, prog bot.Program, user string) (*authorization, error) {
	perm, err := h.GitHub.Permission(ctx, prog.InstallationID, prog.Owner, prog.Repo, user)
	if err != nil {
		return nil, fmt.Errorf("checking %s's permission on %s: %w", user, prog.FullName(), err)
	}
	if !writeLevels[perm] {
		return nil, &bot.Refusal{Code: bot.RefusalNoPermission, Message: fmt.Sprintf("@%s has %s permission on %s; Stagehand needs write or higher", user, perm, prog.FullName())}
	}
	pol, err := h.Policies.Policy(ctx, prog)
	if err != nil {
		if re := bot.Refused(err); re != nil {
			return nil, &bot.Refusal{Code: re.Code, Message: re.Message}
		}
		return nil, fmt.Errorf("reading the policy of %s: %w", prog.FullName(), err)
	}
	a := &authorization{h: h, prog: prog, user: user, policy: pol}
	if pol.Config != nil && pol.Config.Production != nil {
		a.approvers = pol.Config.Production.Approvers
	}
	return a, nil
}

// request returns req carrying the policy and, for a production action
// (SPEC §5), whether the person is one of the production approvers: the
// engine enforces production actions and prevent_self_approval with them.
// An error checking a team refuses (fail closed).
func (a *authorization) request(ctx context.Context, req bot.Request, production bool) (bot.Request, error) {
	ba := bot.Authorization{Approvers: "anyone with write permission"}
	if len(a.approvers.Users) > 0 || len(a.approvers.Teams) > 0 {
		ba.Approvers = strings.Join(append(append([]string{}, a.approvers.Users...), a.approvers.Teams...), ", ")
	}
	if production {
		if a.approver == nil {
			ok, err := a.h.isApprover(ctx, a.prog, a.user, a.approvers)
			if err != nil {
				return req, err
			}
			a.approver = &ok
		}
		ba.ProductionApprover = *a.approver
	}
	req.Authorization, req.Policy = &ba, &a.policy
	return req, nil
}

// ProductionRequest returns req (its Actor a GitHub login) carrying what a
// production action on prog needs, established as for a slash command at
// this moment: write permission on the repository, the default branch's
// policy, and whether the person is one of production's approvers. The
// dashboard's Restore button asks it (wired by cmd/stagehand), so its
// restore is authorized exactly as /stagehand restore production N is; the
// engine then refuses one who is not an approver. Any error refuses (fail
// closed).
func (h *Webhooks) ProductionRequest(ctx context.Context, prog bot.Program, req bot.Request) (bot.Request, error) {
	auth, err := h.authorize(ctx, prog, req.Actor)
	if err != nil {
		return req, err
	}
	return auth.request(ctx, req, true)
}

// isApprover reports whether user is one of the production approvers;
// without approvers configured, everyone with write permission is.
func (h *Webhooks) isApprover(ctx context.Context, prog bot.Program, user string, a bot.Approvers) (bool, error) {
	if len(a.Users) == 0 && len(a.Teams) == 0 {
		return true, nil
	}
	for _, u := range a.Users {
		if strings.EqualFold(u, user) {
			return true, nil
		}
	}
	for _, t := range a.Teams {
		org, slug, _ := strings.Cut(t, "/")
		ok, err := h.GitHub.IsTeamMember(ctx, prog.InstallationID, org, slug, user)
		if err != nil {
			return false, fmt.Errorf("checking whether %s is in team %s: %w", user, t, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// programFor returns the program of a payload's repository, creating it
// when Stagehand has not seen the repository yet (a comment in a
// repository whose pipelines are all manual), and keeping its name and
// default branch current.
func (h *Webhooks) programFor(ctx context.Context, inst int64, r bot.Repository) (bot.Program, error) {
	var prog bot.Program
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		var err error
		if r.ID != 0 {
			prog, err = tx.ProgramByGitHubID(ctx, r.ID)
		} else {
			prog, err = tx.ProgramByName(ctx, r.Owner, r.Name)
		}
		return err
	})
	switch {
	case err == nil && upToDate(prog, inst, r):
		return prog, nil // most clicks and comments: no write
	case err != nil && !errors.Is(err, bot.ErrNotFound):
		return prog, err
	}
	err = h.Store.Update(ctx, func(tx bot.Tx) error {
		var err error
		prog, err = tx.EnsureProgram(ctx, inst, r)
		return err
	})
	return prog, err
}

// upToDate reports whether a stored program already says what the payload
// says of its repository, so that EnsureProgram would change nothing.
func upToDate(prog bot.Program, inst int64, r bot.Repository) bool {
	return !prog.Removed && prog.InstallationID == inst && prog.GitHubID == r.ID &&
		prog.Owner == r.Owner && prog.Repo == r.Name && (r.DefaultBranch == "" || prog.DefaultBranch == r.DefaultBranch)
}

var _ = handles("check_run", (*Webhooks).checkRun)

// checkRun handles clicks on check-run buttons and re-run requests.
func (h *Webhooks) checkRun(ctx context.Context, d Delivery, ev *github.CheckRunEvent) (outcome, error) {
	if ev.GetCheckRun().GetApp().GetID() != h.AppID || h.Commands == nil {
		return ignored("check run of another app ignored"), nil
	}
	if ev.GetSender().GetType() == "Bot" {
		return ignored("check run event sent by a bot ignored"), nil
	}
	id, err := strconv.ParseInt(ev.GetCheckRun().GetExternalID(), 10, 64)
	if err != nil {
		return ignored("check run without a Stagehand execution ignored"), nil
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
		return ignored("check run of an unknown execution ignored"), nil
	}
	if err != nil {
		return outcome{}, err
	}
	if r := repositoryOf(ev.GetRepo()); !sameRepository(prog, r) {
		// The execution belongs to another repository than the check run:
		// never act across repositories.
		return ignored("check run whose execution belongs to another repository ignored", slog.String("repository", r.Owner+"/"+r.Name)), nil
	} else if prog, err = h.programFor(ctx, prog.InstallationID, r); err != nil {
		return outcome{}, err
	}
	user := ev.GetSender().GetLogin()
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, prog.FullName()), slog.Int(bot.LogExecution, ex.Number))
	action := ev.GetAction()
	if action == "requested_action" {
		action = ev.GetRequestedAction().Identifier
	}
	b, known := buttons[action]
	if !known {
		return ignored("check run action not used by Stagehand", slog.String("action", action)), nil
	}
	req := bot.Request{Actor: user, Source: bot.FromButton, Delivery: d.GUID}
	auth, err := h.authorize(ctx, prog, user)
	if err == nil {
		req, err = auth.request(ctx, req, b.production)
	}
	if err != nil {
		return h.answerClick(ctx, ex, req, action, err)
	}
	// A button acts only while its check run shows it (SPEC §7, replays):
	// a click on an older check run, or on a button the execution's state
	// no longer offers, is answered as stale.
	checkRunID := ev.GetCheckRun().GetID()
	shown, err := (&reporter.Reporter{Store: h.Store, ParseConfig: h.ParseConfig}).Buttons(ctx, ex.ID)
	if err != nil {
		return outcome{}, err
	}
	if action != "rerequested" && !shown.Offers(checkRunID, action) {
		return h.answerClick(ctx, ex, req, action, staleClick(action, ex))
	}
	// The key makes the click act once per gate and person: the same
	// person's second click, GitHub handling the delivery again and a
	// replay of the signed delivery under a new GUID all find it recorded.
	// The gate is the check run and the execution's history so far (a
	// button offered again after the state moved is a new gate).
	req.Key = fmt.Sprintf("click/%d/%d/%s/%s", checkRunID, shown.Events, action, strings.ToLower(user))
	return h.answerClick(ctx, ex, req, action, b.press(h, ctx, req, prog, ex))
}

// staleClick is the refusal of a click on a button its check run no longer
// shows.
func staleClick(action string, ex bot.Execution) *bot.Refusal {
	if action == githubapp.ActionPromote {
		return &bot.Refusal{Code: bot.RefusalStale, Message: fmt.Sprintf("this Promote Build button is stale: %s is no longer the latest successful stage-only execution, or its check run moved on", ex)}
	}
	return &bot.Refusal{Code: bot.RefusalStale, Message: fmt.Sprintf("this %s button is stale: %s's check run no longer offers it (the execution moved on, or this is an older check run); use the buttons of its current check run", action, ex)}
}

// sameRepository reports whether a payload's repository is the program's.
func sameRepository(prog bot.Program, r bot.Repository) bool {
	if prog.GitHubID != 0 && r.ID != 0 {
		return prog.GitHubID == r.ID
	}
	return strings.EqualFold(prog.FullName(), r.Owner+"/"+r.Name)
}

// answerClick is a click's outcome: for a refused or stale click, the
// reason is noted on the execution, so its check run is re-rendered with
// the buttons that apply now and says why.
func (h *Webhooks) answerClick(ctx context.Context, ex bot.Execution, req bot.Request, action string, err error) (outcome, error) {
	user := req.Actor
	switch {
	case err == nil:
	case errors.Is(err, bot.ErrAlreadyDone):
		// A second click of the same person on the same gate, or a
		// replay: it acted once already.
		h.Logger.InfoContext(ctx, "click already acted on; nothing to do", "sender", user, "action", action)
		h.auditRefusal(ctx, bot.RefusalRecord(h.Clock.Now(), req, action, ex.ProgramID, ex.ID, err))
	case bot.Refused(err) != nil:
		h.refuse(ctx, req, action, ex.ProgramID, ex.ID, err)
		if nerr := h.note(ctx, ex, user, bot.EventRefused, fmt.Sprintf("%s by @%s refused: %v", action, user, err)); nerr != nil {
			return outcome{}, nerr
		}
	default:
		return outcome{}, err // retried by the router
	}
	return outcome{}, nil
}

// dismiss is a click on Dismiss: an event of the execution (the check run
// drops the confirmation) and its audit record, in one transaction.
func (h *Webhooks) dismiss(ctx context.Context, ex bot.Execution, req bot.Request) error {
	return h.Store.Update(ctx, func(tx bot.Tx) error {
		now := h.Clock.Now()
		if err := tx.AddEvent(ctx, bot.Event{ExecutionID: ex.ID, At: now, Actor: req.Actor, Kind: bot.EventPromoteDismissed}); err != nil {
			return err
		}
		_, err := tx.AddAudit(ctx, bot.AuditRecord{At: now, Actor: req.Actor, Action: bot.AuditPromoteDismiss, ProgramID: ex.ProgramID, ExecutionID: ex.ID,
			Outcome: bot.AuditDone, Reason: "promotion of " + ex.String() + " dismissed", Delivery: req.Delivery})
		return err
	})
}

// note adds an event to an execution; the event also makes the reporter
// render its check run again.
func (h *Webhooks) note(ctx context.Context, ex bot.Execution, user string, kind bot.EventKind, detail string) error {
	return h.Store.Update(ctx, func(tx bot.Tx) error {
		return tx.AddEvent(ctx, bot.Event{ExecutionID: ex.ID, At: h.Clock.Now(), Actor: user, Kind: kind, Detail: detail})
	})
}

var _ = handles("check_suite", (*Webhooks).checkSuite)

// checkSuite re-runs, at the suite's commit, each pipeline that ran there.
func (h *Webhooks) checkSuite(ctx context.Context, d Delivery, ev *github.CheckSuiteEvent) (outcome, error) {
	if ev.GetAction() != "rerequested" || ev.GetCheckSuite().GetApp().GetID() != h.AppID || h.Commands == nil {
		return ignored("check suite event ignored", slog.String("action", ev.GetAction())), nil
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
		return ignored("check suite of an unknown repository ignored"), nil
	}
	if err != nil {
		return outcome{}, err
	}
	req := bot.Request{Actor: user, Source: bot.FromButton, Delivery: d.GUID}
	auth, err := h.authorize(ctx, prog, user)
	if err == nil {
		req, err = auth.request(ctx, req, false)
	}
	if err != nil {
		if bot.Refused(err) == nil {
			return outcome{}, err // could not check: retried, never allowed
		}
		h.refuse(ctx, req, "rerequested", prog.ID, 0, err)
		return outcome{}, nil
	}
	for _, kind := range bot.PipelineKinds {
		if e, ok := latest[kind]; ok && !e.State.Active() {
			// Once per suite, execution and person: a replay finds the
			// key, a re-run of the re-run does not.
			req.Key = fmt.Sprintf("suite/%d/rerun-%s-%d/%s", ev.GetCheckSuite().GetID(), kind, e.Number, strings.ToLower(user))
			if _, err := h.Commands.Rerun(ctx, req, prog.ID, e.Number); err != nil && !errors.Is(err, bot.ErrAlreadyDone) {
				h.refuse(ctx, req, "rerequested", prog.ID, e.ID, err)
			}
		}
	}
	return outcome{}, nil
}
