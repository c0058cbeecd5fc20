package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The right forms that error messages quote.
const (
	slashUseHelp          = "use /stagehand help"
	slashUseRun           = "use /stagehand run stage-only|full-stack or /stagehand run prod-only [--from N]"
	slashUsePromote       = "use /stagehand promote [N]"
	slashUseApprove       = "use /stagehand approve [N] [--rollback]"
	slashUseReject        = "use /stagehand reject [N] [reason]"
	slashUseDeployNow     = `use /stagehand deploy-now [N] --override "reason"`
	slashDeployNowMissing = `--override "reason" is missing: deploy-now is the break-glass override of deploy windows and freezes, and needs a reason (for a scheduled deploy, use /stagehand schedule now)`
	slashNoReason         = `--override needs a reason, which is recorded and shown: --override "why it cannot wait"`
	slashUseSchedule      = "use /stagehand schedule now|TIME [N], TIME in RFC 3339 such as 2026-12-01T10:00:00Z"
	slashUseCancel        = "use /stagehand cancel [N]"
	slashUseStatus        = "use /stagehand status"
	slashUseEnv           = "use /stagehand env list|set|unset stage|production [KEY[=VALUE]]"
	slashUseEnvList       = "use /stagehand env list stage|production"
	slashUseEnvSet        = "use /stagehand env set stage|production KEY=VALUE"
	slashUseEnvUnset      = "use /stagehand env unset stage|production KEY"
	slashUnknownCmd       = "is not a command; use help, run, promote, restore, approve, reject, schedule, deploy-now, cancel, status or env (/stagehand help explains them)"
)

type slashCase struct {
	name string
	body string
	bare bool
	cmds []SlashCommand
	errs []SlashError
}

// ok is a one-line comment that parses into c.
func slashOK(name, body string, c SlashCommand) slashCase {
	c.Line, c.Raw = 1, strings.TrimSpace(body)
	return slashCase{name: name, body: body, cmds: []SlashCommand{c}}
}

// bad is a one-line comment that gives the error message.
func slashBad(name, body, message string) slashCase {
	return slashCase{name: name, body: body, errs: []SlashError{{Line: 1, Raw: strings.TrimSpace(body), Message: message}}}
}

// bareAliases turns bare aliases on in c.
func slashBare(c slashCase) slashCase {
	c.bare = true
	return c
}

// none is a comment without commands.
func slashNone(name, body string, bare bool) slashCase {
	return slashCase{name: name, body: body, bare: bare}
}

func slashAt(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func slashNumbered(n int, format string) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(format, i+1)
	}
	return lines
}

