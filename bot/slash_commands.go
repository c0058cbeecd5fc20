package bot

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Command is one slash command: everything Stagehand knows of it, in one
// entry of a registry (Commands). The parser reads it from a comment with
// what the entry says; /stagehand help and the README's table are written
// from the entries; the webhook handler asks the entry who may use it and
// runs its action. Adding a command is adding an entry here (and its row
// to the README's table, which a test compares with ReadmeTable).
type Command struct {
	// Name is the command word, /stagehand <Name> (or /<Name> with
	// bare_aliases).
	Name string
	// Usage is the right form, quoted in parse errors. It has no
	// <placeholders>, which Markdown would take for HTML.
	Usage string
	// ActionUsage is the right form of each action of a command with
	// actions (env list|set|unset), by SlashCommand.EnvAction.
	ActionUsage map[string]string
	// Help is the command's rows in /stagehand help: its form (with
	// <placeholders>, in code) and what it does.
	Help []HelpRow
	// Synopsis and Effect are its row in the README's table (SPEC §4's
	// names and words). Commands with the same Effect share a row.
	Synopsis, Effect string
	// Who says who may use the command as written (nil: AccessWrite).
	Who func(SlashCommand) Access
	// ProductionHelp says in the words of /stagehand help when the command
	// is a production action ("" : never).
	ProductionHelp string
	// Parse reads the arguments into cmd, or says what is wrong with them
	// (the parser adds the right form). nil: the command takes none.
	Parse func(cmd *SlashCommand, raw string, args []slashToken) string
	// Run carries the command out and says what it did (Markdown), or why
	// not: a *Refusal is a refusal to show.
	Run func(ctx context.Context, call Call, cmd SlashCommand) (string, error)
}

// Access is who may use a command (SPEC §5).
type Access int

// The levels of access.
const (
	// AccessWrite: write permission (or higher) on the repository, checked
	// at the moment of the command.
	AccessWrite Access = iota
	// AccessAnyone: nothing is checked or read (help).
	AccessAnyone
	// AccessProduction: a production action; write permission, and one of
	// production's approvers when they are configured. The handler
	// establishes it (Request.Authorization), the engine enforces it.
	// cancel is one when what it cancels holds production: the engine
	// decides that.
	AccessProduction
)

// Call is one command of a comment being carried out: what its action
// works with.
type Call struct {
	Engine  *Engine
	Request Request
	Program int64 // the program's ID
	// Commands is the registry the command was read with (help lists it).
	Commands Commands
	// BareAliases: the comment was read with bare aliases (help shows them).
	BareAliases bool
}

// HelpRow is one row of /stagehand help.
type HelpRow struct{ Form, Text string }

// Commands is a registry of slash commands, in the order help shows them.
type Commands []Command

func (r Commands) find(name string) *Command {
	for i := range r {
		if r[i].Name == name {
			return &r[i]
		}
	}
	return nil
}

func (r Commands) names() []string {
	names := make([]string, len(r))
	for i, c := range r {
		names[i] = c.Name
	}
	return names
}

// Access says who may use c.
func (r Commands) Access(c SlashCommand) Access {
	if e := r.find(c.Name); e != nil && e.Who != nil {
		return e.Who(c)
	}
	return AccessWrite
}

// Run carries out c, a command read with r, as call asks.
func (r Commands) Run(ctx context.Context, call Call, c SlashCommand) (string, error) {
	e := r.find(c.Name)
	if e == nil || e.Run == nil {
		return "", &Refusal{Code: RefusalBadRequest, Message: "unknown command " + c.Name}
	}
	call.Commands = r
	return e.Run(ctx, call, c)
}

func anyone(SlashCommand) Access     { return AccessAnyone }
func production(SlashCommand) Access { return AccessProduction }

// result is the message of a command's Result.
func result(r Result, err error) (string, error) { return r.Message, err }

