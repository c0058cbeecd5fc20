package githubapp

import (
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// renderQuorumState is where the execution's approval quorum stands; ok
// is false without a quorum (one approval suffices), where the check run
// reads as it always has.
func renderQuorumState(in RenderInput) (bot.QuorumState, bool) {
	if in.RequiredApprovals <= 1 {
		return bot.QuorumState{}, false
	}
	return bot.QuorumOf(in.RequiredApprovals, in.Events), true
}

// renderQuorum is the approval's paragraph about its quorum.
func renderQuorum(q bot.QuorumState) string {
	return fmt.Sprintf("👥 **%s.** This deploy needs %d distinct approvers (`approvers.required`); each counts once, so the Approve button stays for the others. A **Reject** by any approver ends it.",
		renderInline(q.String()), q.Required)
}

// renderBreakGlass says how a held deploy can start before its calendar
// opens. It is a command, not a button: a button carries no text, and the
// reason is mandatory (and a held check run is in progress, where GitHub
// shows no buttons).
func renderBreakGlass(in RenderInput) string {
	if in.BreakGlassOff {
		return "🔒 Break-glass is off here (`break_glass: false`): nobody can start it earlier."
	}
	return fmt.Sprintf("🔓 Break-glass: a production approver can start it now with `/stagehand deploy-now %d --override \"reason\"`; the reason is recorded and shown here.", in.Execution.Number)
}

// renderOverrides are the summary's paragraphs about break-glass
// overrides: who overrode the deploy windows and freezes, and why.
func renderOverrides(in RenderInput) []string {
	var out []string
	for _, ev := range bot.Overrides(in.Events) {
		out = append(out, fmt.Sprintf("🔓 **Break-glass override** of the deploy windows and freezes by **%s** at %s%s",
			renderInline(ev.Actor), renderTime(ev.At), renderQuoted(renderShortN(ev.Detail, 500))))
	}
	return out
}