func slashCases() []slashCase {
	elevenCancels := slashNumbered(11, "/stagehand cancel %d")
	tenCancels := make([]SlashCommand, 10)
	for i := range tenCancels {
		tenCancels[i] = SlashCommand{Name: "cancel", Line: i + 1, Raw: elevenCancels[i], Number: i + 1}
	}
	return []slashCase{
		// help
		slashOK("help", "/stagehand help", SlashCommand{Name: "help"}),
		slashOK("stagehand alone is help", "/stagehand", SlashCommand{Name: "help"}),
		slashOK("stagehand alone with spaces is help", "  /stagehand  \t", SlashCommand{Name: "help"}),
		slashBad("help with an argument", "/stagehand help me", `/stagehand help: unexpected "me": it takes no arguments; `+slashUseHelp),

		// run
		slashOK("run stage-only", "/stagehand run stage-only", SlashCommand{Name: "run", Pipeline: StageOnly}),
		slashOK("run full-stack", "/stagehand run full-stack", SlashCommand{Name: "run", Pipeline: FullStack}),
		slashOK("run prod-only", "/stagehand run prod-only", SlashCommand{Name: "run", Pipeline: ProdOnly}),
		slashOK("run prod-only --from N", "/stagehand run prod-only --from 3", SlashCommand{Name: "run", Pipeline: ProdOnly, From: 3}),
		slashOK("run prod-only --from=N", "/stagehand run prod-only --from=3", SlashCommand{Name: "run", Pipeline: ProdOnly, From: 3}),
		slashOK("run prod-only --from #N", "/stagehand run prod-only --from #3", SlashCommand{Name: "run", Pipeline: ProdOnly, From: 3}),
		slashOK("run --from before the pipeline", "/stagehand run --from=3 prod-only", SlashCommand{Name: "run", Pipeline: ProdOnly, From: 3}),
		slashOK("run pipeline and flag in capitals", "/stagehand RUN Prod-Only --FROM 3", SlashCommand{Name: "run", Pipeline: ProdOnly, From: 3}),
		slashBad("run bogus", "/stagehand run bogus", `/stagehand run: "bogus" is not a pipeline; `+slashUseRun),
		slashBad("run without pipeline", "/stagehand run", "/stagehand run: the pipeline is missing; "+slashUseRun),
		slashBad("run stage-only --from", "/stagehand run stage-only --from 3", "/stagehand run: --from applies to prod-only only, not to stage-only; "+slashUseRun),
		slashBad("run --from without number", "/stagehand run prod-only --from", "/stagehand run: --from needs an execution number; "+slashUseRun),
		slashBad("run --from= without number", "/stagehand run prod-only --from=", "/stagehand run: --from needs an execution number; "+slashUseRun),
		slashBad("run --from 0", "/stagehand run prod-only --from=0", `/stagehand run: --from: "0" is not an execution number: it must be 1 to 1000000000; `+slashUseRun),
		slashBad("run --from x", "/stagehand run prod-only --from x", `/stagehand run: --from: "x" is not an execution number; `+slashUseRun),
		slashBad("run --from twice", "/stagehand run prod-only --from 3 --from=4", "/stagehand run: --from is given twice; "+slashUseRun),
		slashBad("run unknown flag", "/stagehand run prod-only --force", `/stagehand run: "--force" is not an option; `+slashUseRun),
		slashBad("run two pipelines", "/stagehand run stage-only full-stack", `/stagehand run: unexpected "full-stack": it takes one pipeline; `+slashUseRun),

		// promote
		slashOK("promote", "/stagehand promote", SlashCommand{Name: "promote"}),
		slashOK("promote N", "/stagehand promote 4", SlashCommand{Name: "promote", Number: 4}),
		slashOK("promote #N", "/stagehand promote #4", SlashCommand{Name: "promote", Number: 4}),
		slashOK("promote the largest number", "/stagehand promote 1000000000", SlashCommand{Name: "promote", Number: 1000000000}),
		slashBad("promote x", "/stagehand promote x", `/stagehand promote: "x" is not an execution number; `+slashUsePromote),
		slashBad("promote 0", "/stagehand promote 0", `/stagehand promote: "0" is not an execution number: it must be 1 to 1000000000; `+slashUsePromote),
		slashBad("promote too large", "/stagehand promote 1000000001", `/stagehand promote: "1000000001" is not an execution number: it must be 1 to 1000000000; `+slashUsePromote),
		slashBad("promote far too large", "/stagehand promote 99999999999999999999999", `/stagehand promote: "99999999999999999999999" is not an execution number: it must be 1 to 1000000000; `+slashUsePromote),
		slashBad("promote negative", "/stagehand promote -4", `/stagehand promote: "-4" is not an execution number; `+slashUsePromote),
		slashBad("promote #", "/stagehand promote #", `/stagehand promote: "#" is not an execution number; `+slashUsePromote),
		slashBad("promote two numbers", "/stagehand promote 4 5", `/stagehand promote: unexpected "5": it takes one execution number at most; `+slashUsePromote),

		// approve
		slashOK("approve", "/stagehand approve", SlashCommand{Name: "approve"}),
		slashOK("approve N --rollback", "/stagehand approve 5 --rollback", SlashCommand{Name: "approve", Number: 5, Rollback: true}),
		slashOK("approve --rollback N", "/stagehand approve --rollback 5", SlashCommand{Name: "approve", Number: 5, Rollback: true}),
		slashOK("approve #N --ROLLBACK", "/stagehand approve #5 --ROLLBACK", SlashCommand{Name: "approve", Number: 5, Rollback: true}),
		slashBad("approve --rollbak", "/stagehand approve --rollbak", `/stagehand approve: "--rollbak" is not an option; `+slashUseApprove),
		slashBad("approve with an em dash", "/stagehand approve —rollback", `/stagehand approve: "—rollback" is not an option (options start with two hyphens, --); `+slashUseApprove),
		slashBad("approve --rollback twice", "/stagehand approve --rollback --rollback", "/stagehand approve: --rollback is given twice; "+slashUseApprove),
		slashBad("approve two numbers", "/stagehand approve 5 6", `/stagehand approve: unexpected "6": it takes one execution number at most; `+slashUseApprove),
		slashBad("approve word", "/stagehand approve it", `/stagehand approve: "it" is not an execution number; `+slashUseApprove),

		// reject
		slashOK("reject", "/stagehand reject", SlashCommand{Name: "reject"}),
		slashOK("reject N reason", "/stagehand reject 3 not ready yet", SlashCommand{Name: "reject", Number: 3, Reason: "not ready yet"}),
		slashOK("reject reason", "/stagehand reject not ready yet", SlashCommand{Name: "reject", Reason: "not ready yet"}),
		slashOK("reject keeps the reason as written", "/stagehand reject #3 needs  QA sign-off, see #12 ", SlashCommand{Name: "reject", Number: 3, Reason: "needs  QA sign-off, see #12"}),
		slashOK("reject reason starting with a word with digits", "/stagehand reject 3rd try failed", SlashCommand{Name: "reject", Reason: "3rd try failed"}),
		slashBad("reject 0", "/stagehand reject 0 wrong number", `/stagehand reject: "0" is not an execution number: it must be 1 to 1000000000; `+slashUseReject),
		slashBad("reject flag", "/stagehand reject 3 --force", `/stagehand reject: "--force" is not an option; `+slashUseReject),

		// schedule
		slashOK("schedule now", "/stagehand schedule now", SlashCommand{Name: "schedule", Now: true}),
		slashOK("schedule NOW N", "/stagehand schedule NOW 7", SlashCommand{Name: "schedule", Now: true, Number: 7}),
		slashOK("schedule time N", "/stagehand schedule 2026-12-01T10:00:00Z 7", SlashCommand{Name: "schedule", At: slashAt("2026-12-01T10:00:00Z"), Number: 7}),
		slashOK("schedule time with an offset", "/stagehand schedule 2026-12-01T12:00:00+02:00", SlashCommand{Name: "schedule", At: slashAt("2026-12-01T10:00:00Z")}),
		slashOK("schedule in the past is for the engine", "/stagehand schedule 2020-01-01T00:00:00Z #7", SlashCommand{Name: "schedule", At: slashAt("2020-01-01T00:00:00Z"), Number: 7}),
		slashBad("schedule tomorrow", "/stagehand schedule tomorrow", `/stagehand schedule: "tomorrow" is not a time; `+slashUseSchedule),
		slashBad("schedule without time", "/stagehand schedule", "/stagehand schedule: the time is missing; "+slashUseSchedule),
		slashBad("schedule number first", "/stagehand schedule 7 now", `/stagehand schedule: "7" is not a time; `+slashUseSchedule),
		slashBad("schedule not RFC 3339", "/stagehand schedule 2026-12-01", `/stagehand schedule: "2026-12-01" is not a time; `+slashUseSchedule),
		slashBad("schedule zero time", "/stagehand schedule 0001-01-01T00:00:00Z", `/stagehand schedule: "0001-01-01T00:00:00Z" is not a usable time; `+slashUseSchedule),
		slashBad("schedule two numbers", "/stagehand schedule now 7 8", `/stagehand schedule: unexpected "8": it takes one execution number at most; `+slashUseSchedule),
		slashBad("schedule bad number", "/stagehand schedule now x", `/stagehand schedule: "x" is not an execution number; `+slashUseSchedule),

		// restore production N
		slashOK("restore production", "/stagehand restore production #3", SlashCommand{Name: "restore", Environment: Production, Number: 3}),
		slashOK("restore, any case", "/stagehand Restore PRODUCTION 12", SlashCommand{Name: "restore", Environment: Production, Number: 12}),
		slashBad("restore stage", "/stagehand restore stage 3", "/stagehand restore: only production can be restored, not stage: stage runs whatever the latest stage-only or full-stack build deployed there; use /stagehand restore production N"),
		slashBad("restore without a number", "/stagehand restore production", "/stagehand restore: the execution number is missing; use /stagehand restore production N"),
		slashBad("restore without an environment", "/stagehand restore", "/stagehand restore: the environment is missing; use /stagehand restore production N"),
		slashBad("restore of something else", "/stagehand restore prod 3", `/stagehand restore: "prod" is not an environment (only production can be restored); use /stagehand restore production N`),
		slashBad("restore with two numbers", "/stagehand restore production 3 4", `/stagehand restore: unexpected "4": it takes the environment and one execution number; use /stagehand restore production N`),
		// deploy-now --override "reason" (break-glass)
		slashOK("deploy-now with a quoted reason", `/stagehand deploy-now --override "hotfix for the outage, INC-42"`, SlashCommand{Name: "deploy-now", Override: true, Reason: "hotfix for the outage, INC-42"}),
		slashOK("deploy-now with a number and words", `/stagehand deploy-now #7 --OVERRIDE payment provider down`, SlashCommand{Name: "deploy-now", Number: 7, Override: true, Reason: "payment provider down"}),
		slashOK("deploy-now with = and typographic quotes", "/stagehand deploy-now 3 --override=“CVE fix”", SlashCommand{Name: "deploy-now", Number: 3, Override: true, Reason: "CVE fix"}),
		slashBad("deploy-now without --override", "/stagehand deploy-now 7", "/stagehand deploy-now: "+slashDeployNowMissing+"; "+slashUseDeployNow),
		slashBad("deploy-now without a reason", "/stagehand deploy-now --override", "/stagehand deploy-now: "+slashNoReason+"; "+slashUseDeployNow),
		slashBad("deploy-now with an empty reason", `/stagehand deploy-now 7 --override ""`, "/stagehand deploy-now: "+slashNoReason+"; "+slashUseDeployNow),
		slashBad("deploy-now with another option", "/stagehand deploy-now --force", `/stagehand deploy-now: "--force" is not an option; `+slashUseDeployNow),
		slashBad("deploy-now with two numbers", `/stagehand deploy-now 7 8 --override "x"`, `/stagehand deploy-now: unexpected "8": it takes one execution number before --override; `+slashUseDeployNow),

		// cancel
		slashOK("cancel", "/stagehand cancel", SlashCommand{Name: "cancel"}),
		slashOK("cancel N", "/stagehand cancel 2", SlashCommand{Name: "cancel", Number: 2}),
		slashBad("cancel two numbers", "/stagehand cancel 2 3", `/stagehand cancel: unexpected "3": it takes one execution number at most; `+slashUseCancel),
		slashBad("cancel flag", "/stagehand cancel --all", `/stagehand cancel: "--all" is not an option; `+slashUseCancel),

		// status
		slashOK("status", "/stagehand status", SlashCommand{Name: "status"}),
		slashBad("status extra", "/stagehand status extra", `/stagehand status: unexpected "extra": it takes no arguments; `+slashUseStatus),
		slashBad("status flag", "/stagehand status --verbose", `/stagehand status: "--verbose" is not an option; `+slashUseStatus),

		// env
		slashOK("env list production", "/stagehand env list production", SlashCommand{Name: "env", EnvAction: "list", Environment: Production}),
		slashOK("env LIST Stage", "/stagehand env LIST Stage", SlashCommand{Name: "env", EnvAction: "list", Environment: Stage}),
		slashOK("env set", "/stagehand env set stage LOG_LEVEL=debug", SlashCommand{Name: "env", EnvAction: "set", Environment: Stage, Key: "LOG_LEVEL", Value: "debug"}),
		slashOK("env set value with =", "/stagehand env set stage OPTS=a=b", SlashCommand{Name: "env", EnvAction: "set", Environment: Stage, Key: "OPTS", Value: "a=b"}),
		slashOK("env set value is the rest of the line", "/stagehand env set stage GREETING=hello  world", SlashCommand{Name: "env", EnvAction: "set", Environment: Stage, Key: "GREETING", Value: "hello  world"}),
		slashOK("env set quoted value", `/stagehand env set production MSG="two  words"`, SlashCommand{Name: "env", EnvAction: "set", Environment: Production, Key: "MSG", Value: "two  words"}),
		slashOK("env set empty value", "/stagehand env set stage _EMPTY=", SlashCommand{Name: "env", EnvAction: "set", Environment: Stage, Key: "_EMPTY"}),
		slashOK("env unset", "/stagehand env unset production KEY", SlashCommand{Name: "env", EnvAction: "unset", Environment: Production, Key: "KEY"}),
		slashBad("env set without =", "/stagehand env set stage LOG_LEVEL", `/stagehand env set: "LOG_LEVEL" is not KEY=VALUE; `+slashUseEnvSet),
		slashBad("env set unknown environment", "/stagehand env set qa X=1", `/stagehand env set: "qa" is not an environment; `+slashUseEnvSet),
		slashBad("env set bad key", "/stagehand env set stage 1X=2", `/stagehand env set: "1X" is not a variable name (letters, digits and _, not starting with a digit); `+slashUseEnvSet),
		slashBad("env set empty key", "/stagehand env set stage =2", `/stagehand env set: "" is not a variable name (letters, digits and _, not starting with a digit); `+slashUseEnvSet),
		slashBad("env set without KEY=VALUE", "/stagehand env set stage", "/stagehand env set: KEY=VALUE is missing; "+slashUseEnvSet),
		slashBad("env unset bad key", "/stagehand env unset production 1BAD", `/stagehand env unset: "1BAD" is not a variable name (letters, digits and _, not starting with a digit); `+slashUseEnvUnset),
		slashBad("env unset KEY=VALUE", "/stagehand env unset production KEY=1", `/stagehand env unset: "KEY=1" is not a variable name (letters, digits and _, not starting with a digit); `+slashUseEnvUnset),
		slashBad("env unset without key", "/stagehand env unset stage", "/stagehand env unset: KEY is missing; "+slashUseEnvUnset),
		slashBad("env unset extra", "/stagehand env unset stage KEY OTHER", `/stagehand env unset: unexpected "OTHER": it takes only the environment and KEY; `+slashUseEnvUnset),
		slashBad("env list without environment", "/stagehand env list", "/stagehand env list: the environment is missing; "+slashUseEnvList),
		slashBad("env list extra", "/stagehand env list stage --all", `/stagehand env list: "--all" is not an option; `+slashUseEnvList),
		slashBad("env alone", "/stagehand env", "/stagehand env: list, set or unset is missing; "+slashUseEnv),
		slashBad("env unknown action", "/stagehand env show stage", `/stagehand env: "show" is not list, set or unset; `+slashUseEnv),

		// unknown commands
		slashBad("unknown command with suggestion", "/stagehand aprove", `"aprove" is not a command; did you mean /stagehand approve? /stagehand help lists the commands`),
		slashBad("unknown command in capitals with suggestion", "/stagehand STATSU", `"statsu" is not a command; did you mean /stagehand status? /stagehand help lists the commands`),
		slashBad("unknown command without suggestion", "/stagehand deploy now", `"deploy" `+slashUnknownCmd),
		slashBad("rerun is not a slash command", "/stagehand rerun 4", `"rerun" is not a command; did you mean /stagehand run? /stagehand help lists the commands`),

		// bare aliases and case
		slashBare(slashOK("bare alias on", "/promote 4", SlashCommand{Name: "promote", Number: 4})),
		slashNone("bare alias off", "/promote 4", false),
		slashBare(slashOK("bare alias in capitals", "/APPROVE #5 --rollback", SlashCommand{Name: "approve", Number: 5, Rollback: true})),
		slashBare(slashOK("stagehand form with bare aliases on", "/stagehand cancel", SlashCommand{Name: "cancel"})),
		slashBare(slashBad("bare alias with a wrong argument", "/promote x", `/stagehand promote: "x" is not an execution number; `+slashUsePromote)),
		slashNone("other slashes are not commands", "/etc/hosts is broken\n/shrug\n/aprove 5\n/\n/stagehandx status", true),
		slashOK("command word in capitals", "/STAGEHAND Promote #4", SlashCommand{Name: "promote", Number: 4}),

		// where commands are read
		{
			name: "fenced code block and quotes are ignored",
			body: "```\n/stagehand approve\n```\n> /stagehand approve\n>/stagehand cancel\n/stagehand status",
			cmds: []SlashCommand{{Name: "status", Line: 6, Raw: "/stagehand status"}},
		},
		{
			name: "a fence in a quote ends with the quote",
			body: "> ```\n> /stagehand cancel 1\n\n/stagehand cancel 2",
			cmds: []SlashCommand{{Name: "cancel", Line: 4, Raw: "/stagehand cancel 2", Number: 2}},
		},
		{
			name: "fences with info strings and tildes",
			body: "```console\n$ /stagehand cancel 1\n```\n~~~~\n/stagehand cancel 2\n~~~\n/stagehand cancel 3\n~~~~\n/stagehand cancel 4",
			cmds: []SlashCommand{{Name: "cancel", Line: 9, Raw: "/stagehand cancel 4", Number: 4}},
		},
		{
			name: "an unclosed fence runs to the end",
			body: "/stagehand approve 1\n  ```\n/stagehand approve 2",
			cmds: []SlashCommand{{Name: "approve", Line: 1, Raw: "/stagehand approve 1", Number: 1}},
		},
		{
			name: "inline code is not a fence",
			body: "```/stagehand cancel```\n/stagehand status",
			cmds: []SlashCommand{{Name: "status", Line: 2, Raw: "/stagehand status"}},
		},
		{
			name: "several commands in order with text around",
			body: "Looks good to me.\n\n/stagehand approve 5\nplease /stagehand cancel 6 later\n/stagehand aprove 6\n\t/stagehand schedule now 5  \nThanks!",
			cmds: []SlashCommand{
				{Name: "approve", Line: 3, Raw: "/stagehand approve 5", Number: 5},
				{Name: "schedule", Line: 6, Raw: "/stagehand schedule now 5", Now: true, Number: 5},
			},
			errs: []SlashError{{Line: 5, Raw: "/stagehand aprove 6", Message: `"aprove" is not a command; did you mean /stagehand approve? /stagehand help lists the commands`}},
		},
		{
			name: "CRLF line endings",
			body: "Ship it\r\n/stagehand promote #4\r\n/stagehand env set stage LOG_LEVEL=debug\r\n",
			cmds: []SlashCommand{
				{Name: "promote", Line: 2, Raw: "/stagehand promote #4", Number: 4},
				{Name: "env", Line: 3, Raw: "/stagehand env set stage LOG_LEVEL=debug", EnvAction: "set", Environment: Stage, Key: "LOG_LEVEL", Value: "debug"},
			},
		},
		slashOK("tabs between words", "/stagehand\tapprove\t5", SlashCommand{Name: "approve", Number: 5}),
		{
			name: "11 commands",
			body: strings.Join(elevenCancels, "\n"),
			cmds: tenCancels,
			errs: []SlashError{{Line: 11, Raw: "/stagehand cancel 11", Message: slashLimitMessage}},
		},
		{
			name: "errors count towards the limit and nothing is read after it",
			body: strings.Join(slashNumbered(11, "/stagehand bogus %d"), "\n") + "\n/stagehand status",
			errs: append(slashTen(func(i int) SlashError {
				return SlashError{Line: i + 1, Raw: fmt.Sprintf("/stagehand bogus %d", i+1), Message: `"bogus" ` + slashUnknownCmd}
			}), SlashError{Line: 11, Raw: "/stagehand bogus 11", Message: slashLimitMessage}),
		},
		slashNone("empty comment", "", false),
		slashNone("only text", "LGTM", true),
	}
}

