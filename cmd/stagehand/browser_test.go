package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestPlaygroundTourInBrowser is the tour a newcomer takes, clicked
// through in a real headless Chromium against the real playground binary:
// Push a change, watch stage-only succeed, Promote Build, Confirm, Approve
// the prod-only execution, and see production serve the very build stage
// serves.
//
// It runs when Chromium is installed (/usr/bin/chromium or chromium on
// PATH) and skips otherwise; with STAGEHAND_TEST_BROWSER=1 (CI) a missing
// Chromium is a failure. With STAGEHAND_UPDATE_SCREENSHOTS=1 it also
// writes docs/execution.png and docs/environments.png.
func TestPlaygroundTourInBrowser(t *testing.T) {
	chromium := needChromium(t)
	base, dataDir := startPlayground(t)
	// At the address the playground prints (localhost): its dashboard signs
	// the visitor in there, through the stand-in's GitHub pages, the first
	// time a dashboard page is opened.
	tr := newTour(t, chromium, strings.Replace(base, "127.0.0.1", "localhost", 1))

	// 1. The guide page: Push a change.
	tr.open("open the playground guide", "/playground")
	tr.click("click Push a change on /playground", "#push")

	// 2. The stage-only execution builds once, deploys stage and tests it.
	exec1 := "/programs/playground/shop/executions/1"
	tr.reloadUntil("wait for stage-only #1 to succeed", exec1, 90*time.Second, func() (bool, error) {
		return tr.executionState("stage-only #1", "succeeded")
	})
	commit := tr.apiCommit("read the commit of execution 1", 1)
	if shown := tr.eval("read the commit on execution 1's page", `(() => {
		for (const dt of document.querySelectorAll("dl.facts dt")) {
			if (dt.textContent.trim() === "commit") return dt.nextElementSibling.innerText.trim();
		}
		return "";
	})()`); shown != commit {
		tr.fail("read the commit on execution 1's page", "the page shows commit %q, the API %q", shown, commit)
	}

	// 3. Promote Build, then Confirm: the prod-only execution starts.
	tr.reloadUntil("wait for the Promote Build button on execution 1", exec1, 60*time.Second, tr.present(`button[data-action="promote"]`))
	tr.click("click Promote Build on execution 1", `button[data-action="promote"]`)
	tr.reloadUntil("wait for the Confirm button on execution 1", exec1, 60*time.Second, tr.present(`button[data-action="confirm"]`))
	tr.click("click Confirm on execution 1", `button[data-action="confirm"]`)

	// 4. The prod-only execution waits for approval: Approve.
	exec2 := "/programs/playground/shop/executions/2"
	tr.reloadUntil("wait for the Approve button on prod-only #2", exec2, 90*time.Second, func() (bool, error) {
		if ok, err := tr.executionState("prod-only #2", ""); !ok || err != nil {
			return ok, err
		}
		return tr.present(`button[data-action="approve"]`)()
	})
	tr.click("click Approve on prod-only #2", `button[data-action="approve"]`)
	tr.reloadUntil("wait for prod-only #2 to succeed", exec2, 120*time.Second, func() (bool, error) {
		return tr.executionState("prod-only #2", "succeeded")
	})

	// The production deploy used the secret the playground set up: its
	// page shows the masked line, never the value.
	secret, err := os.ReadFile(filepath.Join(dataDir, "playground", "secrets", "playground", "shop", "production", "DEPLOY_TOKEN"))
	if err != nil || len(secret) == 0 {
		tr.fail("read the playground's sample secret", "%v", err)
	}
	page := tr.eval("read prod-only #2's page", `document.body.innerText`)
	if !strings.Contains(page, "authorized with DEPLOY_TOKEN=***") || strings.Contains(page, string(secret)) {
		tr.fail("check the production deploy's log on prod-only #2's page", "want the line %q and never the secret's value; the page says:\n%s", "authorized with DEPLOY_TOKEN=***", page)
	}

	// 5. Production serves the build stage-only made, at the pushed commit.
	tr.open("open the stage site", "/playground/sites/stage/")
	stageBuild := tr.eval("read the stage site's build id", `document.getElementById("build")?.innerText.trim() ?? ""`)
	stageCommit := tr.eval("read the stage site's commit", `document.getElementById("commit")?.innerText.trim() ?? ""`)
	tr.open("open the production site", "/playground/sites/production/")
	prodBuild := tr.eval("read the production site's build id", `document.getElementById("build")?.innerText.trim() ?? ""`)
	prodCommit := tr.eval("read the production site's commit", `document.getElementById("commit")?.innerText.trim() ?? ""`)
	if stageBuild == "" || prodBuild != stageBuild {
		tr.fail("compare the production site with the stage site", "production serves build %q, stage build %q: want the same, non-empty build id (built once, promoted)", prodBuild, stageBuild)
	}
	if prodCommit == "" || !strings.HasPrefix(commit, prodCommit) || len(prodCommit) < 7 {
		tr.fail("check the production site's commit", "production shows commit %q, want the pushed change's commit %s (its first 7 characters)", prodCommit, commit)
	}
	if stageCommit != prodCommit {
		tr.fail("check the stage site's commit", "stage shows commit %q, production %q", stageCommit, prodCommit)
	}
	t.Logf("production serves build %s of commit %s, the build stage-only #1 made", prodBuild, commit)

	// 6. Screenshots for the docs, on request only (CI leaves the tree clean).
	if os.Getenv("STAGEHAND_UPDATE_SCREENSHOTS") == "1" {
		tr.screenshot("screenshot prod-only #2", exec2, filepath.Join("..", "..", "docs", "execution.png"))
		tr.screenshot("screenshot the environments", "/programs/playground/shop/environments", filepath.Join("..", "..", "docs", "environments.png"))
	}
}

