package githubapp

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// The check runs of a commit's .github/stagehand.yml: stagehand/config.

// ConfigCheckRun renders the stagehand/config check run of a commit: one
// annotation per diagnostic (at most 50, errors first; the summary says how
// many more there are), errors as failure annotations and warnings as
// warning annotations. Conclusion: failure with any error (nothing starts),
// neutral with warnings only, success without diagnostics.
func ConfigCheckRun(sha string, diags bot.Diagnostics) CheckRunView {
	v := CheckRunView{Name: "stagehand/config", HeadSHA: sha, Status: StatusCompleted, Conclusion: ConclusionSuccess}
	errs, warns := len(diags.Errors()), len(diags.Warnings())
	var b strings.Builder
	switch {
	case errs > 0:
		v.Conclusion = ConclusionFailure
		v.Title = fmt.Sprintf("%s is invalid: %s", bot.ConfigPath, renderCount(errs, warns))
		fmt.Fprintf(&b, "❌ `%s` at `%s` is invalid, so no pipeline starts for this commit. `stagehand validate %s` prints the same errors.\n\n", bot.ConfigPath, bot.ShortSHA(sha), bot.ConfigPath)
	case warns > 0:
		v.Conclusion = ConclusionNeutral
		v.Title = fmt.Sprintf("%s is valid, with %s", bot.ConfigPath, renderCount(0, warns))
		fmt.Fprintf(&b, "⚠️ `%s` at `%s` is valid, with warnings.\n\n", bot.ConfigPath, bot.ShortSHA(sha))
	default:
		v.Title = bot.ConfigPath + " is valid"
		fmt.Fprintf(&b, "✅ `%s` at `%s` is valid.\n\n", bot.ConfigPath, bot.ShortSHA(sha))
	}
	renderDiagnostics(&v, &b, diags)
	v.Summary = b.String()
	renderLimits(&v)
	return v
}

// renderDiagnostics lists diags in file order in the summary b and
// annotates them on v: errors first, then warnings, each in file order, at
// most renderMaxAnnotations (b says how many more there are).
func renderDiagnostics(v *CheckRunView, b *strings.Builder, diags bot.Diagnostics) {
	sorted := slices.Clone(diags)
	slices.SortStableFunc(sorted, func(a, b bot.Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	for _, d := range sorted {
		fmt.Fprintf(b, "- `%s:%d:%d` %s: %s\n", cmp.Or(d.Path, bot.ConfigPath), d.Line, d.Column, d.Severity, renderInline(d.Message))
	}
	annotated := append(sorted.Errors(), sorted.Warnings()...)
	if extra := len(annotated) - renderMaxAnnotations; extra > 0 {
		fmt.Fprintf(b, "\n%d more %s not annotated on the file: GitHub takes at most %d annotations.\n", extra, renderPlural(extra, "problem is", "problems are"), renderMaxAnnotations)
		annotated = annotated[:renderMaxAnnotations]
	}
	for _, d := range annotated {
		line := max(d.Line, 1)
		a := &github.CheckRunAnnotation{
			Path:            github.String(cmp.Or(d.Path, bot.ConfigPath)),
			StartLine:       github.Int(line),
			EndLine:         github.Int(line),
			AnnotationLevel: github.String("failure"),
			Title:           github.String("invalid configuration"),
			Message:         github.String(d.Message),
		}
		if d.Severity == bot.SeverityWarning {
			a.AnnotationLevel, a.Title = github.String("warning"), github.String("configuration warning")
		}
		if d.Column > 0 {
			a.StartColumn, a.EndColumn = github.Int(d.Column), github.Int(d.Column)
		}
		v.Annotations = append(v.Annotations, a)
	}
}

// PolicyElsewhereCheckRun tells the author of a push to a branch other than
// the default one, whose .github/stagehand.yml declares pipelines, that
// policy (pipelines, triggers, gates, approvers, variables) is read from
// the default branch only: completed, neutral. The file's warnings, if
// any, are listed and annotated as ConfigCheckRun would.
func PolicyElsewhereCheckRun(sha, branch, defaultBranch string, warnings bot.Diagnostics) CheckRunView {
	v := CheckRunView{Name: "stagehand/config", HeadSHA: sha, Status: StatusCompleted, Conclusion: ConclusionNeutral}
	v.Title = "policy is read from the default branch, " + defaultBranch
	v.Summary = fmt.Sprintf("ℹ️ `%s` at `%s` on `%s` declares pipelines, but Stagehand reads its policy (pipelines, triggers, approval, schedules, approvers, variables) only from the default branch, `%s`. "+
		"This commit's file supplies only the commands (build, artifacts, deploy, tests) when a pipeline of the default branch's file runs it. "+
		"To change the policy, change `%s` on `%s` through its usual review.\n",
		bot.ConfigPath, bot.ShortSHA(sha), branch, defaultBranch, bot.ConfigPath, defaultBranch)
	if len(warnings) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "\n⚠️ The file has %s:\n\n", renderCount(0, len(warnings)))
		renderDiagnostics(&v, &b, warnings)
		v.Summary += b.String()
	}
	renderLimits(&v)
	return v
}