func slashTen(f func(int) SlashError) []SlashError {
	out := make([]SlashError, 10)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestParseSlash(t *testing.T) {
	cases := slashCases()
	if len(cases) < 45 {
		t.Fatalf("the table has %d rows; it should cover every command with at least 45", len(cases))
	}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Errorf("two rows are named %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			cmds, errs := ParseSlash(c.body, c.bare)
			if diff := cmp.Diff(c.cmds, cmds); diff != "" {
				t.Errorf("ParseSlash(%q, %v) commands (-want +got):\n%s", c.body, c.bare, diff)
			}
			if diff := cmp.Diff(c.errs, errs); diff != "" {
				t.Errorf("ParseSlash(%q, %v) errors (-want +got):\n%s", c.body, c.bare, diff)
			}
		})
	}
}

func TestParseSlashCoversEveryCommand(t *testing.T) {
	valid, invalid := map[string]bool{}, map[string]bool{}
	for _, c := range slashCases() {
		for _, cmd := range c.cmds {
			valid[cmd.Name] = true
		}
		for _, e := range c.errs {
			for _, n := range SlashCommands.names() {
				if strings.HasPrefix(e.Message, "/stagehand "+n+":") || strings.HasPrefix(e.Message, "/stagehand "+n+" ") {
					invalid[n] = true
				}
			}
		}
	}
	for _, n := range SlashCommands.names() {
		if !valid[n] || !invalid[n] {
			t.Errorf("the table has no valid (%v) or no invalid (%v) %s command", valid[n], invalid[n], n)
		}
	}
}

