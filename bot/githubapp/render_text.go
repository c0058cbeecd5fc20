package githubapp

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// How the parts of a check run read: a step's log as a code block, states,
// durations, times and digests, messages quoted and cut to fit, and the
// whole view cut to GitHub's limits (renderLimits).

// renderLog is the check run's text: the tail of a step's log in a fenced
// block, cut at a line boundary to fit GitHub's limit, keeping the end.
func renderLog(s *bot.Step) string {
	log := renderANSI.ReplaceAllString(strings.ToValidUTF8(s.LogTail, "\uFFFD"), "")
	log = strings.TrimRight(log, "\r\n")
	fence := strings.Repeat("`", max(3, renderLongestRun(log, '`')+1))
	head := fmt.Sprintf("Last lines of the log of **%s**:", s.Name)
	build := func(head, log string) string {
		return head + "\n\n" + fence + "text\n" + log + "\n" + fence
	}
	if out := build(head, log); len(out) <= renderMaxOutput {
		return out
	}
	head = fmt.Sprintf("Last lines of the log of **%s** (truncated: the full log is on the dashboard):", s.Name)
	room := renderMaxOutput - len(build(head, ""))
	cut := log[len(log)-room:]
	if i := strings.IndexByte(cut, '\n'); i >= 0 && i < len(cut)-1 {
		cut = cut[i+1:]
	} else {
		for len(cut) > 0 && !utf8.RuneStart(cut[0]) {
			cut = cut[1:]
		}
	}
	return build(head, cut)
}

var renderANSI = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

func renderLongestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// renderLimits enforces GitHub's check-run limits, in this one place.
func renderLimits(v *CheckRunView) {
	const more = "\n\n… (truncated)"
	v.Title = strings.TrimSpace(v.Title)
	if len(v.Title) > renderMaxTitle {
		v.Title = renderCutBytes(v.Title, renderMaxTitle-len("…")) + "…"
	}
	if len(v.Summary) > renderMaxOutput {
		v.Summary = renderCutBytes(v.Summary, renderMaxOutput-len(more)) + more
	}
	if len(v.Text) > renderMaxOutput {
		// Logs matter at their end: keep the tail.
		const note = "(truncated) …\n"
		tail := v.Text[len(v.Text)-(renderMaxOutput-len(note)):]
		for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
			tail = tail[1:]
		}
		v.Text = note + tail
	}
	if v.Status != StatusCompleted {
		v.Actions = nil
	}
	if len(v.Actions) > renderMaxActions {
		v.Actions = v.Actions[:renderMaxActions]
	}
	for i, a := range v.Actions {
		v.Actions[i] = &github.CheckRunAction{
			Label:       renderCutRunes(a.Label, renderMaxLabel),
			Description: renderCutRunes(a.Description, renderMaxDescription),
			Identifier:  renderCutRunes(a.Identifier, renderMaxIdentifier),
		}
	}
	if len(v.Annotations) > renderMaxAnnotations {
		v.Annotations = v.Annotations[:renderMaxAnnotations]
	}
}

// renderCutBytes cuts s to at most n bytes at a rune boundary.
func renderCutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func renderCutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func renderCount(errs, warns int) string {
	var parts []string
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", errs, renderPlural(errs, "error", "errors")))
	}
	if warns > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", warns, renderPlural(warns, "warning", "warnings")))
	}
	return strings.Join(parts, ", ")
}

func renderPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func renderState(st bot.StepState) string {
	switch st {
	case bot.StepSucceeded:
		return "✅ succeeded"
	case bot.StepRunning:
		return "🔄 running"
	case bot.StepWaiting:
		return "⏸️ waiting"
	case bot.StepFailed:
		return "❌ failed"
	case bot.StepCancelled:
		return "⏹️ cancelled"
	case bot.StepSkipped:
		return "⏭️ skipped"
	case bot.StepPending, "":
		return "pending"
	}
	return renderInline(string(st))
}

// renderStepDuration is how long a step ran; running and waiting steps
// count up to now; steps that never started show "—".
func renderStepDuration(s bot.Step, now time.Time) string {
	if s.StartedAt.IsZero() {
		return "—"
	}
	end := s.FinishedAt
	if end.IsZero() {
		if (s.State != bot.StepRunning && s.State != bot.StepWaiting) || now.IsZero() {
			return "—"
		}
		end = now
	}
	return renderDuration(end.Sub(s.StartedAt))
}

// renderDuration: "0s", "45s", "1m 05s", "2h 03m".
func renderDuration(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func renderTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func renderDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// renderInline makes a message fit on one Markdown line.
func renderInline(s string) string { return strings.Join(strings.Fields(s), " ") }

// renderShort is a message's first line, at most renderShortTitle runes.
func renderShort(s string) string { return renderShortN(s, renderShortTitle) }

func renderShortN(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > n {
		return strings.TrimSpace(string([]rune(s)[:n-1])) + "…"
	}
	return s
}

// renderPrefixed is "prefix: msg", or msg alone when it already starts
// with prefix, or prefix alone without msg.
func renderPrefixed(prefix, msg string) string {
	msg = strings.TrimLeft(strings.TrimSpace(msg), ": ")
	switch {
	case msg == "":
		return prefix
	case strings.HasPrefix(msg, prefix):
		return msg
	}
	return prefix + ": " + msg
}

// renderQuoted is ":" and the message as a block quote (it may span
// lines), or "." without one.
func renderQuoted(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "."
	}
	lines := strings.Split(strings.ReplaceAll(msg, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("> "+l, " ")
	}
	return ":\n\n" + strings.Join(lines, "\n")
}

func renderSentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}
