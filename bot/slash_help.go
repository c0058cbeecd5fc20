package bot

import (
	"fmt"
	"strings"
)

// SlashHelp is the help text (Markdown) of SlashCommands: every command,
// its form, and who may use it. With bareAliases it also shows the short
// forms.
func SlashHelp(bareAliases bool) string {
	return SlashCommands.Help(bareAliases)
}

// Help is SlashHelp for the commands of r.
func (r Commands) Help(bareAliases bool) string {
	var b strings.Builder
	b.WriteString("**Stagehand commands**: write one per line in a new comment on an issue or pull request.\n\n")
	b.WriteString("| command | what it does |\n| --- | --- |\n")
	for _, c := range r {
		for _, row := range c.Help {
			fmt.Fprintf(&b, "| `%s` | %s |\n", row.Form, row.Text)
		}
	}
	b.WriteString("\nN is an execution number, `4` or `#4`; without it, promote takes the latest successful stage-only execution and the other commands the only execution they can apply to.")
	if bareAliases {
		// help comes last: whoever reads this has just used it.
		var short []string
		for _, c := range r {
			if c.Name != "help" {
				short = append(short, "`/"+c.Name+"`")
			}
		}
		if r.find("help") != nil {
			short = append(short, "`/help`")
		}
		fmt.Fprintf(&b, " Short forms work too: %s are the same as `/stagehand run` and so on.", wordList(short, " and "))
	}
	fmt.Fprintf(&b, " Commands in code blocks or quotes are not read, nor more than %d in one comment.\n\n", slashMaxCommands)
	b.WriteString("**Who may use them**: everyone with write permission (or higher) on the repository may use every command; it is checked again each time. ")
	var production []string
	for _, c := range r {
		if c.ProductionHelp != "" {
			production = append(production, c.ProductionHelp)
		}
	}
	fmt.Fprintf(&b, "Production actions — %s — ", wordList(production, ", and "))
	b.WriteString("also need membership in production's `approvers` when they are configured; `approve` and `reject` respect `prevent_self_approval`: then whoever started or promoted an execution may not approve it. ")
	b.WriteString("Who the approvers are, and every other rule, is read from `.github/stagehand.yml` on the default branch.\n")
	return b.String()
}

// ReadmeTable is the README's table of the slash commands (Markdown):
// a row per command, commands with the same effect sharing one.
func (r Commands) ReadmeTable() string {
	var b strings.Builder
	b.WriteString("| command | effect |\n| --- | --- |\n")
	for i := 0; i < len(r); {
		var forms []string
		j := i
		for ; j < len(r) && r[j].Effect == r[i].Effect; j++ {
			forms = append(forms, "`"+strings.ReplaceAll(r[j].Synopsis, "|", `\|`)+"`")
		}
		fmt.Fprintf(&b, "| %s | %s |\n", strings.Join(forms, ", "), r[i].Effect)
		i = j
	}
	return b.String()
}
