package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SlashCommand is one fully parsed command line of a comment.
type SlashCommand struct {
	Name        string          // help, run, promote, approve, reject, schedule, cancel, status, env
	Line        int             // 1-based line in the comment
	Raw         string          // the line as written (trimmed)
	Pipeline    PipelineKind    // run
	From        int             // run prod-only --from N
	Number      int             // promote/approve/reject/schedule/cancel [N]; 0 = default
	Rollback    bool            // approve --rollback
	Reason      string          // reject [N] [reason...]
	At          time.Time       // schedule: an RFC 3339 time, in UTC; zero with Now = true for "now"
	Now         bool            // schedule now
	EnvAction   string          // env: list | set | unset
	Environment EnvironmentName // env
	Key, Value  string          // env set KEY=VALUE, env unset KEY
}

// SlashError is a line that looked like a command but could not be parsed
// fully. Message says what is wrong and the right form, for the reply.
type SlashError struct {
	Line    int
	Raw     string
	Message string
}

func (e SlashError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Message)
}

// Limits of ParseSlash.
const (
	// slashMaxBody is how much of a comment is read: the lines that end
	// after it are ignored (a line cut in two is dropped, not half read).
	slashMaxBody = 64 << 10
	// slashMaxCommands is how many command lines of a comment are read.
	slashMaxCommands = 10
	// slashMaxNumber is the largest execution number a command accepts.
	slashMaxNumber = 1_000_000_000
)

// slashNames lists the commands in the order help shows them.
var slashNames = []string{"help", "run", "promote", "approve", "reject", "schedule", "cancel", "status", "env"}

// slashUsage is the right form of each command, quoted in errors. It has
// no <placeholders>, which Markdown would take for HTML.
var slashUsage = map[string]string{
	"help":     "/stagehand help",
	"run":      "/stagehand run stage-only|full-stack or /stagehand run prod-only [--from N]",
	"promote":  "/stagehand promote [N]",
	"approve":  "/stagehand approve [N] [--rollback]",
	"reject":   "/stagehand reject [N] [reason]",
	"schedule": "/stagehand schedule now|TIME [N], TIME in RFC 3339 such as 2026-12-01T10:00:00Z",
	"cancel":   "/stagehand cancel [N]",
	"status":   "/stagehand status",
	"env":      "/stagehand env list|set|unset stage|production [KEY[=VALUE]]",
}

// slashEnvUsage is the right form of each env action.
var slashEnvUsage = map[string]string{
	"list":  "/stagehand env list stage|production",
	"set":   "/stagehand env set stage|production KEY=VALUE",
	"unset": "/stagehand env unset stage|production KEY",
}

const slashLimitMessage = "a comment may hold at most 10 commands: this line and the ones after it were not read; send them in another comment"

// ParseSlash finds the command lines of a comment: one command per line,
// written "/stagehand <cmd> ..." or, when bareAliases is true, "/<cmd> ..."
// for the known command names only (so "/etc/hosts" or "/shrug" are not
// commands). Lines inside fenced code blocks (``` or ~~~; an unclosed fence
// runs to the end of the comment) and lines quoted with ">" are ignored.
// Leading and trailing whitespace is ignored; the command word, flags,
// pipelines, environments, env actions and "now" are case-insensitive;
// "/stagehand" alone is "help".
//
// Only the first slashMaxBody bytes are read, and of them only whole lines.
// At most slashMaxCommands command lines (parsed or not) are read; the next
// one gives a single SlashError saying so and the rest are ignored.
//
// It returns the commands it fully parsed and the errors, each in line
// order; it never returns a half-parsed command.
func ParseSlash(body string, bareAliases bool) ([]SlashCommand, []SlashError) {
	if len(body) > slashMaxBody {
		cut := slashMaxBody
		if body[cut] != '\n' {
			cut = strings.LastIndexByte(body[:cut], '\n')
			if cut < 0 {
				cut = 0
			}
		}
		body = body[:cut]
	}
	var (
		cmds   []SlashCommand
		errs   []SlashError
		seen   int
		fence  byte // '`' or '~' inside a fenced code block
		fenceN int  // the length of its opening fence
	)
	for i, line := range strings.Split(body, "\n") {
		raw := strings.TrimSpace(line)
		if fence != 0 {
			if n := slashFence(raw, fence); n >= fenceN && n == len(raw) {
				fence = 0
			}
			continue
		}
		if strings.HasPrefix(raw, ">") { // a quote, and any fence in it, is not read
			continue
		}
		if n := slashOpensFence(raw); n > 0 {
			fence, fenceN = raw[0], n
			continue
		}
		name, args, ok := slashCommandWord(raw, bareAliases)
		if !ok {
			continue
		}
		seen++
		if seen > slashMaxCommands {
			errs = append(errs, SlashError{Line: i + 1, Raw: raw, Message: slashLimitMessage})
			break
		}
		cmd, msg := slashParse(name, raw, args)
		if msg != "" {
			errs = append(errs, SlashError{Line: i + 1, Raw: raw, Message: msg})
			continue
		}
		cmd.Line, cmd.Raw = i+1, raw
		cmds = append(cmds, cmd)
	}
	return cmds, errs
}

