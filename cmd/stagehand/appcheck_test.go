package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// TestServeWarnsOfMissingPermissions: serve compares the App (GET /app)
// with what Stagehand needs at start; a permission and an event missing
// are each a warning naming the setting and the page where it is changed,
// and /readyz stays ready (the App can be fixed while the server runs).
func TestServeWarnsOfMissingPermissions(t *testing.T) {
	h := newHarness(t)
	perms := githubapp.NeededPermissionMap()
	delete(perms, "deployments")
	h.gh.SetAppSettings(testAppID, perms, []string{"check_run", "check_suite", "issue_comment", "push"})
	logs := h.startServe(t, "--github-web-url", h.gh.URL())
	settings := "settings=" + h.gh.URL() + "settings/apps/stagehand/permissions"
	for _, want := range []string{
		`the GitHub App lacks the permission Deployments: write (the App has none): Stagehand needs it`,
		`the GitHub App lacks the event repository (the App has not subscribed)`,
	} {
		waitFor(t, 30e9, "the warning "+want, func() bool {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "level=WARN") && strings.Contains(line, want) && strings.Contains(line, settings) {
					return true
				}
			}
			return false
		})
	}
	if code, _ := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz answers %d with the App short of permissions, want 200", code)
	}
	if strings.Contains(logs.String(), "has every permission and event") {
		t.Error("serve says the App has every permission")
	}
	h.gh.AssertNoErrors(t)
}
