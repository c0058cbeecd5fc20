package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

var _ = handles("issue_comment", (*Webhooks).issueComment)

// issueComment runs the slash commands of a newly created comment. Edits,
// deletions and comments by bots are ignored. The bot reacts 👀 at once,
// then answers in one reply: what it did, with links, or exactly why not.
func (h *Webhooks) issueComment(ctx context.Context, d Delivery, ev *github.IssueCommentEvent) (outcome, error) {
	if ev.GetAction() != "created" || h.Commands == nil {
		return ignored("comment " + ev.GetAction() + " ignored"), nil
	}
	if ev.GetSender().GetType() == "Bot" || ev.GetComment().GetUser().GetType() == "Bot" {
		return ignored("comment by a bot ignored"), nil
	}
	inst := ev.GetInstallation().GetID()
	r := repositoryOf(ev.GetRepo())
	if inst == 0 {
		return ignored("comment without an installation ignored"), nil
	}
	// The program as the payload names it; it is stored only when the
	// comment holds commands (most comments hold none).
	prog := bot.Program{InstallationID: inst, GitHubID: r.ID, Owner: r.Owner, Repo: r.Name, DefaultBranch: r.DefaultBranch}
	body := ev.GetComment().GetBody()
	cmds, errs := bot.ParseSlash(body, false)
	var pol *bot.Policy
	if len(cmds) == 0 && len(errs) == 0 {
		if !mayHoldBareAlias(body) {
			return ignored("comment without commands"), nil
		}
		// Bare aliases (/promote) are policy: read it to know.
		p, err := h.Policies.Policy(ctx, prog)
		if err != nil {
			if bot.Refused(err) != nil {
				return ignored("comment without /stagehand commands in a repository without a valid policy"), nil
			}
			return outcome{}, err
		}
		if p.Config == nil || !p.Config.BareAliases {
			return ignored("comment without commands"), nil
		}
		if cmds, errs = bot.ParseSlash(body, true); len(cmds) == 0 && len(errs) == 0 {
			return ignored("comment without commands"), nil
		}
		pol = &p
	}
	prog, err := h.programFor(ctx, inst, r)
	if err != nil {
		return outcome{}, err
	}
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, prog.FullName()))
	issue, user, commentID := ev.GetIssue().GetNumber(), ev.GetSender().GetLogin(), ev.GetComment().GetID()
	if err := h.GitHub.React(ctx, inst, prog.Owner, prog.Repo, commentID, "eyes"); err != nil {
		h.Logger.WarnContext(ctx, "reacting to a comment", bot.LogError, err)
	}
	var answers []string
	if age := h.Clock.Now().Sub(ev.GetComment().GetCreatedAt().Time); age > MaxCommentAge {
		// A replayed or long-delayed delivery: the commands are not run.
		h.refuse(ctx, bot.Request{Actor: user, Source: bot.FromComment, Delivery: d.GUID}, "stale-comment", prog.ID, 0,
			&bot.Refusal{Code: bot.RefusalStale, Message: fmt.Sprintf("comment %d written %s ago", commentID, age.Round(time.Second))})
		answers = append(answers, fmt.Sprintf("🚫 This comment was written at %s, %s before Stagehand received it; Stagehand runs commands only from comments at most %s old (an older one is a delayed or replayed delivery). Nothing was done: comment again to run them.",
			ev.GetComment().GetCreatedAt().UTC().Format(time.RFC3339), age.Round(time.Second), MaxCommentAge))
	} else {
		bare := pol != nil
		for _, e := range errs {
			answers = append(answers, fmt.Sprintf("❓ `%s`: %s", e.Raw, e.Message))
			h.refuse(ctx, bot.Request{Actor: user, Source: bot.FromComment, Delivery: d.GUID}, "parse", prog.ID, 0, parseRefusal(e))
		}
		// The commands of one comment share the moment it was handled: one
		// permission check and one reading of the policy, asked for when
		// the first command that needs them comes.
		authorize := sync.OnceValues(func() (*authorization, error) { return h.authorize(ctx, prog, user) })
		for i, c := range cmds {
			// The key makes each command of a comment take effect once:
			// GitHub handling the delivery again, and a replay of the signed
			// delivery under a new GUID, find it recorded.
			req := bot.Request{Actor: user, Key: fmt.Sprintf("comment/%d/command-%d", commentID, i+1), Source: bot.FromComment, Delivery: d.GUID}
			answers = append(answers, h.runCommand(ctx, prog, req, c, bare, authorize))
		}
	}
	if _, err := h.GitHub.CreateComment(ctx, inst, prog.Owner, prog.Repo, issue, strings.Join(answers, "\n\n")); err != nil {
		return outcome{}, fmt.Errorf("answering the comment: %w", err)
	}
	return outcome{}, nil
}

