package bot

import (
	"strings"
)

// slashDeployNow parses `[N] --override "reason"`: everything after
// --override (or --override=) is the reason, without the quotes around it
// (straight or typographic). The reason is mandatory.
func slashDeployNow(cmd *SlashCommand, raw string, args []slashToken) string {
	for i, t := range args {
		if !slashOption(t.text) {
			if i > 0 {
				return slashExtra(t, "takes one execution number before --override")
			}
			var problem string
			if cmd.Number, problem = slashPositionalNumber(t); problem != "" {
				return problem
			}
			continue
		}
		flag, value, hasValue := strings.Cut(t.text, "=")
		if slashLower(flag) != "--override" {
			return slashNotOption(t.text)
		}
		cmd.Override = true
		rest := value
		if !hasValue {
			rest = ""
			if i+1 < len(args) {
				rest = raw[args[i+1].start:]
			}
		} else {
			rest = raw[t.start+len(flag)+1:]
		}
		cmd.Reason = slashUnquote(strings.TrimSpace(rest))
		if strings.TrimSpace(cmd.Reason) == "" {
			return `--override needs a reason, which is recorded and shown: --override "why it cannot wait"`
		}
		return ""
	}
	return `--override "reason" is missing: deploy-now is the break-glass override of deploy windows and freezes, and needs a reason (for a scheduled deploy, use /stagehand schedule now)`
}

// slashUnquote takes off one pair of quotes around s: "…", '…' or “…”.
func slashUnquote(s string) string {
	for _, q := range [][2]string{{`"`, `"`}, {`'`, `'`}, {"“", "”"}, {"„", "“"}} {
		if len(s) >= len(q[0])+len(q[1]) && strings.HasPrefix(s, q[0]) && strings.HasSuffix(s, q[1]) {
			return strings.TrimSpace(s[len(q[0]) : len(s)-len(q[1])])
		}
	}
	return s
}
