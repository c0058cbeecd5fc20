package handlers

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/handlers/web"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// dashboardSite is the dashboard behind sign-in with GitHub's stand-in,
// with the Restore button wired as cmd/stagehand wires it: the webhook
// room's approver check and the engine's Restore.
type dashboardSite struct {
	e   *surfaceEnv
	srv *httptest.Server
}

func (e *surfaceEnv) dashboardSite() *dashboardSite {
	e.t.Helper()
	e.gh.SetRepoID(owner, repo, 186853002) // as the webhooks name it
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	e.t.Cleanup(srv.Close)
	const clientID, clientSecret = "Iv23liRestoreTest", "restore-test-secret"
	e.gh.SetOAuthApp(clientID, clientSecret, srv.URL+"/auth/callback")
	ua, err := githubapp.NewUserAuth(githubapp.UserAuthOptions{ClientID: clientID, ClientSecret: clientSecret,
		WebURL: e.gh.URL(), APIURL: e.gh.URL(), RedirectURL: srv.URL + "/auth/callback"})
	if err != nil {
		e.t.Fatal(err)
	}
	signIn, err := web.NewSignIn(web.SignInOptions{Store: e.store, Flow: ua, GitHub: ua, Revoker: ua,
		SessionKey: []byte("0123456789abcdef0123456789abcdef"), PublicURL: srv.URL, Clock: e.clock, Logger: e.hooks.Logger})
	if err != nil {
		e.t.Fatal(err)
	}
	d := &web.Dashboard{Store: e.store, Artifacts: e.engine.Artifacts, Clock: e.clock, Logger: e.hooks.Logger,
		Guard: signIn.Require, Identify: signIn.Identify,
		Restores: &web.Restores{Approvers: e.hooks, Engine: e.engine, Audit: e.store}}
	d.Register(mux)
	signIn.Register(mux)
	return &dashboardSite{e: e, srv: srv}
}

// visitor is a browser signed in to the dashboard.
type visitor struct {
	site   *dashboardSite
	client *http.Client
}

func (s *dashboardSite) signInAs(login string) *visitor {
	s.e.t.Helper()
	s.e.gh.SignInOnWeb(login)
	jar, _ := cookiejar.New(nil)
	v := &visitor{site: s, client: &http.Client{Jar: jar}}
	if status, body := v.send("GET", "/", nil, nil); status != http.StatusOK || !strings.Contains(body, ">"+login+"</b>") {
		s.e.t.Fatalf("signing in as %s: %d\n%s", login, status, body)
	}
	return v
}

func (v *visitor) send(method, path string, form url.Values, header http.Header) (int, string) {
	v.site.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, v.site.srv.URL+path, body)
	if err != nil {
		v.site.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.site.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	restoreButton = regexp.MustCompile(`<button type="submit"[^>]*>Restore #(\d+)</button>`)
	restoreField  = regexp.MustCompile(`name="(csrf_token|form_key)" value="([^"]*)"`)
	htmlTags      = regexp.MustCompile(`<[^>]*>`)
)

// history reads production's history page: its Restore buttons' builds
// and the form's token and key.
func (v *visitor) history() (page string, buttons []string, form url.Values) {
	v.site.e.t.Helper()
	return v.historyAt("")
}

// historyAt is history with a query (?until=…) after the path.
func (v *visitor) historyAt(query string) (page string, buttons []string, form url.Values) {
	v.site.e.t.Helper()
	status, page := v.send("GET", "/programs/"+owner+"/"+repo+"/environments/production/deployments"+query, nil, nil)
	if status != http.StatusOK {
		v.site.e.t.Fatalf("production's history: %d\n%s", status, page)
	}
	for _, m := range restoreButton.FindAllStringSubmatch(page, -1) {
		buttons = append(buttons, m[1])
	}
	form = url.Values{}
	for _, m := range restoreField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	return pageText(page), buttons, form
}

