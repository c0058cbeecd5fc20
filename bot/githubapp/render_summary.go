package githubapp

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

// The check run's Markdown summary: the execution's steps as a table, then
// its activity (who triggered, promoted, approved, …).

func renderSummary(in RenderInput, steps []bot.Step, phase renderPhase, intro []string) string {
	ex := in.Execution
	var b strings.Builder
	if ex.Rollback != "" {
		w := renderInline(ex.Rollback)
		if strings.HasPrefix(w, "would ") {
			w = "This deploy " + w
		} else {
			w = "This deploy would roll production back: " + w
		}
		if phase == renderApproval {
			fmt.Fprintf(&b, "> ⚠️ **%s**\n>\n> Production runs a commit that this one does not descend from. Deploying it needs an explicit **Approve Rollback**.\n\n", renderSentence(w))
		} else {
			fmt.Fprintf(&b, "⚠️ %s\n\n", renderSentence(w))
		}
	}
	head := "**" + ex.String() + "**"
	if in.DetailsURL != "" {
		head = "**[" + ex.String() + "](" + in.DetailsURL + ")**"
	}
	if in.Program.Owner != "" {
		head += " of " + in.Program.FullName()
	}
	if ex.Commit != "" {
		head += " at `" + bot.ShortSHA(ex.Commit) + "`"
	}
	if ex.Branch != "" {
		head += " (" + renderInline(ex.Branch) + ")"
	}
	b.WriteString(head + "\n\n")
	if in.Phase > 0 {
		fmt.Fprintf(&b, "_Check run %d of this execution: it continues after the gate that completed the previous one._\n\n", in.Phase+1)
	}
	if ex.Pipeline == bot.ProdOnly {
		digest := ex.ArtifactDigest
		src := "its source stage-only execution"
		if in.Source != nil {
			digest = cmp.Or(in.Source.ArtifactDigest, digest)
			src = in.Source.String()
			if in.Source.Commit != "" {
				src += " (`" + bot.ShortSHA(in.Source.Commit) + "`)"
			}
		}
		if digest != "" {
			fmt.Fprintf(&b, "Deploys the artifact set `%s` of %s.\n\n", renderDigest(digest), src)
		} else {
			fmt.Fprintf(&b, "Deploys the artifact set of %s.\n\n", src)
		}
	} else if ex.ArtifactDigest != "" {
		fmt.Fprintf(&b, "Artifact set `%s`.\n\n", renderDigest(ex.ArtifactDigest))
	}
	for _, p := range intro {
		b.WriteString(p + "\n\n")
	}
	for _, p := range renderOverrides(in) {
		b.WriteString(p + "\n\n")
	}

	b.WriteString("| step | state | duration |\n| --- | --- | --- |\n")
	for _, s := range steps {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, renderState(s.State), renderStepDuration(s, in.Now))
	}

	if acts := renderActivity(in); len(acts) > 0 {
		b.WriteString("\n**Activity**\n\n")
		for _, a := range acts {
			b.WriteString("- " + a + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// renderActivity lists who did what to the execution, oldest first.
func renderActivity(in RenderInput) []string {
	ex := in.Execution
	evs := slices.Clone(in.Events)
	slices.SortStableFunc(evs, func(a, b bot.Event) int { return a.At.Compare(b.At) })
	var out []string
	if len(evs) == 0 {
		if ex.TriggeredBy != "" {
			line := "**" + renderInline(ex.TriggeredBy) + "** started it"
			if ex.Cause != "" {
				line += " (" + string(ex.Cause) + ")"
			}
			if !ex.CreatedAt.IsZero() {
				line = "`" + renderTime(ex.CreatedAt) + "` " + line
			}
			out = append(out, line)
		}
		return out
	}
	if len(evs) > renderMaxEvents {
		out = append(out, fmt.Sprintf("… %d earlier events are on the dashboard", len(evs)-renderMaxEvents))
		evs = evs[len(evs)-renderMaxEvents:]
	}
	for _, ev := range evs {
		var did string
		switch ev.Kind {
		case bot.EventTriggered:
			did = "triggered it"
		case bot.EventPromoted:
			did = "promoted it"
		case bot.EventApproved:
			did = "approved it"
		case bot.EventApprovedRollback:
			did = "approved the rollback"
		case bot.EventRejected:
			did = "rejected it"
		case bot.EventScheduled:
			did = "scheduled the production deploy"
		case bot.EventCancelled:
			did = "cancelled it"
		case bot.EventPolicyOverride:
			did = "overrode the deploy windows and freezes (break-glass)"
		default:
			did = renderInline(string(ev.Kind))
		}
		line := "`" + renderTime(ev.At) + "` **" + renderInline(cmp.Or(ev.Actor, "someone")) + "** " + did
		if d := renderInline(renderShortN(ev.Detail, 200)); d != "" {
			line += " (" + d + ")"
		}
		out = append(out, line)
	}
	return out
}
