package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/stagehand-dev/stagehand/bot"
)

// The Restore button of production's history page: a signed-in production
// approver puts an earlier build back in production, as with /stagehand
// restore production N and through the same engine command (bot.Engine.
// Restore): a prod-only execution from that build, its artifacts
// re-verified, its approval as usual (going back needs Approve Rollback).
// The form is a POST carrying the session's token (forms.go) and a key of
// its own, so a second submit of the same form does nothing. Every refusal
// is answered on a page that says why and appended to the audit trail.

// ProductionApprovers establishes whether a person may take a production
// action on a program now, as for a slash command: write permission on its
// repository and one of production's approvers under the default branch's
// policy (webhook.Webhooks.ProductionRequest, wired by cmd/stagehand). It
// returns req with its Authorization and Policy; an error refuses.
type ProductionApprovers interface {
	ProductionRequest(ctx context.Context, prog bot.Program, req bot.Request) (bot.Request, error)
}

// Restorer restores an earlier build (bot.Engine.Restore).
type Restorer interface {
	Restore(ctx context.Context, req bot.Request, programID int64, env bot.EnvironmentName, number int) (bot.Result, error)
}

// Restores turns on the Restore button (Dashboard.Restores).
type Restores struct {
	Approvers ProductionApprovers
	Engine    Restorer
	// Audit is where refusals are appended (the engine records a restore
	// it carries out itself).
	Audit bot.Transactor
}

// restoreFormKeyField is the form's idempotency key: made when the page is
// shown, the same for every button on it.
const restoreFormKeyField = "form_key"

// restoreForm is what the history page needs to show Restore buttons;
// nil when it shows none (Note says why).
type restoreForm struct {
	Action, Token, Key string
}

func restorePath(p bot.Program) string {
	return environmentsPath(p) + "/" + string(bot.Production) + "/restore"
}

// restoreFormFor decides whether the history page v shows r's viewer
// Restore buttons, asking whether they are a production approver now;
// when not, note says why (or is empty when there is nothing to say).
func (d *Dashboard) restoreFormFor(r *http.Request, v historyView) (form *restoreForm, note string) {
	if d.Restores == nil || v.Environment != bot.Production {
		return nil, ""
	}
	ctx := r.Context()
	vw := viewerFrom(ctx)
	if vw == nil || vw.sessionID == "" {
		return nil, "Production approvers signed in with GitHub can restore a build from this page; /stagehand restore production N does it from a comment."
	}
	if perm, err := d.permission(ctx, v.Program); err != nil || perm < WriteAccess {
		return nil, "Only production's approvers can restore a build (you cannot write to the repository)."
	}
	req, err := d.Restores.Approvers.ProductionRequest(ctx, v.Program, bot.Request{Actor: vw.login, Source: bot.FromDashboard})
	if err != nil {
		if re := bot.Refused(err); re != nil {
			return nil, "You cannot restore a build: " + re.Error() + "."
		}
		d.logger().WarnContext(ctx, "asking whether a dashboard visitor is a production approver", "login", vw.login, bot.LogError, err)
		return nil, "Stagehand could not check with GitHub whether you are one of production's approvers, so it shows no Restore buttons; reload in a minute."
	}
	if req.Authorization == nil || !req.Authorization.ProductionApprover {
		who := ""
		if req.Authorization != nil {
			who = " (" + req.Authorization.Approvers + ")"
		}
		return nil, "Only production's approvers" + who + " can restore a build."
	}
	return &restoreForm{Action: restorePath(v.Program), Token: vw.signIn.formToken(vw.sessionID), Key: randomString(16)}, ""
}

// restoreOutcome is the body of the page that answers a Restore.
type restoreOutcome struct {
	Program bot.Program
	Number  int
	Done    bool
	Message string
	Restore int    // the prod-only execution made (0: none)
	Earlier bool   // the form had been submitted already
	History string // production's history page
	Known   bool   // Program is known and readable (links to it)
}