func (v *visitor) restore(form url.Values, number string) (int, string) {
	f := url.Values{}
	for k, vs := range form {
		f[k] = vs
	}
	f.Set("execution", number)
	status, body := v.send("POST", "/programs/"+owner+"/"+repo+"/environments/production/restore", f, nil)
	return status, pageText(body)
}

// pageText is a page's words, without tags and entities.
func pageText(page string) string {
	return html.UnescapeString(strings.Join(strings.Fields(htmlTags.ReplaceAllString(page, " ")), " "))
}

// TestRestoreFromTheDashboardButton: three builds ran in production and
// retention pruned the first. On production's history bob (an approver)
// sees Restore on the kept builds only, mallory (write, no approver) on
// none; mallory replaying bob's form is refused; bob's restore of the
// pruned build is refused with the reason; his restore of build #3 makes
// one prod-only execution however often the form is sent, it needs Approve
// Rollback, and production then runs build #3's byte-identical artifacts.
// Every refusal is in the audit trail.
func TestRestoreFromTheDashboardButton(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob, alice]}\n"))
	_, production := e.deployBuilds(3) // builds #1, #3, #5; deploys #2, #4, #6
	r := &worker.Retainer{Store: e.store, Artifacts: e.worker.Artifacts.(worker.ArtifactPruner), DataDir: e.dataDir, Clock: e.clock,
		Policy: bot.Retention{Age: 30 * 24 * time.Hour, KeepDeployed: 2}, Logger: e.hooks.Logger}
	e.clock.Advance(31 * 24 * time.Hour)
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	site := e.dashboardSite()
	before := e.lastAuditID()

	bob, mallory := site.signInAs("bob"), site.signInAs("mallory")
	page, buttons, form := bob.history()
	if strings.Join(buttons, ",") != "5,3" || form.Get("csrf_token") == "" || form.Get("form_key") == "" {
		t.Fatalf("bob's Restore buttons: %v, form %v\n%s", buttons, form, page)
	}
	if !strings.Contains(page, "artifacts pruned by retention on "+e.clock.Now().UTC().Format("2006-01-02")) {
		t.Errorf("the history does not say build #1's artifacts were pruned:\n%s", page)
	}
	page, buttons, _ = mallory.history()
	if len(buttons) != 0 || !strings.Contains(page, "Only production's approvers (bob, alice) can restore a build.") {
		t.Errorf("mallory's history: buttons %v\n%s", buttons, page)
	}

	// mallory sends bob's form from her session: the token is not hers.
	if status, body := mallory.restore(form, "3"); status != http.StatusForbidden || !strings.Contains(body, "security token is not this session's") {
		t.Errorf("mallory with bob's form: %d %s", status, body)
	}
	// The real approver check says mallory is none (the engine refuses her).
	req, err := e.hooks.ProductionRequest(context.Background(), e.prog, bot.Request{Actor: "mallory", Source: bot.FromDashboard})
	if err != nil || req.Authorization == nil || req.Authorization.ProductionApprover {
		t.Errorf("ProductionRequest(mallory) = %+v, %v; want not an approver", req.Authorization, err)
	}
	if _, err := e.engine.Restore(context.Background(), req, e.prog.ID, bot.Production, 3); bot.Refused(err) == nil || bot.Refused(err).Code != bot.RefusalNotApprover {
		t.Errorf("the engine's restore for mallory: %v, want not-approver", err)
	}

	if status, body := bob.restore(form, "1"); status != http.StatusConflict || !strings.Contains(body, "stage-only #1 cannot be restored: its artifact set") || !strings.Contains(body, "was pruned by retention on "+e.clock.Now().UTC().Format("2006-01-02")) {
		t.Errorf("bob's restore of the pruned build: %d %s", status, body)
	}
	status, body := bob.restore(form, "3")
	if status != http.StatusOK || !strings.Contains(body, "prod-only #7 restores stage-only #3") {
		t.Fatalf("bob's restore of #3: %d %s", status, body)
	}
	if status, body := bob.restore(form, "3"); status != http.StatusOK || !strings.Contains(body, "This form was submitted before") || !strings.Contains(body, "prod-only #7") {
		t.Errorf("bob's second submit: %d %s", status, body)
	}
	if _, err := e.executionOrErr(8); err == nil {
		t.Error("the second submit of bob's form made #8")
	}

	e.waitStep(7, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve 7 --rollback"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("alice's approve --rollback: %q", reply.Body)
	}
	if ex := e.waitState(7, bot.ExecutionSucceeded); ex.Cause != bot.CauseRestore {
		t.Errorf("#7's cause is %q", ex.Cause)
	}
	if got := e.repo.readRecord("production/app.txt"); got != production[1] {
		t.Errorf("after the restore production holds %q, want build #3's %q", got, production[1])
	}

	var got []string
	for _, rec := range e.auditSince(before) {
		if rec.Action == bot.AuditRestore {
			got = append(got, rec.Actor+" "+string(rec.Outcome)+" "+rec.Code)
		}
	}
	want := []string{"mallory refused forged", "bob refused not-promotable", "bob done ", "bob refused already-done"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("restore records %q, want %q", got, want)
	}
}