// MaxCommentAge is how old a comment may be when its delivery arrives for
// Stagehand to run its commands (SPEC §7, replays).
const MaxCommentAge = 10 * time.Minute

// mayHoldBareAlias reports whether a comment has a line that starts with
// "/", so that reading the policy (for bare_aliases) is worth it.
func mayHoldBareAlias(body string) bool {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "/") {
			return true
		}
	}
	return false
}

// runCommand authorizes and runs one command of bot.SlashCommands and says
// what happened.
func (h *Webhooks) runCommand(ctx context.Context, prog bot.Program, req bot.Request, c bot.SlashCommand, bare bool, authorize func() (*authorization, error)) string {
	prefix := fmt.Sprintf("`%s`: ", c.Raw)
	// A refusal's audit record names the execution the command names.
	refuse := func(err error) { h.refuse(ctx, req, c.Name, prog.ID, h.namedExecution(ctx, prog, c), err) }
	call := bot.Call{Engine: h.Commands, Request: req, Program: prog.ID, BareAliases: bare}
	access := bot.SlashCommands.Access(c)
	if access != bot.AccessAnyone {
		auth, err := authorize()
		if err == nil {
			call.Request, err = auth.request(ctx, req, access == bot.AccessProduction)
		}
		if err != nil {
			refuse(err)
			if bot.Refused(err) != nil {
				return "🚫 " + prefix + err.Error()
			}
			return "⚠️ " + prefix + "refused: Stagehand could not check that you may do this (" + err.Error() + "); nothing was done, try again later"
		}
	}
	msg, err := bot.SlashCommands.Run(ctx, call, c)
	re := bot.Refused(err)
	switch {
	case access == bot.AccessAnyone && err == nil:
		return msg // help: a whole answer of its own
	case errors.Is(err, bot.ErrAlreadyDone):
		h.auditRefusal(ctx, bot.RefusalRecord(h.Clock.Now(), req, c.Name, prog.ID, h.namedExecution(ctx, prog, c), err))
		return "✅ " + prefix + "done when this comment was first handled (Stagehand received the comment again, and did not repeat the command)"
	case re != nil:
		refuse(err)
		return "🚫 " + prefix + re.Error()
	case err != nil:
		h.Logger.ErrorContext(ctx, "command failed", "command", c.Raw, bot.LogError, err)
		return "⚠️ " + prefix + "failed: " + err.Error()
	}
	if c.Name == bot.OverrideCommand && h.Overrides != nil {
		h.Overrides()
	}
	return "✅ " + prefix + msg
}

// namedExecution is the id of the execution a command names by number
// (approve 12, restore production 12, run prod-only --from 12), for the
// audit record of its refusal; 0 when it names none (the engine's default)
// or none by that number exists.
func (h *Webhooks) namedExecution(ctx context.Context, prog bot.Program, c bot.SlashCommand) int64 {
	n := c.Number
	if n == 0 {
		n = c.From
	}
	if n <= 0 {
		return 0
	}
	var id int64
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		ex, err := tx.ExecutionByNumber(ctx, prog.ID, n)
		id = ex.ID
		return err
	})
	if err != nil {
		return 0
	}
	return id
}

// parseRefusal is the refusal of a line that could not be parsed, for the
// audit trail: its words, unless the line holds a "=" (env set KEY=VALUE
// written wrong: the value might be a secret, so only the line number is
// kept).
func parseRefusal(e bot.SlashError) *bot.Refusal {
	msg := e.Error()
	if strings.Contains(e.Raw, "=") || strings.Contains(e.Message, "=") {
		msg = fmt.Sprintf("line %d: not a valid command (its words are not recorded: the line holds a value)", e.Line)
	}
	return &bot.Refusal{Code: bot.RefusalBadRequest, Message: msg}
}
