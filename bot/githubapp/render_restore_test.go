package githubapp_test

import (
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// While production runs a restored build, Promote Build's confirmation of a
// build older than the one rolled back from says so explicitly (and keeps
// Confirm and Dismiss); a build that is not older gets the usual
// confirmation with the pin noted; without a pin nothing changes.
func TestRenderConfirmWhilePinnedByRestore(t *testing.T) {
	base := renderCases()["stage-only-promote"]
	base.PromoteRequested, base.HasProdOnly = true, true
	n := base.Execution.Number

	older := base
	older.RestorePin = bot.RestorePin{Restore: n + 3, Build: n - 1, From: n + 1}
	v := githubapp.RenderCheckRun(older)
	renderCheckLimits(t, v)
	for _, want := range []string{"pinned by restore of #", "older than #", "the build production was rolled back from", "confirm only if you mean to deploy an older build"} {
		if !strings.Contains(v.Summary, want) {
			t.Errorf("the confirmation of an older build does not say %q:\n%s", want, v.Summary)
		}
	}
	if !strings.Contains(v.Title, "older than the build rolled back from") {
		t.Errorf("title %q", v.Title)
	}
	if got := strings.Join(renderShapeOf(older).Actions, ","); got != "confirm=Confirm,dismiss=Dismiss" {
		t.Errorf("buttons %s", got)
	}

	same := base
	same.RestorePin = bot.RestorePin{Restore: n + 3, Build: n - 1, From: n}
	v = githubapp.RenderCheckRun(same)
	if strings.Contains(v.Summary, "older than #") || !strings.Contains(v.Summary, "📌 Production is pinned by restore of #") {
		t.Errorf("the confirmation of the build rolled back from:\n%s", v.Summary)
	}

	if plain := githubapp.RenderCheckRun(base); strings.Contains(plain.Summary, "pinned") || strings.Contains(plain.Summary, "older than") {
		t.Errorf("without a pin:\n%s", plain.Summary)
	}
}
