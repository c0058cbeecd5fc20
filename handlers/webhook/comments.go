package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
			var re *bot.RuleError
			if errors.As(err, &re) {
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
		h.refuse(ctx, user, "stale-comment", fmt.Errorf("comment %d written %s ago", commentID, age.Round(time.Second)))
		answers = append(answers, fmt.Sprintf("🚫 This comment was written at %s, %s before Stagehand received it; Stagehand runs commands only from comments at most %s old (an older one is a delayed or replayed delivery). Nothing was done: comment again to run them.",
			ev.GetComment().GetCreatedAt().UTC().Format(time.RFC3339), age.Round(time.Second), MaxCommentAge))
	} else {
		bare := pol != nil
		for _, e := range errs {
			answers = append(answers, fmt.Sprintf("❓ `%s`: %s", e.Raw, e.Message))
			h.refuse(ctx, user, "parse", e)
		}
		// The commands of one comment share the moment it was handled: one
		// permission check and one reading of the policy, asked for when
		// the first command that needs them comes.
		authorize := sync.OnceValues(func() (*authorization, error) { return h.authorize(ctx, prog, user) })
		for i, c := range cmds {
			// The key makes each command of a comment take effect once:
			// GitHub handling the delivery again, and a replay of the signed
			// delivery under a new GUID, find it recorded.
			cctx := bot.WithCommandKey(ctx, fmt.Sprintf("comment/%d/command-%d", commentID, i+1))
			answers = append(answers, h.runCommand(cctx, prog, user, c, bare, authorize))
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

// productionCommand reports whether a command is a production action
// (SPEC §5), for which authorize asks whether the person is an approver.
// cancel may be one (when what it cancels holds production): the engine
// decides with what authorize found.
func productionCommand(c bot.SlashCommand) bool {
	switch c.Name {
	case "approve", "reject", "schedule", "cancel":
		return true
	case "env":
		return c.Environment == bot.Production && c.EnvAction != "list"
	}
	return false
}

// runCommand authorizes and runs one command and says what happened.
func (h *Webhooks) runCommand(ctx context.Context, prog bot.Program, user string, c bot.SlashCommand, bare bool, authorize func() (*authorization, error)) string {
	prefix := fmt.Sprintf("`%s`: ", c.Raw)
	if c.Name == "help" {
		return bot.SlashHelp(bare)
	}
	auth, err := authorize()
	var actx context.Context
	if err == nil {
		actx, err = auth.action(ctx, productionCommand(c))
	}
	if err != nil {
		var rf *refusal
		if errors.As(err, &rf) {
			h.refuse(ctx, user, c.Name, err)
			return "🚫 " + prefix + err.Error()
		}
		h.refuse(ctx, user, c.Name, err)
		return "⚠️ " + prefix + "refused: Stagehand could not check that you may do this (" + err.Error() + "); nothing was done, try again later"
	}
	msg, err := h.execute(actx, prog, user, c, auth.policy)
	var re *bot.RuleError
	switch {
	case errors.Is(err, bot.ErrAlreadyDone):
		return "✅ " + prefix + "done when this comment was first handled (Stagehand received the comment again, and did not repeat the command)"
	case errors.As(err, &re):
		h.refuse(ctx, user, c.Name, err)
		return "🚫 " + prefix + re.Error()
	case err != nil:
		h.Logger.ErrorContext(ctx, "command failed", "command", c.Raw, bot.LogError, err)
		return "⚠️ " + prefix + "failed: " + err.Error()
	}
	return "✅ " + prefix + msg
}

func (h *Webhooks) execute(ctx context.Context, prog bot.Program, user string, c bot.SlashCommand, pol bot.Policy) (string, error) {
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
		return h.status(ctx, prog, pol)
	case "env":
		return h.env(ctx, prog, user, c, pol)
	default:
		return "", &bot.RuleError{Message: "unknown command " + c.Name}
	}
	return res.Message, err
}

func (h *Webhooks) env(ctx context.Context, prog bot.Program, user string, c bot.SlashCommand, pol bot.Policy) (string, error) {
	switch c.EnvAction {
	case "set", "unset":
		return h.Commands.SetVariable(ctx, prog.ID, c.Environment, c.Key, c.Value, user, c.EnvAction == "unset")
	}
	vars, err := h.Commands.Variables(ctx, prog.ID, c.Environment)
	if err != nil {
		return "", err
	}
	var secrets []string
	if pol.Config != nil {
		if ec := pol.Config.Environment(c.Environment); ec != nil {
			secrets = ec.Secrets
		}
	}
	if len(vars) == 0 && len(secrets) == 0 {
		return fmt.Sprintf("%s has no variables", c.Environment), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "variables of %s:\n\n| name | value |\n| --- | --- |\n", c.Environment)
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", k, vars[k])
	}
	if len(secrets) > 0 {
		// Secrets: names and whether the server has a value, never values.
		var status map[string]string
		if h.Secrets != nil {
			status = h.Secrets.Status(prog, c.Environment, secrets)
		}
		fmt.Fprintf(&b, "\nsecrets of %s (values are never shown):\n\n| name | value |\n| --- | --- |\n", c.Environment)
		for _, name := range secrets {
			fmt.Fprintf(&b, "| `%s` | %s |\n", name, cmp.Or(status[name], "missing"))
		}
	}
	return b.String(), nil
}

// status lists pipelines, active and queued executions, and what runs on
// stage and production.
func (h *Webhooks) status(ctx context.Context, prog bot.Program, pol bot.Policy) (string, error) {
	var b strings.Builder
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		var pipes []bot.Pipeline
		if pol.Config != nil {
			pipes = bot.PipelinesOf(prog.ID, pol.Config)
		}
		fmt.Fprintf(&b, "**%s** (policy: `.github/stagehand.yml` on %s)\n\n| pipeline | branch | trigger |\n| --- | --- | --- |\n", prog.FullName(), pol.Describe())
		if len(pipes) == 0 {
			b.WriteString("| none | — | — |\n")
		}
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
				fmt.Fprintf(&b, "- %s: %s (%s #%d), artifact set %s, since %s\n", env, bot.ShortSHA(d.Commit), d.Pipeline, d.Number, bot.ShortDigest(d.ArtifactDigest), d.Since.UTC().Format("2006-01-02 15:04 MST"))
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