// TestWhatRanLastTuesdayAndPutItBack is the "done when", on the
// dashboard alone: build A ran in production on a Tuesday, build B from
// Thursday on. An approver opens production's history at Wednesday's date
// and reads what ran then (A's deploy, its commit, who promoted and who
// approved it), presses its Restore button, and once the rollback is
// approved production runs A's byte-identical files again.
func TestWhatRanLastTuesdayAndPutItBack(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob, alice]}\n"))
	_, tuesday := e.deployBuild(0) // stage-only #1, prod-only #2
	a, _ := e.execution(1)
	wednesday := e.clock.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	e.clock.Advance(48 * time.Hour)
	if _, thursday := e.deployBuild(1); thursday == tuesday { // stage-only #3, prod-only #4
		t.Fatal("both builds deployed the same file; the test needs distinct ones")
	}

	bob := e.dashboardSite().signInAs("bob")
	page, buttons, form := bob.historyAt("?until=" + wednesday)
	first := strings.Index(page, "prod-only #")
	if first < 0 || !strings.HasPrefix(page[first:], "prod-only #2 ") || strings.Contains(page, "prod-only #4") {
		t.Fatalf("production's history until %s does not start with #2:\n%s", wednesday, page)
	}
	row := page[first:]
	if i := strings.Index(row[1:], "prod-only #"); i >= 0 {
		row = row[:i+1]
	}
	for _, want := range []string{"build of #1", "succeeded", bot.ShortSHA(a.Commit), "mallory (promotion)", "alice", "can be restored"} {
		if !strings.Contains(row, want) {
			t.Errorf("the row of what ran on Tuesday does not say %q:\n%s", want, row)
		}
	}
	if len(buttons) == 0 || buttons[0] != "1" {
		t.Fatalf("Restore buttons %v, want one for build #1 first", buttons)
	}
	if status, body := bob.restore(form, "1"); status != http.StatusOK || !strings.Contains(body, "prod-only #5 restores stage-only #1") {
		t.Fatalf("bob's restore of #1: %d %s", status, body)
	}
	e.waitStep(5, bot.StepApproval, bot.StepWaiting)
	if reply := e.comment("alice", "/stagehand approve 5 --rollback"); !strings.HasPrefix(reply.Body, "✅") {
		t.Fatalf("alice's approve --rollback: %q", reply.Body)
	}
	e.waitState(5, bot.ExecutionSucceeded)
	if got := e.repo.readRecord("production/app.txt"); got != tuesday {
		t.Errorf("after the restore production holds %q, want Tuesday's %q", got, tuesday)
	}
}
