package main

import (
	"strings"
	"testing"
)

// TestDashboardSignInInBrowser: in headless Chromium against serve with
// sign-in configured (GitHub played by the stand-in, where alice is signed
// in and may read Codertocat/Hello-World): opening the dashboard goes
// through GitHub's authorize page and back, signed in; the program shows;
// Sign out ends it; the program's page then sends the browser to sign in
// (to GitHub's sign-in page, alice having signed out of GitHub too).
func TestDashboardSignInInBrowser(t *testing.T) {
	chromium := needChromium(t)
	h := newHarness(t)
	h.withProgram(t)
	h.startServe(t, h.signInArgs(t)...)
	h.gh.SignInOnWeb("alice")
	tr := newTour(t, chromium, "http://"+h.addr)

	// Sign in: / sends the browser to GitHub and back.
	tr.open("open the dashboard", "/")
	if who := tr.eval("read who is signed in", `document.getElementById("viewer")?.innerText ?? ""`); who != "alice" {
		tr.fail("read who is signed in", "the page says %q is signed in, want alice", who)
	}
	// See the program.
	if text := tr.pageText(); !strings.Contains(text, "Codertocat/Hello-World") {
		tr.fail("see the program", "the program list lacks Codertocat/Hello-World")
	}
	tr.open("open the program", "/programs/Codertocat/Hello-World")
	if title := tr.eval("read the program's heading", `document.querySelector("main h1")?.innerText ?? ""`); !strings.Contains(title, "Codertocat/Hello-World") {
		tr.fail("open the program", "heading %q", title)
	}
	if body := tr.fetch("read the API as alice", "/api/v1/programs"); !strings.Contains(body, `"full_name": "Codertocat/Hello-World"`) {
		tr.fail("read the API as alice", "GET /api/v1/programs: %s", body)
	}

	// Sign out.
	tr.click("click Sign out", "#sign-out")
	if loc := tr.location(); !strings.HasSuffix(loc, "/auth/signed-out") || !strings.Contains(tr.pageText(), "You are signed out of Stagehand") {
		tr.fail("click Sign out", "at %s, want the signed-out page", loc)
	}
	if body := tr.fetch("read the API after signing out", "/api/v1/programs"); !strings.HasPrefix(body, "401 ") || strings.Contains(body, "Hello-World") {
		tr.fail("read the API after signing out", "GET /api/v1/programs: %s, want 401", body)
	}

	// Be sent to sign in: the program's page goes to GitHub, where nobody
	// is signed in any more.
	h.gh.SignInOnWeb("")
	tr.open("open the program after signing out", "/programs/Codertocat/Hello-World")
	loc := tr.location()
	if !strings.HasPrefix(loc, h.gh.URL()+"login/oauth/authorize?") || !strings.Contains(tr.pageText(), "Sign in to GitHub") {
		tr.fail("open the program after signing out", "at %s, want GitHub's sign-in page", loc)
	}
	if strings.Contains(tr.pageText(), "Hello-World") {
		tr.fail("open the program after signing out", "the page names the program")
	}
	h.gh.AssertNoErrors(t)
}