// SlashCommands are Stagehand's slash commands (SPEC §4).
var SlashCommands = Commands{
	{
		Name:     "help",
		Usage:    "/stagehand help",
		Help:     []HelpRow{{"/stagehand help", "lists these commands and who may use them"}},
		Synopsis: "help", Effect: "the commands and who may use them",
		Who: anyone,
		Run: func(_ context.Context, call Call, _ SlashCommand) (string, error) {
			return call.Commands.Help(call.BareAliases), nil
		},
	},
	{
		Name:     "run",
		Usage:    "/stagehand run stage-only|full-stack or /stagehand run prod-only [--from N]",
		Help:     []HelpRow{{"/stagehand run <pipeline> [--from N]", "starts `stage-only` or `full-stack` at the head of its branch, or `prod-only` from the latest successful stage-only execution (`--from N`: from execution N)"}},
		Synopsis: "run <pipeline> [--from N]", Effect: "start a pipeline by hand",
		Parse: slashRun,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.StartManual(ctx, call.Request, call.Program, c.Pipeline, c.From))
		},
	},
	{
		Name:     "promote",
		Usage:    "/stagehand promote [N]",
		Help:     []HelpRow{{"/stagehand promote [N]", "promotes a successful stage-only execution to production, like the Promote Build button (default: the latest successful one)"}},
		Synopsis: "promote [N]", Effect: "Promote Build on stage-only execution N (default: the latest successful)",
		Parse: slashNumberOnly,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.Promote(ctx, call.Request, call.Program, c.Number))
		},
	},
	{
		Name:     "restore",
		Usage:    "/stagehand restore production N",
		Help:     []HelpRow{{"/stagehand restore production <N>", "puts the build of an earlier succeeded stage-only or full-stack execution N back in production: a prod-only execution from it, with its artifacts re-verified and the approval as usual (going back needs Approve Rollback); builds whose artifacts retention removed cannot be restored"}},
		Synopsis: "restore production <N>", Effect: "put the build of an earlier execution N back in production (its byte-identical artifacts; approval and Approve Rollback as usual)",
		Who: production, ProductionHelp: "`restore production`",
		Parse: slashRestore,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.Restore(ctx, call.Request, call.Program, c.Environment, c.Number))
		},
	},
	{
		Name:     "approve",
		Usage:    "/stagehand approve [N] [--rollback]",
		Help:     []HelpRow{{"/stagehand approve [N] [--rollback]", "approves an execution waiting for approval; `--rollback` is needed when its deploy would roll production back. Under a quorum (`approvers.required`) each approver counts once"}},
		Synopsis: "approve [N] [--rollback]", Effect: "answer a waiting approval",
		Who: production, ProductionHelp: "`approve` (also with `--rollback`)",
		Parse: slashApprove,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			if c.Rollback {
				return result(call.Engine.ApproveRollback(ctx, call.Request, call.Program, c.Number))
			}
			return result(call.Engine.Approve(ctx, call.Request, call.Program, c.Number))
		},
	},
	{
		Name:     "reject",
		Usage:    "/stagehand reject [N] [reason]",
		Help:     []HelpRow{{"/stagehand reject [N] [reason]", "rejects an execution waiting for approval; it ends cancelled"}},
		Synopsis: "reject [N] [reason]", Effect: "answer a waiting approval",
		Who: production, ProductionHelp: "`reject`",
		Parse: slashReject,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.Reject(ctx, call.Request, call.Program, c.Number, c.Reason))
		},
	},
	{
		Name:     "schedule",
		Usage:    "/stagehand schedule now|TIME [N], TIME in RFC 3339 such as 2026-12-01T10:00:00Z",
		Help:     []HelpRow{{"/stagehand schedule <time> [N]", "sets when a scheduled production deploy runs: an RFC 3339 time such as `2026-12-01T10:00:00Z`, or `now`"}},
		Synopsis: "schedule <RFC 3339 time or now> [N]", Effect: "when a scheduled production deploy runs",
		Who: production, ProductionHelp: "`schedule` (and the Deploy Now button)",
		Parse: slashSchedule,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.Schedule(ctx, call.Request, call.Program, c.Number, c.At)) // now: c.At is zero
		},
	},
	{
		Name:     "deploy-now",
		Usage:    `/stagehand deploy-now [N] --override "reason"`,
		Help:     []HelpRow{{`/stagehand deploy-now [N] --override "<reason>"`, "break-glass: lets the production deploy of execution N start inside a freeze or outside a deploy window; the reason is mandatory and recorded (refused where production has `break_glass: false`)"}},
		Synopsis: `deploy-now [N] --override "reason"`, Effect: "break-glass: a production deploy may start inside a freeze or outside a deploy window; the reason is recorded",
		Who: production, ProductionHelp: "`deploy-now --override`",
		Parse: slashDeployNow,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.Override(ctx, call.Request, call.Program, c.Number, c.Reason))
		},
	},
	{
		Name:     "cancel",
		Usage:    "/stagehand cancel [N]",
		Help:     []HelpRow{{"/stagehand cancel [N]", "cancels a queued, running or waiting execution"}},
		Synopsis: "cancel [N]", Effect: "cancel a queued, running or waiting execution",
		Who: production, ProductionHelp: "`cancel` of an execution that holds production",
		Parse: slashNumberOnly,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			return result(call.Engine.Cancel(ctx, call.Request, call.Program, c.Number))
		},
	},
	{
		Name:     "status",
		Usage:    "/stagehand status",
		Help:     []HelpRow{{"/stagehand status", "shows the pipelines, the active and queued executions, what runs on stage and production, and their deploy windows and freezes"}},
		Synopsis: "status", Effect: "pipelines, active and queued executions, what runs where, deploy windows",
		Run: func(ctx context.Context, call Call, _ SlashCommand) (string, error) {
			return call.Engine.Status(ctx, call.Request, call.Program)
		},
	},
	{
		Name:  "env",
		Usage: "/stagehand env list|set|unset stage|production [KEY[=VALUE]]",
		ActionUsage: map[string]string{
			"list":  "/stagehand env list stage|production",
			"set":   "/stagehand env set stage|production KEY=VALUE",
			"unset": "/stagehand env unset stage|production KEY",
		},
		Help: []HelpRow{
			{"/stagehand env list <environment>", "lists the variables of `stage` or `production`"},
			{"/stagehand env set <environment> KEY=VALUE", "sets a variable for the next deployment (refused while an execution holds the environment)"},
			{"/stagehand env unset <environment> KEY", "removes a variable (refused while an execution holds the environment)"},
		},
		Synopsis: "env list|set|unset <environment> [KEY[=VALUE]]", Effect: "environment variables (refused while held)",
		Who: func(c SlashCommand) Access {
			if c.Environment == Production && c.EnvAction != "list" {
				return AccessProduction
			}
			return AccessWrite
		},
		ProductionHelp: "`env set`/`env unset production`",
		Parse:          slashEnv,
		Run: func(ctx context.Context, call Call, c SlashCommand) (string, error) {
			switch c.EnvAction {
			case "set":
				return call.Engine.SetVariable(ctx, call.Request, call.Program, c.Environment, c.Key, c.Value)
			case "unset":
				return call.Engine.UnsetVariable(ctx, call.Request, call.Program, c.Environment, c.Key)
			}
			return call.Engine.ListVariables(ctx, call.Request, call.Program, c.Environment)
		},
	},
}

