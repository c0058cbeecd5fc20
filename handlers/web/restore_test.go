package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// fakeApprovers says alice is production's only approver (the real check,
// webhook.Webhooks.ProductionRequest, is driven in handlers' tests).
type fakeApprovers struct{}

func (fakeApprovers) ProductionRequest(_ context.Context, _ bot.Program, req bot.Request) (bot.Request, error) {
	req.Authorization = &bot.Authorization{ProductionApprover: req.Actor == "alice", Approvers: "alice"}
	return req, nil
}

// fakeRestorer records restores. It refuses as the engine does: one who is
// not an approver, a key seen before (bot.ErrAlreadyDone), a build whose
// artifacts were pruned (#6).
type fakeRestorer struct {
	mu    sync.Mutex
	keys  map[string]bool
	calls []bot.Request
	made  int
}

func (f *fakeRestorer) Restore(_ context.Context, req bot.Request, _ int64, env bot.EnvironmentName, number int) (bot.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	switch {
	case req.Authorization == nil || !req.Authorization.ProductionApprover:
		return bot.Result{}, &bot.Refusal{Code: bot.RefusalNotApprover, Message: "@" + req.Actor + " is not one of the production approvers (alice)"}
	case env != bot.Production:
		return bot.Result{}, &bot.Refusal{Code: bot.RefusalBadRequest, Message: "only production can be restored"}
	case f.keys[req.Key]:
		return bot.Result{}, bot.ErrAlreadyDone
	case number == 6:
		return bot.Result{}, &bot.Refusal{Code: bot.RefusalNotPromotable, Message: "prod-only #6 cannot be restored: its artifact set 000000000000 was pruned by retention"}
	}
	if f.keys == nil {
		f.keys = map[string]bool{}
	}
	f.keys[req.Key] = true
	f.made++
	n := 40 + f.made
	return bot.Result{Execution: bot.Execution{Number: n}, Message: fmt.Sprintf("prod-only #%d restores stage-only #%d", n, number)}, nil
}

func (f *fakeRestorer) count() (made, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.made, len(f.calls)
}

// restoreFixture is the sign-in fixture with Restore buttons; dave has
// write permission on acme/app but is no approver.
func restoreFixture(t *testing.T) (*signInFixture, *fakeRestorer) {
	t.Helper()
	engine := &fakeRestorer{}
	var f *signInFixture
	f = newSignInFixture(t, func(d *Dashboard) {
		d.Restores = &Restores{Approvers: fakeApprovers{}, Engine: engine, Audit: d.Store.(bot.Transactor)}
	})
	f.gh.SetPermission("acme", "app", "dave", "write")
	return f, engine
}

const prodHistory = "/programs/acme/app/environments/production/deployments"

var formField = regexp.MustCompile(`name="(csrf_token|form_key|execution)" value="([^"]*)"`)

// restoreFormOf reads the Restore form of b's production history page
// (nil when it has none).
func (b *browser) restoreFormOf() url.Values {
	b.f.t.Helper()
	status, _, page := b.get(prodHistory)
	if status != http.StatusOK {
		b.f.t.Fatalf("GET %s: %d", prodHistory, status)
	}
	if !strings.Contains(page, `action="/programs/acme/app/environments/production/restore"`) {
		return nil
	}
	form := url.Values{}
	for _, m := range formField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	return form
}