// slashFence returns how many c bytes s starts with.
func slashFence(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}

// slashOpensFence returns the length of the code fence raw opens, or 0. As
// in CommonMark, "```x```" is inline code, not a fence.
func slashOpensFence(raw string) int {
	if raw == "" || raw[0] != '`' && raw[0] != '~' {
		return 0
	}
	n := slashFence(raw, raw[0])
	if n < 3 || raw[0] == '`' && strings.Contains(raw[n:], "`") {
		return 0
	}
	return n
}

// slashToken is one whitespace-separated word of a line, with its place.
type slashToken struct {
	text  string
	start int // byte offset in the line
}

func slashTokens(s string) []slashToken {
	var toks []slashToken
	start := -1
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				toks = append(toks, slashToken{s[start:i], start})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		toks = append(toks, slashToken{s[start:], start})
	}
	return toks
}

// slashLower lowercases ASCII letters only, so that no Unicode case
// folding turns a foreign word into a command.
func slashLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

func slashKnown(name string) bool {
	for _, n := range slashNames {
		if n == name {
			return true
		}
	}
	return false
}

// slashCommandWord tells whether raw is a command line and returns its
// command word (lowercased; "help" for "/stagehand" alone, possibly unknown
// after "/stagehand") and its arguments.
func slashCommandWord(raw string, bareAliases bool) (string, []slashToken, bool) {
	if !strings.HasPrefix(raw, "/") {
		return "", nil, false
	}
	toks := slashTokens(raw)
	first := slashLower(toks[0].text)
	if first == "/stagehand" {
		if len(toks) == 1 {
			return "help", nil, true
		}
		return slashLower(toks[1].text), toks[2:], true
	}
	if name := first[1:]; bareAliases && slashKnown(name) {
		return name, toks[1:], true
	}
	return "", nil, false
}

// slashParse parses the arguments of one command; it returns the error
// message when they are not right.
func slashParse(name, raw string, args []slashToken) (SlashCommand, string) {
	if !slashKnown(name) {
		if s := slashSuggest(name); s != "" {
			return SlashCommand{}, fmt.Sprintf("%s is not a command; did you mean /stagehand %s? /stagehand help lists the commands", slashQuote(name), s)
		}
		return SlashCommand{}, fmt.Sprintf("%s is not a command; use help, run, promote, approve, reject, schedule, cancel, status or env (/stagehand help explains them)", slashQuote(name))
	}
	cmd := SlashCommand{Name: name}
	var problem string
	switch name {
	case "help", "status":
		if len(args) > 0 {
			problem = slashExtra(args[0], "takes no arguments")
		}
	case "run":
		problem = slashRun(&cmd, args)
	case "promote", "cancel":
		cmd.Number, problem = slashOptionalNumber(args)
	case "approve":
		problem = slashApprove(&cmd, args)
	case "reject":
		problem = slashReject(&cmd, raw, args)
	case "schedule":
		problem = slashSchedule(&cmd, args)
	case "env":
		problem = slashEnv(&cmd, raw, args)
	}
	if problem != "" {
		usage := slashUsage[name]
		if u, ok := slashEnvUsage[cmd.EnvAction]; ok {
			name, usage = name+" "+cmd.EnvAction, u
		}
		return SlashCommand{}, fmt.Sprintf("/stagehand %s: %s; use %s", name, problem, usage)
	}
	return cmd, ""
}

// slashOption tells whether a word is written as an option. Dashes that
// an editor made typographic ("—rollback") count, so that the error says
// what is wrong.
func slashOption(s string) bool {
	if len(s) > 1 && s[0] == '-' {
		return s[1] < '0' || s[1] > '9' // "-4" is a wrong number, not an option
	}
	return strings.HasPrefix(s, "—") || strings.HasPrefix(s, "–")
}

// slashExtra explains an argument a command does not take.
func slashExtra(t slashToken, what string) string {
	if slashOption(t.text) {
		return slashNotOption(t.text)
	}
	return fmt.Sprintf("unexpected %s: it %s", slashQuote(t.text), what)
}

func slashNotOption(s string) string {
	msg := fmt.Sprintf("%s is not an option", slashQuote(s))
	if s[0] != '-' {
		msg += " (options start with two hyphens, --)"
	}
	return msg
}