// slashNumberOnly parses "[N]".
func slashNumberOnly(cmd *SlashCommand, _ string, args []slashToken) string {
	var problem string
	cmd.Number, problem = slashOptionalNumber(args)
	return problem
}

func slashRun(cmd *SlashCommand, _ string, args []slashToken) string {
	fromSeen := false
	for i := 0; i < len(args); i++ {
		t := args[i]
		if !slashOption(t.text) {
			if cmd.Pipeline != "" {
				return slashExtra(t, "takes one pipeline")
			}
			kind := PipelineKind(slashLower(t.text))
			if kind != StageOnly && kind != FullStack && kind != ProdOnly {
				return fmt.Sprintf("%s is not a pipeline", slashQuote(t.text))
			}
			cmd.Pipeline = kind
			continue
		}
		flag, value, hasValue := strings.Cut(t.text, "=")
		if slashLower(flag) != "--from" {
			return slashNotOption(t.text)
		}
		if fromSeen {
			return "--from is given twice"
		}
		fromSeen = true
		if !hasValue {
			if i+1 == len(args) {
				return "--from needs an execution number"
			}
			i++
			value = args[i].text
		}
		if value == "" {
			return "--from needs an execution number"
		}
		n, _, problem := slashNumber(value)
		if problem != "" {
			return "--from: " + problem
		}
		cmd.From = n
	}
	if cmd.Pipeline == "" {
		return "the pipeline is missing"
	}
	if fromSeen && cmd.Pipeline != ProdOnly {
		return fmt.Sprintf("--from applies to prod-only only, not to %s", cmd.Pipeline)
	}
	return ""
}

