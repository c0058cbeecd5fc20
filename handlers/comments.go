package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// issueComment runs the slash commands of a newly created comment. Edits,
// deletions and comments by bots are ignored. The bot reacts 👀 at once,
// then answers in one reply: what it did, with links, or exactly why not.
func (h *Webhooks) issueComment(ctx context.Context, d delivery, ev *github.IssueCommentEvent) error {
	if ev.GetAction() != "created" || h.Commands == nil {
		return h.record(ctx, d, "comment "+ev.GetAction()+" ignored")
	}
	if ev.GetSender().GetType() == "Bot" || ev.GetComment().GetUser().GetType() == "Bot" {
		return h.record(ctx, d, "comment by a bot ignored")
	}
	owner, repo := ev.GetRepo().GetOwner().GetLogin(), ev.GetRepo().GetName()
	var prog bot.Program
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		var err error
		prog, err = tx.ProgramByName(ctx, owner, repo)
		return err
	})
	if errors.Is(err, bot.ErrNotFound) {
		return h.record(ctx, d, "comment in a repository without Stagehand executions ignored")
	}
	if err != nil {
		return err
	}
	cfg := h.latestConfig(ctx, prog)
	bare := cfg != nil && cfg.BareAliases
	cmds, errs := bot.ParseSlash(ev.GetComment().GetBody(), bare)
	if len(cmds) == 0 && len(errs) == 0 {
		return h.record(ctx, d, "comment without commands")
	}
	if done, err := h.processed(ctx, d.guid); err != nil || done {
		return err
	}
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, prog.FullName()))
	inst, issue, user := prog.InstallationID, ev.GetIssue().GetNumber(), ev.GetSender().GetLogin()
	if err := h.GitHub.React(ctx, inst, owner, repo, ev.GetComment().GetID(), "eyes"); err != nil {
		h.Logger.WarnContext(ctx, "reacting to a comment", bot.LogError, err)
	}
	var answers []string
	for _, e := range errs {
		answers = append(answers, fmt.Sprintf("❓ `%s`: %s", e.Raw, e.Message))
		h.refuse(ctx, user, "parse", e)
	}
	for i, c := range cmds {
		// The key makes each command take effect once, although the comment
		// is handled again when answering it fails or the process dies.
		cctx := bot.WithCommandKey(ctx, fmt.Sprintf("%s/command-%d", d.guid, i+1))
		answers = append(answers, h.runCommand(cctx, prog, user, c, bare))
	}
	if _, err := h.GitHub.CreateComment(ctx, inst, owner, repo, issue, strings.Join(answers, "\n\n")); err != nil {
		return fmt.Errorf("answering the comment: %w", err)
	}
	_, err = h.mark(ctx, d, nil)
	return err
}

// runCommand authorizes and runs one command and says what happened.
func (h *Webhooks) runCommand(ctx context.Context, prog bot.Program, user string, c bot.SlashCommand, bare bool) string {
	prefix := fmt.Sprintf("`%s`: ", c.Raw)
	if c.Name == "help" {
		return bot.SlashHelp(bare)
	}
	approval := c.Name == "approve" || c.Name == "reject"
	if err := h.authorize(ctx, prog, user, approval); err != nil {
		var rf *refusal
		if errors.As(err, &rf) {
			h.refuse(ctx, user, c.Name, err)
			return "🚫 " + prefix + err.Error()
		}
		return "⚠️ " + prefix + "could not check your permission: " + err.Error()
	}
	msg, err := h.execute(ctx, prog, user, c)
	var re *bot.RuleError
	switch {
	case errors.Is(err, bot.ErrAlreadyDone):
		return "✅ " + prefix + "done when this comment was first handled (Stagehand handled the comment again after an error or a restart, and did not repeat the command)"
	case errors.As(err, &re):
		h.refuse(ctx, user, c.Name, err)
		return "🚫 " + prefix + re.Error()
	case err != nil:
		h.Logger.ErrorContext(ctx, "command failed", "command", c.Raw, bot.LogError, err)
		return "⚠️ " + prefix + "failed: " + err.Error()
	}
	return "✅ " + prefix + msg
}

func (h *Webhooks) execute(ctx context.Context, prog bot.Program, user string, c bot.SlashCommand) (string, error) {
	e := h.Commands
	var res bot.Result
	var err error
	switch c.Name {
	case "run":
		res, err = e.StartManual(ctx, prog.ID, c.Pipeline, user, c.From)
	case "promote":
		res, err = e.Promote(ctx, prog.ID, c.Number, user, false)
	case "approve":
		res, err = e.Approve(ctx, prog.ID, c.Number, user, c.Rollback)
	case "reject":
		res, err = e.Reject(ctx, prog.ID, c.Number, user, c.Reason)
	case "schedule":
		at := c.At
		if c.Now {
			at = h.Clock.Now()
		}
		res, err = e.Schedule(ctx, prog.ID, c.Number, user, at)
	case "cancel":
		res, err = e.Cancel(ctx, prog.ID, c.Number, user)
	case "status":
		return h.status(ctx, prog)
	case "env":
		return h.env(ctx, prog, user, c)
	default:
		return "", &bot.RuleError{Message: "unknown command " + c.Name}
	}
	return res.Message, err
}

func (h *Webhooks) env(ctx context.Context, prog bot.Program, user string, c bot.SlashCommand) (string, error) {
	switch c.EnvAction {
	case "set", "unset":
		return h.Commands.SetVariable(ctx, prog.ID, c.Environment, c.Key, c.Value, user, c.EnvAction == "unset")
	}
	vars, err := h.Commands.Variables(ctx, prog.ID, c.Environment)
	if err != nil {
		return "", err
	}
	if len(vars) == 0 {
		return fmt.Sprintf("%s has no variables", c.Environment), nil
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "variables of %s:\n\n| name | value |\n| --- | --- |\n", c.Environment)
	for _, k := range keys {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", k, vars[k])
	}
	return b.String(), nil
}

// status lists pipelines, active and queued executions, and what runs on
// stage and production.
func (h *Webhooks) status(ctx context.Context, prog bot.Program) (string, error) {
	var b strings.Builder
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		pipes, err := tx.Pipelines(ctx, prog.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "**%s**\n\n| pipeline | branch | trigger |\n| --- | --- | --- |\n", prog.FullName())
		for _, p := range pipes {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", p.Kind, or(p.Branch, "—"), or(string(p.Trigger), "promotion"))
		}
		active, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID, States: bot.ActiveStates})
		if err != nil {
			return err
		}
		b.WriteString("\n**Active and queued**\n\n")
		if len(active) == 0 {
			b.WriteString("none\n")
		}
		for _, e := range active {
			fmt.Fprintf(&b, "- [%s](%s/programs/%s/executions/%d) at %s: %s — %s\n", e, strings.TrimRight(h.PublicURL, "/"), prog.FullName(), e.Number, bot.ShortSHA(e.Commit), e.State, e.Message)
		}
		b.WriteString("\n**Environments**\n\n")
		for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
			d, err := tx.Deployment(ctx, prog.ID, env)
			switch {
			case errors.Is(err, bot.ErrNotFound):
				fmt.Fprintf(&b, "- %s: nothing deployed yet\n", env)
			case err != nil:
				return err
			default:
				fmt.Fprintf(&b, "- %s: %s (%s #%d), artifact set %s, since %s\n", env, bot.ShortSHA(d.Commit), d.Pipeline, d.Number, short(d.ArtifactDigest), d.Since.UTC().Format("2006-01-02 15:04 MST"))
			}
		}
		return nil
	})
	return b.String(), err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
