package webhook

import (
	"context"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// A button is what a click on one of Stagehand's check-run buttons does
// (the identifiers are githubapp's Action… constants; "rerequested" is
// GitHub's Re-run). Adding a button: its rendering in bot/githubapp and
// its entry here.
type button struct {
	// production: only a production approver may press it (SPEC §5).
	production bool
	press      func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error
}

var buttons = map[string]button{
	"rerequested": {press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.Rerun(ctx, req, prog.ID, ex.Number)
		return err
	}},
	githubapp.ActionPromote: {press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		return h.Commands.RequestPromotion(ctx, req, prog.ID, ex.Number)
	}},
	githubapp.ActionConfirm: {press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.Promote(ctx, req, prog.ID, ex.Number)
		return err
	}},
	githubapp.ActionCreatePromote: {press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.CreateAndPromote(ctx, req, prog.ID, ex.Number)
		return err
	}},
	githubapp.ActionDismiss: {press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		return h.dismiss(ctx, ex, req)
	}},
	githubapp.ActionApprove: {production: true, press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.Approve(ctx, req, prog.ID, ex.Number)
		return err
	}},
	githubapp.ActionApproveRollback: {production: true, press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.ApproveRollback(ctx, req, prog.ID, ex.Number)
		return err
	}},
	githubapp.ActionReject: {production: true, press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.Reject(ctx, req, prog.ID, ex.Number, "rejected on GitHub")
		return err
	}},
	githubapp.ActionDeployNow: {production: true, press: func(h *Webhooks, ctx context.Context, req bot.Request, prog bot.Program, ex bot.Execution) error {
		_, err := h.Commands.Schedule(ctx, req, prog.ID, ex.Number, h.Clock.Now())
		return err
	}},
}