func slashApprove(cmd *SlashCommand, _ string, args []slashToken) string {
	numberSeen := false
	for _, t := range args {
		if slashOption(t.text) {
			if slashLower(t.text) != "--rollback" {
				return slashNotOption(t.text)
			}
			if cmd.Rollback {
				return "--rollback is given twice"
			}
			cmd.Rollback = true
			continue
		}
		if numberSeen {
			return slashExtra(t, "takes one execution number at most")
		}
		numberSeen = true
		var problem string
		if cmd.Number, problem = slashPositionalNumber(t); problem != "" {
			return problem
		}
	}
	return ""
}

// slashReject parses "[N] [reason]": the reason is the rest of the line as
// written. A reason may not start with an option, which is more likely a
// mistaken flag than words.
func slashReject(cmd *SlashCommand, raw string, args []slashToken) string {
	if len(args) == 0 {
		return ""
	}
	rest := args
	if n, looks, problem := slashNumber(args[0].text); looks {
		if problem != "" {
			return problem
		}
		cmd.Number, rest = n, args[1:]
	}
	if len(rest) == 0 {
		return ""
	}
	if slashOption(rest[0].text) {
		return slashNotOption(rest[0].text)
	}
	cmd.Reason = raw[rest[0].start:]
	return ""
}

func slashSchedule(cmd *SlashCommand, _ string, args []slashToken) string {
	if len(args) == 0 {
		return "the time is missing"
	}
	t := args[0]
	switch {
	case slashOption(t.text):
		return slashNotOption(t.text)
	case slashLower(t.text) == "now":
		cmd.Now = true
	default:
		at, err := time.Parse(time.RFC3339, t.text)
		if err != nil {
			return fmt.Sprintf("%s is not a time", slashQuote(t.text))
		}
		if at.IsZero() {
			return fmt.Sprintf("%s is not a usable time", slashQuote(t.text))
		}
		cmd.At = at.UTC()
	}
	var problem string
	cmd.Number, problem = slashOptionalNumber(args[1:])
	return problem
}

func slashEnv(cmd *SlashCommand, raw string, args []slashToken) string {
	if len(args) == 0 {
		return "list, set or unset is missing"
	}
	if slashOption(args[0].text) {
		return slashNotOption(args[0].text)
	}
	switch action := slashLower(args[0].text); action {
	case "list", "set", "unset":
		cmd.EnvAction = action
	default:
		return fmt.Sprintf("%s is not list, set or unset", slashQuote(args[0].text))
	}
	if len(args) == 1 {
		return "the environment is missing"
	}
	if slashOption(args[1].text) {
		return slashNotOption(args[1].text)
	}
	switch env := EnvironmentName(slashLower(args[1].text)); env {
	case Stage, Production:
		cmd.Environment = env
	default:
		return fmt.Sprintf("%s is not an environment", slashQuote(args[1].text))
	}
	switch cmd.EnvAction {
	case "list":
		if len(args) > 2 {
			return slashExtra(args[2], "takes only the environment")
		}
	case "set":
		if len(args) == 2 {
			return "KEY=VALUE is missing"
		}
		t := args[2]
		if slashOption(t.text) {
			return slashNotOption(t.text)
		}
		key, _, ok := strings.Cut(t.text, "=")
		if !ok {
			return fmt.Sprintf("%s is not KEY=VALUE", slashQuote(t.text))
		}
		if !slashValidKey(key) {
			return slashBadKey(key)
		}
		cmd.Key = key
		cmd.Value = raw[t.start+len(key)+1:]
		if v := cmd.Value; len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && strings.Count(v, `"`) == 2 {
			cmd.Value = cmd.Value[1 : len(cmd.Value)-1]
		}
	case "unset":
		if len(args) == 2 {
			return "KEY is missing"
		}
		t := args[2]
		if slashOption(t.text) {
			return slashNotOption(t.text)
		}
		if !slashValidKey(t.text) {
			return slashBadKey(t.text)
		}
		cmd.Key = t.text
		if len(args) > 3 {
			return slashExtra(args[3], "takes only the environment and KEY")
		}
	}
	return ""
}