// serveRestore handles the Restore button's POST.
func (d *Dashboard) serveRestore(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	number, _ := strconv.Atoi(r.PostFormValue("execution"))
	out := restoreOutcome{Number: number}
	req := bot.Request{Source: bot.FromDashboard}
	vw := viewerFrom(ctx)
	if vw != nil {
		req.Actor = vw.login
	}
	// What the request names, for the audit trail whatever happens next.
	var target bot.Program
	var sourceID int64
	_ = d.view(ctx, func(tx readTx) error {
		p, err := tx.ProgramByName(ctx, r.PathValue("owner"), r.PathValue("repo"))
		if err != nil {
			return err
		}
		target = p
		if src, err := tx.ExecutionByNumber(ctx, p.ID, number); err == nil {
			sourceID = src.ID
		}
		return nil
	})
	refuse := func(status int, err error) {
		d.auditRestoreRefusal(ctx, req, target.ID, sourceID, err)
		out.Message = err.Error()
		d.render(w, r, status, "restore", pageData{Title: "Restore refused", Program: out.programRef(), Body: out})
	}
	if d.Restores == nil {
		refuse(http.StatusNotFound, &bot.Refusal{Code: bot.RefusalNotConfigured, Message: "this dashboard does not restore builds; /stagehand restore production N does it from a comment"})
		return
	}
	switch {
	case vw == nil:
		refuse(http.StatusUnauthorized, &bot.Refusal{Code: bot.RefusalSignIn, Message: "restoring a build from the dashboard needs a sign-in with GitHub (this dashboard has none, or you are not signed in); sign in, or comment /stagehand restore production N"})
		return
	case vw.bearer:
		refuse(http.StatusForbidden, &bot.Refusal{Code: bot.RefusalForged, Message: "the Restore button is for people signed in to the dashboard, not for GitHub tokens; a script comments /stagehand restore production N"})
		return
	}
	if problem := vw.signIn.formProblem(r, vw); problem != "" {
		refuse(http.StatusForbidden, &bot.Refusal{Code: bot.RefusalForged, Message: "refused: " + problem + ". Open production's history page and press Restore there"})
		return
	}
	prog, _, err := d.program(ctx, r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		status, _ := d.statusOf(r, err)
		refuse(status, err)
		return
	}
	out.Program, out.Known, out.History = prog, true, historyPath(prog, bot.Production)
	env, err := environmentOf(r)
	if err != nil {
		refuse(http.StatusNotFound, err)
		return
	}
	key := r.PostFormValue(restoreFormKeyField)
	if number <= 0 || !validFormKey(key) {
		refuse(http.StatusBadRequest, badRequest("the form names no execution to restore, or lacks its key; press Restore on production's history page"))
		return
	}
	// One key per person, form and build: the same form submitted twice
	// restores once (bot.ErrAlreadyDone), as a comment handled twice does.
	req.Key = fmt.Sprintf("dashboard/%s/restore/%d/%s", url.PathEscape(vw.login), number, key)
	areq, err := d.Restores.Approvers.ProductionRequest(ctx, prog, req)
	if err != nil {
		if bot.Refused(err) == nil {
			d.logger().ErrorContext(ctx, "checking a restore from the dashboard", "login", vw.login, bot.LogError, err)
			err = &bot.Refusal{Code: bot.RefusalUnavailable, Message: fmt.Sprintf("Stagehand could not check with GitHub that you may restore production (%v); nothing was done, try again in a minute", err)}
		}
		refuse(restoreStatus(err), err)
		return
	}
	res, err := d.Restores.Engine.Restore(ctx, areq, prog.ID, env, number)
	switch {
	case errors.Is(err, bot.ErrAlreadyDone):
		d.auditRestoreRefusal(ctx, req, prog.ID, sourceID, err)
		out.Done, out.Earlier = true, true
		out.Restore = d.restoredBy(ctx, prog, sourceID, vw.login)
		out.Message = fmt.Sprintf("This form was submitted before: the restore of #%d it asked for was made then, and is not made again.", number)
	case err != nil:
		if bot.Refused(err) == nil {
			d.logger().ErrorContext(ctx, "restore from the dashboard failed", "login", vw.login, bot.LogError, err)
		}
		refuse(restoreStatus(err), err)
		return
	default:
		out.Done, out.Restore, out.Message = true, res.Execution.Number, res.Message
		d.logger().InfoContext(ctx, "restore from the dashboard", "login", vw.login, bot.LogRepo, prog.FullName(), "execution", res.Execution.Number)
	}
	d.render(w, r, http.StatusOK, "restore", pageData{Title: "Restore", Program: &prog, Body: out})
}

func (o restoreOutcome) programRef() *bot.Program {
	if !o.Known {
		return nil
	}
	return &o.Program
}

// restoreStatus is the HTTP status of a refused restore.
func restoreStatus(err error) int {
	re := bot.Refused(err)
	if re == nil {
		return http.StatusInternalServerError
	}
	switch re.Code {
	case bot.RefusalNotApprover, bot.RefusalNoPermission, bot.RefusalSelfApproval, bot.RefusalForged:
		return http.StatusForbidden
	case bot.RefusalNoSuchExecution, bot.RefusalNotFound:
		return http.StatusNotFound
	case bot.RefusalBadRequest:
		return http.StatusBadRequest
	case bot.RefusalUnavailable:
		return http.StatusServiceUnavailable
	case bot.RefusalSignIn:
		return http.StatusUnauthorized
	}
	return http.StatusConflict // not restorable, blocked, invalid policy, …
}

// auditRestoreRefusal appends a refused restore to the audit trail, in a
// transaction of its own. err's words hold no secret.
func (d *Dashboard) auditRestoreRefusal(ctx context.Context, req bot.Request, programID, executionID int64, err error) {
	if d.Restores == nil || d.Restores.Audit == nil {
		return
	}
	rec := bot.RefusalRecord(d.now(), req, string(bot.AuditRestore), programID, executionID, err)
	if aerr := d.Restores.Audit.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.AddAudit(ctx, rec)
		return err
	}); aerr != nil {
		d.logger().ErrorContext(ctx, "recording a refused restore in the audit trail", bot.LogError, aerr)
	}
}

// restoredBy is the newest restore login made of the build sourceID (the
// one an earlier submit of a form made), or 0.
func (d *Dashboard) restoredBy(ctx context.Context, prog bot.Program, sourceID int64, login string) int {
	var n int
	_ = d.view(ctx, func(tx readTx) error {
		es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID, Pipeline: bot.ProdOnly, Limit: 50})
		for _, e := range es {
			if e.Cause == bot.CauseRestore && e.SourceID == sourceID && e.TriggeredBy == login && e.Number > n {
				n = e.Number
			}
		}
		return err
	})
	return n
}
