package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
)

// TestSetupInBrowser: in headless Chromium, the setup page's one click
// posts the manifest to GitHub (the stand-in, where alice is signed in and
// approves at once), comes back to the page with the code and the state
// (in the URL and the page's cookie), and setup stores the App; the page
// links to the install URL.
func TestSetupInBrowser(t *testing.T) {
	chromium := needChromium(t)
	gh := githubtest.New(t)
	gh.AddUser("alice")
	gh.SignInOnWeb("alice")
	dir := filepath.Join(t.TempDir(), "data")
	r := startSetup(t, gh, "--public-url", "https://stagehand.example.com", "--data-dir", dir)
	tr := newTour(t, chromium, "http://"+r.addr)

	tr.open("open the setup page", "/")
	if text := tr.pageText(); !strings.Contains(text, "https://stagehand.example.com/webhooks") || !strings.Contains(text, "Checks: write") {
		tr.fail("open the setup page", "the page does not show the webhook URL and the permissions")
	}
	// "Stagehand" is surely taken on github.com: GitHub's form says so,
	// and the name is changed there.
	if text := tr.pageText(); !strings.Contains(text, "if its form says this one is in use, change it there and press Create again") {
		tr.fail("open the setup page", "the page does not say what to do when GitHub finds the name in use")
	}
	tr.click("click Create", "#create")
	if loc := tr.location(); !strings.HasPrefix(loc, "http://"+r.addr+"/setup/done?") {
		tr.fail("click Create", "at %s, want the way back to the setup page", loc)
	}
	install := tr.eval("read the install link", `document.getElementById("install")?.href ?? ""`)
	if install != gh.URL()+"apps/stagehand/installations/new" {
		tr.fail("read the install link", "the install link is %q", install)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("setup: %v", err)
	}
	r.done <- nil
	if !fileExists(filepath.Join(dir, config.StoredPrivateKeyFile)) {
		t.Error("setup stored no private key")
	}
	if n := len(gh.CreatedApps()); n != 1 {
		t.Errorf("%d Apps created, want 1", n)
	}
	gh.AssertNoErrors(t)
}