// TestPlaygroundRefusesOtherSitesInBrowser: a page of another site that
// the newcomer visits cannot act on the playground through their browser,
// even knowing the token: its forms (a comment, Push a change) are refused
// with 403 and a reason, and so is the playground's own page reached under
// another site's name (DNS rebinding). Nothing is commented or pushed.
func TestPlaygroundRefusesOtherSitesInBrowser(t *testing.T) {
	chromium := needChromium(t)
	base, dataDir := startPlayground(t)
	pgDir := filepath.Join(dataDir, "playground")
	token, err := os.ReadFile(filepath.Join(pgDir, "hook-token"))
	if err != nil {
		t.Fatal(err)
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><form method="post" action="%s%s">
<input type="hidden" name="body" value="/stagehand help"><input type="hidden" name="token" value="%s">
<button type="submit" id="go">Win a prize</button></form></body></html>`, base, r.URL.Path, strings.TrimSpace(string(token)))
	}))
	t.Cleanup(evil.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	tr := newTour(t, chromium, base)

	tests := []struct {
		name, page, button, wantWhy string
	}{
		{"another site's page comments", evil.URL + "/playground/comment", "#go", "comes from the page of another site"},
		{"another site's page pushes", evil.URL + "/playground/push", "#go", "comes from the page of another site"},
		{"the playground's page under another site's name pushes", "http://rebound.test:" + port + "/playground", "#push", `addressed to "rebound.test:` + port + `"`},
	}
	for _, tt := range tests {
		tr.visit("open "+tt.page, tt.page)
		tr.click("click "+tt.button+" on "+tt.page, tt.button)
		text := tr.pageText()
		if !strings.Contains(text, "Stagehand playground refused this request") || !strings.Contains(text, tt.wantWhy) {
			tr.fail(tt.name, "the page after the click does not say the playground refused it because it %s", tt.wantWhy)
		}
	}
	tr.open("open the conversation", "/playground/conversation")
	if text := tr.pageText(); !strings.Contains(text, "No comment yet") {
		tr.fail("check that nobody commented", "the conversation has comments")
	}
	if n, err := git(filepath.Join(pgDir, "git", playgroundOwner, playgroundRepo+".git"), "rev-list", "--count", "main"); err != nil || n != "1" {
		t.Errorf("the sample repository's main has %s commits (%v), want 1: a refused push pushed", n, err)
	}
}

// needChromium returns the Chromium to drive, or skips the test when there
// is none (a failure with STAGEHAND_TEST_BROWSER=1, as in CI).
func needChromium(t *testing.T) string {
	t.Helper()
	required := os.Getenv("STAGEHAND_TEST_BROWSER") == "1"
	chromium := chromiumPath()
	switch {
	case chromium == "" && required:
		t.Fatal("STAGEHAND_TEST_BROWSER=1 but Chromium is missing: neither /usr/bin/chromium nor chromium on PATH (install it with: apt-get install -y chromium)")
	case chromium == "":
		t.Skip("Chromium is not installed (/usr/bin/chromium or chromium on PATH); set STAGEHAND_TEST_BROWSER=1 to make this a failure")
	case testing.Short() && !required:
		t.Skip("builds the real binary and drives a browser; skipped with -short")
	}
	return chromium
}

// chromiumPath is Debian's Chromium, or the chromium on PATH, or "".
func chromiumPath() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// startPlayground runs "stagehand playground" on a free port with a fresh
// data directory and waits until /playground answers. It returns the base
// URL and the data directory.
func startPlayground(t *testing.T) (base, dataDir string) {
	t.Helper()
	bin := binary(t)
	addr := freeAddr(t)
	dataDir = t.TempDir()
	logs := filepath.Join(t.TempDir(), "playground.log")
	f, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "playground", "--listen", addr, "--data-dir", dataDir)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	}
	// Its own process group, so that the cleanup also ends what it started
	// (push hooks, step scripts), which would otherwise go on writing in
	// the data directory while the test removes it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the playground: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stopGroup(cmd.Process.Pid, exited)
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logs)
			t.Logf("playground output:\n%s", b)
		}
	})

	base = "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			b, _ := os.ReadFile(logs)
			t.Fatalf("the playground exited before answering GET /playground (%v):\n%s", err, b)
		default:
		}
		if resp, err := client.Get(base + "/playground"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, dataDir
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playground did not answer GET %s/playground with 200 within 60s", base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tour is one headless Chromium tab on the playground.
type tour struct {
	t    *testing.T
	ctx  context.Context // the tab; no deadline
	base string
}

func newTour(t *testing.T, chromium, base string) *tour {
	t.Helper()
	profile := t.TempDir() // made first, so it is removed after Chromium ends
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// A name of another site that points at this machine, as DNS
		// rebinding makes one.
		chromedp.Flag("host-resolver-rules", "MAP rebound.test 127.0.0.1"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromedp: "+format, args...)
	}))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first call starts the browser; it must have no deadline, or the
	// browser would end with it.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }()
	select {
	case err := <-start:
		if err != nil {
			t.Fatalf("starting Chromium (%s): %v", chromium, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Chromium (%s) did not start within 60s", chromium)
	}
	return &tour{t: t, ctx: ctx, base: base}
}

// fail ends the test, naming the step of the tour and showing the page.
func (tr *tour) fail(step, format string, args ...any) {
	tr.t.Helper()
	tr.t.Fatalf("tour step %q failed: %s\n--- page %s:\n%s", step, fmt.Sprintf(format, args...), tr.location(), tr.pageText())
}

// within runs fn with a deadline derived from the tab.
func (tr *tour) within(d time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(tr.ctx, d)
	defer cancel()
	return fn(ctx)
}

func (tr *tour) location() string {
	var loc string
	_ = tr.within(5*time.Second, func(ctx context.Context) (err error) {
		loc, err = chromedp.Run(ctx, chromedp.Location())
		return err
	})
	return loc
}

// pageText is what a reader sees of the current page.
func (tr *tour) pageText() string {
	var text string
	err := tr.within(5*time.Second, func(ctx context.Context) (err error) {
		text, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : "(no body)"`))
		return err
	})
	if err != nil {
		return fmt.Sprintf("(could not read the page: %v)", err)
	}
	const max = 8000
	if len(text) > max {
		text = text[:max] + "\n… (cut)"
	}
	return text
}