// TestParseSlashBodyLimit checks that only whole lines of the first 64 KiB
// are read: a line the limit cuts is dropped, not read in part (where
// "/stagehand cancel 12" would become "/stagehand cancel 1").
func TestParseSlashBodyLimit(t *testing.T) {
	filler := strings.Repeat("x", slashMaxBody-len("/stagehand status\n")-len("/stagehand cancel 1"))
	for _, tc := range []struct {
		name string
		body string
		want []SlashCommand
	}{
		{
			name: "line cut by the limit",
			body: "/stagehand status\n" + filler + "\n/stagehand cancel 12",
			want: []SlashCommand{{Name: "status", Line: 1, Raw: "/stagehand status"}},
		},
		{
			name: "line ending at the limit",
			body: "/stagehand status\n" + filler[1:] + "\n/stagehand cancel 1\n/stagehand cancel 2",
			want: []SlashCommand{{Name: "status", Line: 1, Raw: "/stagehand status"}, {Name: "cancel", Line: 3, Raw: "/stagehand cancel 1", Number: 1}},
		},
		{
			name: "one long line",
			body: "/stagehand reject " + strings.Repeat("no ", slashMaxBody),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, errs := ParseSlash(tc.body, false)
			if diff := cmp.Diff(tc.want, cmds); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if len(errs) != 0 {
				t.Errorf("errors: %v", errs)
			}
		})
	}
}

