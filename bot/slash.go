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
	Name        string          // help, run, promote, approve, reject, schedule, deploy-now, cancel, status, env
	Line        int             // 1-based line in the comment
	Raw         string          // the line as written (trimmed)
	Pipeline    PipelineKind    // run
	From        int             // run prod-only --from N
	Number      int             // promote/approve/reject/schedule/cancel [N]; 0 = default
	Rollback    bool            // approve --rollback
	Reason      string          // reject [N] [reason...]; deploy-now --override "reason"
	Override    bool            // deploy-now --override
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
// order; it never returns a half-parsed command. It reads the commands of
// SlashCommands; Commands.Parse reads those of another registry.
func ParseSlash(body string, bareAliases bool) ([]SlashCommand, []SlashError) {
	return SlashCommands.Parse(body, bareAliases)
}

// Parse is ParseSlash for the commands of r.
func (r Commands) Parse(body string, bareAliases bool) ([]SlashCommand, []SlashError) {
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
		name, args, ok := r.commandWord(raw, bareAliases)
		if !ok {
			continue
		}
		seen++
		if seen > slashMaxCommands {
			errs = append(errs, SlashError{Line: i + 1, Raw: raw, Message: slashLimitMessage})
			break
		}
		cmd, msg := r.parse(name, raw, args)
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

// slashCommandWord tells whether raw is a command line and returns its
// command word (lowercased; "help" for "/stagehand" alone, possibly unknown
// after "/stagehand") and its arguments.
func (r Commands) commandWord(raw string, bareAliases bool) (string, []slashToken, bool) {
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
	if name := first[1:]; bareAliases && r.find(name) != nil {
		return name, toks[1:], true
	}
	return "", nil, false
}

// parse parses the arguments of one command; it returns the error message
// when they are not right.
func (r Commands) parse(name, raw string, args []slashToken) (SlashCommand, string) {
	c := r.find(name)
	if c == nil {
		if s := r.suggest(name); s != "" {
			return SlashCommand{}, fmt.Sprintf("%s is not a command; did you mean /stagehand %s? /stagehand help lists the commands", slashQuote(name), s)
		}
		return SlashCommand{}, fmt.Sprintf("%s is not a command; use %s (/stagehand help explains them)", slashQuote(name), wordList(r.names(), " or "))
	}
	cmd := SlashCommand{Name: name}
	problem := ""
	if c.Parse != nil {
		problem = c.Parse(&cmd, raw, args)
	} else if len(args) > 0 {
		problem = slashExtra(args[0], "takes no arguments")
	}
	if problem != "" {
		usage := c.Usage
		if u, ok := c.ActionUsage[cmd.EnvAction]; ok {
			name, usage = name+" "+cmd.EnvAction, u
		}
		return SlashCommand{}, fmt.Sprintf("/stagehand %s: %s; use %s", name, problem, usage)
	}
	return cmd, ""
}

// wordList is words joined by ", ", last before the last one: "a, b or c"
// with last " or ".
func wordList(words []string, last string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + last + words[len(words)-1]
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

// suggest returns the command closest to word when it is at most two
// edits away, or "".
func (r Commands) suggest(word string) string {
	best, bestD := "", 3
	longest := 0
	for _, c := range r {
		longest = max(longest, len(c.Name))
	}
	if len(word) > longest+2 {
		return ""
	}
	for _, c := range r {
		if d := slashDistance(word, c.Name); d < bestD {
			best, bestD = c.Name, d
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