// slashNumber parses an execution number, "N" or "#N". looks is false when
// s is not written as a number at all.
func slashNumber(s string) (n int, looks bool, problem string) {
	d := strings.TrimPrefix(s, "#")
	if d == "" {
		return 0, false, fmt.Sprintf("%s is not an execution number", slashQuote(s))
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false, fmt.Sprintf("%s is not an execution number", slashQuote(s))
		}
		if n = n*10 + int(d[i]-'0'); n > slashMaxNumber {
			break
		}
	}
	if n < 1 || n > slashMaxNumber {
		return 0, true, fmt.Sprintf("%s is not an execution number: it must be 1 to %d", slashQuote(s), slashMaxNumber)
	}
	return n, true, ""
}

// slashPositionalNumber parses an argument that must be an execution number.
func slashPositionalNumber(t slashToken) (int, string) {
	if slashOption(t.text) {
		return 0, slashNotOption(t.text)
	}
	n, _, problem := slashNumber(t.text)
	return n, problem
}

func slashOptionalNumber(args []slashToken) (int, string) {
	if len(args) == 0 {
		return 0, ""
	}
	n, problem := slashPositionalNumber(args[0])
	if problem == "" && len(args) > 1 {
		problem = slashExtra(args[1], "takes one execution number at most")
	}
	return n, problem
}

func slashRun(cmd *SlashCommand, args []slashToken) string {
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

func slashApprove(cmd *SlashCommand, args []slashToken) string {
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

func slashSchedule(cmd *SlashCommand, args []slashToken) string {
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

// slashValidKey reports whether key matches [A-Za-z_][A-Za-z0-9_]*.
func slashValidKey(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return key != ""
}

func slashBadKey(key string) string {
	return fmt.Sprintf("%s is not a variable name (letters, digits and _, not starting with a digit)", slashQuote(key))
}

// slashQuote quotes a word of the comment for a message, shortened when long.
func slashQuote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// slashSuggest returns the command closest to word when it is at most two
// edits away, or "".
func slashSuggest(word string) string {
	best, bestD := "", 3
	if len(word) > len("schedule")+2 {
		return ""
	}
	for _, n := range slashNames {
		if d := slashDistance(word, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// slashDistance is the Levenshtein distance between a and b, in bytes.
func slashDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// SlashHelp is the help text (Markdown): every command, its form, and who
// may use it. With bareAliases it also shows the short forms.
func SlashHelp(bareAliases bool) string {
	var b strings.Builder
	b.WriteString("**Stagehand commands**: write one per line in a new comment on an issue or pull request.\n\n")
	b.WriteString("| command | what it does |\n| --- | --- |\n")
	rows := [][2]string{
		{"/stagehand help", "lists these commands and who may use them"},
		{"/stagehand run <pipeline> [--from N]", "starts `stage-only` or `full-stack` at the head of its branch, or `prod-only` from the latest successful stage-only execution (`--from N`: from execution N)"},
		{"/stagehand promote [N]", "promotes a successful stage-only execution to production, like the Promote Build button (default: the latest successful one)"},
		{"/stagehand approve [N] [--rollback]", "approves an execution waiting for approval; `--rollback` is needed when its deploy would roll production back"},
		{"/stagehand reject [N] [reason]", "rejects an execution waiting for approval; it ends cancelled"},
		{"/stagehand schedule <time> [N]", "sets when a scheduled production deploy runs: an RFC 3339 time such as `2026-12-01T10:00:00Z`, or `now`"},
		{"/stagehand cancel [N]", "cancels a queued, running or waiting execution"},
		{"/stagehand status", "shows the pipelines, the active and queued executions, and what runs on stage and production"},
		{"/stagehand env list <environment>", "lists the variables of `stage` or `production`"},
		{"/stagehand env set <environment> KEY=VALUE", "sets a variable for the next deployment (refused while an execution holds the environment)"},
		{"/stagehand env unset <environment> KEY", "removes a variable (refused while an execution holds the environment)"},
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s |\n", r[0], r[1])
	}
	b.WriteString("\nN is an execution number, `4` or `#4`; without it, promote takes the latest successful stage-only execution and the other commands the only execution they can apply to.")
	if bareAliases {
		b.WriteString(" Short forms work too: `/run`, `/promote`, `/approve`, `/reject`, `/schedule`, `/cancel`, `/status`, `/env` and `/help` are the same as `/stagehand run` and so on.")
	}
	b.WriteString(" Commands in code blocks or quotes are not read, nor more than 10 in one comment.\n\n")
	b.WriteString("**Who may use them**: everyone with write permission (or higher) on the repository may use every command; it is checked again each time. ")
	b.WriteString("Production actions — `approve` (also with `--rollback`), `reject`, `schedule` (and the Deploy Now button), `cancel` of an execution that holds production, and `env set`/`env unset production` — ")
	b.WriteString("also need membership in production's `approvers` when they are configured; `approve` and `reject` respect `prevent_self_approval`: then whoever started or promoted an execution may not approve it. ")
	b.WriteString("Who the approvers are, and every other rule, is read from `.github/stagehand.yml` on the default branch.\n")
	return b.String()
}