func TestSlashErrorError(t *testing.T) {
	e := SlashError{Line: 3, Raw: "/stagehand aprove", Message: "\"aprove\" is not a command"}
	if got, want := e.Error(), `line 3: "aprove" is not a command`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSlashHelp(t *testing.T) {
	for _, bare := range []bool{false, true} {
		help := SlashHelp(bare)
		for _, n := range SlashCommands.names() {
			if !strings.Contains(help, "`/stagehand "+n) {
				t.Errorf("SlashHelp(%v) does not show /stagehand %s", bare, n)
			}
			if alias := "`/" + n + "`"; strings.Contains(help, alias) != bare {
				t.Errorf("SlashHelp(%v) shows %s: %v", bare, alias, !bare)
			}
		}
		for _, want := range []string{
			"[--from N]", "[--rollback]", "[reason]", "`now`", "RFC 3339", "`#4`",
			"env list <environment>", "env set <environment> KEY=VALUE", "env unset <environment> KEY",
			"write permission", "`approvers`", "`prevent_self_approval`",
		} {
			if !strings.Contains(help, want) {
				t.Errorf("SlashHelp(%v) does not mention %q", bare, want)
			}
		}
		// Every row of the Markdown table has its two cells: a "|" inside a
		// cell would split it.
		for _, line := range strings.Split(help, "\n") {
			if strings.HasPrefix(line, "|") && strings.Count(line, "|") != 3 {
				t.Errorf("SlashHelp(%v): table row %q does not have 2 cells", bare, line)
			}
		}
		// Every form the help shows parses.
		for _, line := range strings.Split(help, "\n") {
			if !strings.HasPrefix(line, "| `/") {
				continue
			}
			form := strings.Split(line, "`")[1]
			example := strings.NewReplacer("<pipeline>", "prod-only", "<environment>", "stage", "<time>", "now", "[N]", "4", "<N>", "4", "[--from N]", "--from 3",
				"[--rollback]", "--rollback", "[reason]", "not yet", "KEY=VALUE", "K=V", "KEY", "K").Replace(form)
			if cmds, errs := ParseSlash(example, false); len(cmds) != 1 || len(errs) != 0 {
				t.Errorf("SlashHelp(%v) shows %q, but its example %q gives %v, %v", bare, form, example, cmds, errs)
			}
		}
	}
}

func FuzzParseSlash(f *testing.F) {
	for _, c := range slashCases() {
		if len(c.body) < 4096 {
			f.Add(c.body, c.bare)
		}
	}
	f.Fuzz(func(t *testing.T, body string, bare bool) {
		cmds, errs := ParseSlash(body, bare)
		cmds2, errs2 := ParseSlash(body, bare)
		if diff := cmp.Diff(cmds, cmds2); diff != "" {
			t.Fatalf("commands differ between two calls:\n%s", diff)
		}
		if diff := cmp.Diff(errs, errs2); diff != "" {
			t.Fatalf("errors differ between two calls:\n%s", diff)
		}
		lines := strings.Split(body, "\n")
		if len(cmds) > slashMaxCommands || len(cmds)+len(errs) > slashMaxCommands+1 {
			t.Fatalf("%d commands and %d errors: more than the limit", len(cmds), len(errs))
		}
		used := map[int]bool{}
		checkLine := func(what string, line int, raw string, prev int) {
			t.Helper()
			if line < 1 || line > len(lines) || line <= prev {
				t.Fatalf("%s: line %d out of range or order (%d lines, previous %d)", what, line, len(lines), prev)
			}
			if used[line] {
				t.Fatalf("%s: line %d gives two results", what, line)
			}
			used[line] = true
			if want := strings.TrimSpace(lines[line-1]); raw != want || !strings.HasPrefix(raw, "/") {
				t.Fatalf("%s: Raw %q, but line %d is %q", what, raw, line, want)
			}
		}
		prev := 0
		for _, c := range cmds {
			checkLine("command "+c.Name, c.Line, c.Raw, prev)
			prev = c.Line
			if problem := checkSlashCommand(c); problem != "" {
				t.Fatalf("%+v: %s", c, problem)
			}
			// A command line means the same on its own.
			again, againErrs := ParseSlash(c.Raw, bare)
			want := c
			want.Line = 1
			if diff := cmp.Diff([]SlashCommand{want}, again); diff != "" || len(againErrs) != 0 {
				t.Fatalf("%q alone parses differently (%v):\n%s", c.Raw, againErrs, diff)
			}
		}
		prev = 0
		for i, e := range errs {
			checkLine("error", e.Line, e.Raw, prev)
			prev = e.Line
			if e.Message == "" || e.Error() == "" {
				t.Fatalf("error without a message: %+v", e)
			}
			if e.Message == slashLimitMessage {
				if i != len(errs)-1 || len(cmds)+len(errs) != slashMaxCommands+1 {
					t.Fatalf("limit error %+v with %d commands and %d errors", e, len(cmds), len(errs))
				}
				for _, c := range cmds {
					if c.Line > e.Line {
						t.Fatalf("command %+v after the limit error at line %d", c, e.Line)
					}
				}
				continue
			}
			again, againErrs := ParseSlash(e.Raw, bare)
			if len(again) != 0 || len(againErrs) != 1 || againErrs[0].Message != e.Message {
				t.Fatalf("%q alone gives %v, %v; want the error %q", e.Raw, again, againErrs, e.Message)
			}
		}
	})
}

// checkSlashCommand validates a parsed command again, field by field.
func checkSlashCommand(c SlashCommand) string {
	var numbered, env bool
	switch c.Name {
	case "help", "status":
	case "run":
		switch c.Pipeline {
		case StageOnly, FullStack:
			if c.From != 0 {
				return "--from on " + string(c.Pipeline)
			}
		case ProdOnly:
			if c.From < 0 || c.From > slashMaxNumber {
				return "From out of range"
			}
		default:
			return "unknown pipeline"
		}
	case "promote", "approve", "reject", "schedule", "cancel":
		numbered = true
	case "deploy-now":
		numbered = true
		if !c.Override || strings.TrimSpace(c.Reason) == "" {
			return "deploy-now without --override and a reason"
		}
	case "env":
		env = true
	case "restore":
		if c.Environment != Production || c.Number < 1 || c.Number > slashMaxNumber || c.EnvAction != "" || c.Key != "" || c.Value != "" {
			return "restore needs production and an execution number"
		}
		return ""
	default:
		return "unknown command name"
	}
	if c.Name != "run" && (c.Pipeline != "" || c.From != 0) {
		return "Pipeline or From outside run"
	}
	if c.Number < 0 || c.Number > slashMaxNumber || (!numbered && c.Number != 0) {
		return "bad Number"
	}
	if c.Rollback && c.Name != "approve" {
		return "Rollback outside approve"
	}
	if c.Override != (c.Name == "deploy-now") {
		return "Override outside deploy-now"
	}
	if c.Reason != "" && c.Name != "deploy-now" && (c.Name != "reject" || c.Reason != strings.TrimSpace(c.Reason) || slashOption(strings.Fields(c.Reason)[0])) {
		return "bad Reason"
	}
	if c.Name == "schedule" {
		if c.Now == !c.At.IsZero() || (!c.Now && c.At.Location() != time.UTC) {
			return "schedule needs exactly one of Now and a UTC At"
		}
	} else if c.Now || !c.At.IsZero() {
		return "Now or At outside schedule"
	}
	if !env {
		if c.EnvAction != "" || c.Environment != "" || c.Key != "" || c.Value != "" {
			return "env fields outside env"
		}
		return ""
	}
	if c.Environment != Stage && c.Environment != Production {
		return "bad Environment"
	}
	switch c.EnvAction {
	case "list":
		if c.Key != "" || c.Value != "" {
			return "Key or Value with env list"
		}
	case "set", "unset":
		if !slashValidKey(c.Key) || (c.EnvAction == "unset" && c.Value != "") {
			return "bad Key or Value"
		}
		for _, r := range c.Key {
			if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') || '0' <= c.Key[0] && c.Key[0] <= '9' {
				return "Key does not match [A-Za-z_][A-Za-z0-9_]*"
			}
		}
	default:
		return "bad EnvAction"
	}
	return ""
}