// open navigates to a path of the playground.
func (tr *tour) open(step, path string) {
	tr.t.Helper()
	tr.visit(step, tr.base+path)
}

// visit navigates to a URL.
func (tr *tour) visit(step, url string) {
	tr.t.Helper()
	err := tr.within(30*time.Second, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Navigate(url))
	})
	if err != nil {
		tr.fail(step, "navigating to %s: %v", url, err)
	}
}

// eval evaluates a JavaScript expression that yields a string.
func (tr *tour) eval(step, js string) string {
	tr.t.Helper()
	var s string
	err := tr.within(10*time.Second, func(ctx context.Context) (err error) {
		s, err = chromedp.Run(ctx, chromedp.Evaluate[string](js))
		return err
	})
	if err != nil {
		tr.fail(step, "evaluating %s: %v", js, err)
	}
	return s
}

// click clicks the visible element sel, as a user does, and waits for the
// page the click leads to (a form post answered by a redirect) to load.
func (tr *tour) click(step, sel string) {
	tr.t.Helper()
	err := tr.within(30*time.Second, func(ctx context.Context) error {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			return fmt.Errorf("waiting for %s to be visible: %w", sel, err)
		}
		_, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)))
		if err != nil {
			return fmt.Errorf("clicking %s and waiting for the next page: %w", sel, err)
		}
		return nil
	})
	if err != nil {
		tr.fail(step, "%v", err)
	}
}