// post sends a form as b, with extra headers; it does not follow redirects.
func (b *browser) post(path string, form url.Values, header http.Header) (int, string) {
	b.f.t.Helper()
	req, err := http.NewRequest("POST", b.f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.single.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// formTokenOf is the token of b's session, as a form shown to it would
// carry (for people shown no form).
func (b *browser) formTokenOf() string {
	b.f.t.Helper()
	name := b.f.signIn.sessionCookie
	secret, err := b.f.signIn.cookies.openString(b.cookie(name), name)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return b.f.signIn.formToken(sessionID(string(secret)))
}

// restoreAudit lists the audit trail's restore records: actor, outcome
// and code.
func (f *signInFixture) restoreAudit() []string {
	f.t.Helper()
	var out []string
	err := f.store.View(context.Background(), func(tx bot.Tx) error {
		recs, err := tx.AuditRecords(context.Background(), bot.AuditFilter{Action: bot.AuditRestore, Oldest: true})
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%s %s %s program=%t", r.Actor, r.Outcome, r.Code, r.ProgramID == f.prog.ID))
		}
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

const restorePost = "/programs/acme/app/environments/production/restore"

// TestRestoreButtonOnlyForApprovers: alice (an approver) sees Restore on
// production's restorable builds; dave (write, no approver) and carol
// (read) see why not; stage's history has no button.
func TestRestoreButtonOnlyForApprovers(t *testing.T) {
	f, _ := restoreFixture(t)
	alice := f.signInAs("alice")
	form := alice.restoreFormOf()
	if form == nil || form.Get("execution") != "1" || form.Get(formTokenField) == "" || !validFormKey(form.Get(restoreFormKeyField)) {
		t.Fatalf("alice's production history has no proper Restore form: %v", form)
	}
	_, _, page := alice.get(prodHistory)
	mustContain(t, "alice's page", text(page), "Restore #1", "read-only but for production's Restore button")
	_, _, stage := alice.get("/programs/acme/app/environments/stage/deployments")
	mustNotContain(t, "stage's history", stage, "<form method=\"post\" action=\"/programs/acme/app/environments/production/restore")

	for login, note := range map[string]string{
		"dave":  "Only production's approvers (alice) can restore a build.",
		"carol": "Only production's approvers can restore a build (you cannot write to the repository).",
	} {
		b := f.signInAs(login)
		if form := b.restoreFormOf(); form != nil {
			t.Errorf("%s is shown a Restore form: %v", login, form)
		}
		_, _, page := b.get(prodHistory)
		mustContain(t, login+"'s page", text(page), note)
	}
}

// TestRestoreFromTheDashboard: alice's Restore makes one restore through
// the engine, with her authorization and the form's key; the same form
// submitted again makes none, and says so.
func TestRestoreFromTheDashboard(t *testing.T) {
	f, engine := restoreFixture(t)
	alice := f.signInAs("alice")
	form := alice.restoreFormOf()
	status, body := alice.post(restorePost, form, nil)
	if status != http.StatusOK {
		t.Fatalf("alice's restore: %d\n%s", status, text(body))
	}
	mustContain(t, "the outcome", text(body), "prod-only #41 restores stage-only #1", "The restore is prod-only #41")
	req := engine.calls[0]
	if req.Actor != "alice" || req.Source != bot.FromDashboard || req.Authorization == nil || !req.Authorization.ProductionApprover ||
		!strings.HasSuffix(req.Key, "/"+form.Get(restoreFormKeyField)) {
		t.Errorf("the engine was asked with %+v", req)
	}

	// A double submit (or a replay of the request) restores nothing more.
	status, body = alice.post(restorePost, form, nil)
	if status != http.StatusOK {
		t.Fatalf("the second submit: %d\n%s", status, text(body))
	}
	mustContain(t, "the second submit", text(body), "This form was submitted before")
	if made, _ := engine.count(); made != 1 {
		t.Errorf("two submits of one form made %d restores, want 1", made)
	}
	// A new page is a new form: another restore is another execution.
	if status, _ := alice.post(restorePost, alice.restoreFormOf(), nil); status != http.StatusOK {
		t.Errorf("a restore from a fresh page: %d", status)
	}
	if made, _ := engine.count(); made != 2 {
		t.Errorf("a fresh form made %d restores in all, want 2", made)
	}
	if diff := cmp.Diff([]string{"alice refused already-done program=true"}, f.restoreAudit()); diff != "" {
		t.Errorf("audit trail (-want +got):\n%s", diff)
	}
}

// TestRestoreAttacks: each way around the button is refused with words
// that say why, reaches no restore, and leaves an audit record.
func TestRestoreAttacks(t *testing.T) {
	f, engine := restoreFixture(t)
	alice := f.signInAs("alice")
	good := alice.restoreFormOf()
	with := func(k, v string) url.Values {
		form := url.Values{}
		for key, vs := range good {
			form[key] = vs
		}
		if v == "" {
			form.Del(k)
		} else {
			form.Set(k, v)
		}
		return form
	}
	aliceAgain := f.signInAs("alice") // another session of the same person
	dave := f.signInAs("dave")
	daveForm := with(formTokenField, dave.formTokenOf())
	tests := []struct {
		name   string
		b      *browser
		form   url.Values
		header http.Header
		status int
		words  string
		audit  string
	}{
		{"a forged POST without the token", alice, with(formTokenField, ""), nil, 403, "the form carries no security token", "alice refused forged program=true"},
		{"a token of another session", aliceAgain, good, nil, 403, "the form's security token is not this session's", "alice refused forged program=true"},
		{"a made-up token", alice, with(formTokenField, "AAAA"), nil, 403, "the form's security token is not this session's", "alice refused forged program=true"},
		{"another site's page", alice, good, http.Header{"Origin": {"https://evil.example"}}, 403, "the request came from another site (Origin https://evil.example)", "alice refused forged program=true"},
		{"nobody signed in", f.browser(), good, nil, 401, "restoring a build from the dashboard needs a sign-in with GitHub", " refused sign-in program=true"},
		{"a GitHub token instead of a sign-in", f.browser(), good, http.Header{"Authorization": {"Bearer " + f.gh.NewPersonalAccessToken("alice")}}, 403, "the Restore button is for people signed in to the dashboard", "alice refused forged program=true"},
		{"a signed-in writer who is no approver", dave, daveForm, nil, 403, "@dave is not one of the production approvers (alice)", "dave refused not-approver program=true"},
		{"a build whose artifacts were pruned", alice, with("execution", "6"), nil, 409, "cannot be restored: its artifact set 000000000000 was pruned by retention", "alice refused not-promotable program=true"},
		{"no execution", alice, with("execution", ""), nil, 400, "the form names no execution to restore", "alice refused bad-request program=true"},
	}
	for _, tt := range tests {
		before := len(f.restoreAudit())
		status, body := tt.b.post(restorePost, tt.form, tt.header)
		if status != tt.status || !strings.Contains(text(body), tt.words) {
			t.Errorf("%s: %d, want %d saying %q:\n%s", tt.name, status, tt.status, tt.words, text(body))
		}
		if got := f.restoreAudit()[before:]; len(got) != 1 || got[0] != tt.audit {
			t.Errorf("%s: audit records %q, want [%q]", tt.name, got, tt.audit)
		}
	}
	if made, _ := engine.count(); made != 0 {
		t.Errorf("the attacks made %d restores", made)
	}
}