// present is a condition: the page has an element matching sel.
func (tr *tour) present(sel string) func() (bool, error) {
	return func() (bool, error) {
		var ok bool
		err := tr.within(10*time.Second, func(ctx context.Context) (err error) {
			ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
			return err
		})
		return ok, err
	}
}

// executionState is a condition on an execution page: its heading names
// the execution (like "stage-only #1") and, unless want is empty, shows the
// state want. A finished execution in another state is an error.
func (tr *tour) executionState(name, want string) (bool, error) {
	var h executionHeading
	err := tr.within(10*time.Second, func(ctx context.Context) (err error) {
		h, err = chromedp.Run(ctx, chromedp.Evaluate[executionHeading](`(() => {
			const h = document.querySelector("main h1");
			const s = h && h.querySelector(".state");
			return {title: h ? h.innerText : "", state: s ? s.innerText.trim() : ""};
		})()`))
		return err
	})
	if err != nil {
		return false, nil // the page may be loading; try again
	}
	if !strings.HasPrefix(h.Title, name+" ") {
		return false, nil // not there yet (404), or another execution
	}
	if want == "" || h.State == want {
		return true, nil
	}
	switch h.State {
	case "failed", "cancelled", "skipped", "succeeded":
		return false, fmt.Errorf("%s ended %s, want %s", name, h.State, want)
	}
	return false, nil
}

// executionHeading is the heading of an execution page.
type executionHeading struct {
	Title string `json:"title"` // like "stage-only #1 succeeded"
	State string `json:"state"`
}

// reloadUntil loads path again and again until cond holds, for at most
// timeout. An error from cond ends the wait at once.
func (tr *tour) reloadUntil(step, path string, timeout time.Duration, cond func() (bool, error)) {
	tr.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := tr.within(30*time.Second, func(ctx context.Context) error {
			return chromedp.Do(ctx, chromedp.Navigate(tr.base+path))
		})
		if err == nil {
			ok, err := cond()
			if err != nil {
				tr.fail(step, "%v", err)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			why := ""
			if err != nil {
				why = fmt.Sprintf(" (the last load failed: %v)", err)
			}
			tr.fail(step, "not done after %v of reloading %s%s", timeout, path, why)
		}
		time.Sleep(time.Second)
	}
}

// apiCommit is the commit of execution n from the JSON API, fetched by the
// page (the API answers the signed-in visitor).
func (tr *tour) apiCommit(step string, n int) string {
	tr.t.Helper()
	path := fmt.Sprintf("/api/v1/programs/playground/shop/executions/%d", n)
	body := tr.fetch(step, path)
	var ex struct {
		Commit string `json:"commit"`
	}
	if err := json.Unmarshal([]byte(body), &ex); err != nil || len(ex.Commit) != 40 {
		tr.fail(step, "GET %s: commit %q is not a full SHA (%v): %s", path, ex.Commit, err, body)
	}
	return ex.Commit
}

// fetch GETs path from the current page, with its cookies, and returns the
// answer's status and body as "<status> <body>" for a status other than
// 200, the body alone otherwise.
func (tr *tour) fetch(step, path string) string {
	tr.t.Helper()
	js := fmt.Sprintf(`fetch(%q, {credentials: "same-origin", redirect: "manual"}).then(r => r.text().then(t => r.status === 200 ? t : r.status + " " + t))`, path)
	var body string
	err := tr.within(10*time.Second, func(ctx context.Context) (err error) {
		body, err = chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		return err
	})
	if err != nil {
		tr.fail(step, "fetching %s from the page: %v", path, err)
	}
	return body
}

// screenshot saves a full-page PNG of path. (FullScreenshot makes a PNG
// only at quality 100; below it makes a JPEG.)
func (tr *tour) screenshot(step, path, file string) {
	tr.t.Helper()
	tr.open(step, path)
	var buf []byte
	err := tr.within(30*time.Second, func(ctx context.Context) (err error) {
		buf, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		return err
	})
	if err != nil {
		tr.fail(step, "taking the screenshot: %v", err)
	}
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		tr.fail(step, "writing %s: %v", file, err)
	}
	tr.t.Logf("wrote %s (%d bytes)", file, len(buf))
}

// stopGroup ends the process group led by pid: SIGTERM, so the server
// shuts down as it would in production, then SIGKILL for whatever is left
// after 20 s or after the leader exited. exited receives the leader's end.
func stopGroup(pid int, exited <-chan error) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // children that outlived the leader
	for i := 0; i < 100 && syscall.Kill(-pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond) // the group is gone once its last process is reaped
	}
}
