package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// auditFixture is the sign-in fixture with audit records of acme/app (on
// execution #2 and none), of acme/other, and of no program.
func auditFixture(t *testing.T) *signInFixture {
	t.Helper()
	f := newSignInFixture(t)
	ctx := context.Background()
	err := f.store.Update(ctx, func(tx bot.Tx) error {
		other, err := tx.ProgramByName(ctx, "acme", "other")
		if err != nil {
			return err
		}
		recs := []bot.AuditRecord{
			{At: dashAt(1), Actor: "alice", Action: bot.AuditStart, ProgramID: f.prog.ID, ExecutionID: f.ex[2].ID, Outcome: bot.AuditDone, Reason: "started #2", Delivery: "d-1"},
			{At: dashAt(2), Actor: "mallory", Action: "approve", ProgramID: f.prog.ID, ExecutionID: f.ex[2].ID, Outcome: bot.AuditRefused, Code: "not-approver", Reason: "app-refusal-words", Delivery: "d-2"},
			{At: dashAt(3), Actor: "alice", Action: bot.AuditVariableSet, ProgramID: f.prog.ID, Outcome: bot.AuditDone, Detail: "stage/LOG_LEVEL", Delivery: "d-3"},
			{At: dashAt(4), Actor: "bob", Action: bot.AuditApprove, ProgramID: f.prog.ID, ExecutionID: f.ex[2].ID, Outcome: bot.AuditDone, Detail: "1 of 1 approvals: @bob", Delivery: "d-4"},
			{At: dashAt(5), Actor: "bob", Action: bot.AuditCancel, ProgramID: other.ID, Outcome: bot.AuditDone, Reason: "other-program-words", Delivery: "d-5"},
			{At: dashAt(6), Actor: "zed", Action: bot.AuditSignIn, Outcome: bot.AuditDone},
		}
		for _, r := range recs {
			if _, err := tx.AddAudit(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// auditOfAPI fetches one page of GET /api/v1/audit as b.
func (b *browser) auditOfAPI(query string) (int, APIAudit) {
	b.f.t.Helper()
	status, _, body := b.get("/api/v1/audit?" + query)
	var out APIAudit
	if status == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			b.f.t.Fatalf("GET /api/v1/audit?%s: %v\n%s", query, err, body)
		}
	}
	return status, out
}

func auditKeys(a APIAudit) []string {
	out := []string{}
	for _, r := range a.Records {
		out = append(out, r.Actor+" "+r.Action)
	}
	return out
}

// TestAPIAuditFiltersAndPermission: the API lists the records of the
// programs the viewer may read only (and their own sign-ins, never
// another's), newest first, with each filter, and a program the viewer
// may not read is not found.
func TestAPIAuditFiltersAndPermission(t *testing.T) {
	f := auditFixture(t)
	alice, bob, mallory := f.signInAs("alice"), f.signInAs("bob"), f.signInAs("mallory")
	since, until := url.QueryEscape(dashAt(2).Format(time.RFC3339)), url.QueryEscape(dashAt(4).Format(time.RFC3339))
	for _, tt := range []struct {
		who   *browser
		name  string
		query string
		want  []string
	}{
		{alice, "alice, everything: her programs' and her own sign-in", "", []string{"alice sign-in", "bob approve", "alice variable-set", "mallory approve", "alice start"}},
		{alice, "program", "program=acme/app", []string{"bob approve", "alice variable-set", "mallory approve", "alice start"}},
		{alice, "execution", "program=acme/app&execution=2", []string{"bob approve", "mallory approve", "alice start"}},
		{alice, "actor", "actor=ALICE", []string{"alice sign-in", "alice variable-set", "alice start"}},
		{alice, "action", "action=approve", []string{"bob approve", "mallory approve"}},
		{alice, "since and until", "since=" + since + "&until=" + until, []string{"alice variable-set", "mallory approve"}},
		{alice, "dates: midnight UTC", "program=acme/app&since=2026-03-01&until=2026-03-02", []string{"bob approve", "alice variable-set", "mallory approve", "alice start"}},
		{alice, "until a date before them all", "program=acme/app&until=2026-03-01", []string{}},
		{bob, "bob, everything", "", []string{"bob sign-in", "bob cancel"}},
		{mallory, "mallory, everything: her own sign-in", "", []string{"mallory sign-in"}},
		{mallory, "mallory, a sign-in of someone else", "actor=zed", []string{}},
	} {
		status, got := tt.who.auditOfAPI(tt.query)
		if status != http.StatusOK {
			t.Errorf("%s: status %d", tt.name, status)
		}
		if diff := cmp.Diff(tt.want, auditKeys(got)); diff != "" {
			t.Errorf("%s: GET /api/v1/audit?%s (-want +got):\n%s", tt.name, tt.query, diff)
		}
	}
	_, got := alice.auditOfAPI("action=approve&actor=bob")
	want := APIAuditRecord{ID: got.Records[0].ID, At: dashAt(4), Actor: "bob", Action: "approve", Outcome: "done", Program: "acme/app", Execution: 2,
		Detail: "1 of 1 approvals: @bob", Delivery: "d-4", HTMLPath: "/programs/acme/app/executions/2"}
	if diff := cmp.Diff(want, got.Records[0]); diff != "" {
		t.Errorf("a record (-want +got):\n%s", diff)
	}
	// bob may not read acme/app: its records are not found, as a program
	// that does not exist.
	if status, _ := bob.auditOfAPI("program=acme/app"); status != http.StatusNotFound {
		t.Errorf("bob's GET /api/v1/audit?program=acme/app: %d, want 404", status)
	}
	if status, _, body := bob.get("/programs/acme/app/audit"); status != http.StatusNotFound || strings.Contains(body, "app-refusal-words") {
		t.Errorf("bob's audit page of acme/app: %d\n%s", status, text(body))
	}
	status, _, body := alice.get("/programs/acme/app/audit")
	if status != http.StatusOK {
		t.Fatalf("alice's audit page: %d", status)
	}
	mustContain(t, "alice's audit page", text(body), "app-refusal-words", "not-approver", "stage/LOG_LEVEL", "d-4")
	mustNotContain(t, "alice's audit page", body, "other-program-words")
	for _, q := range []string{"limit=0", "limit=1001", "cursor=bogus", "since=yesterday", "execution=2", "program=acme", "since=" + until + "&until=" + since} {
		if status, _ := alice.auditOfAPI(q); status != http.StatusBadRequest {
			t.Errorf("GET /api/v1/audit?%s: %d, want 400", q, status)
		}
	}
	// The sign-ins are recorded, under no program.
	var signIns []bot.AuditRecord
	_ = f.store.View(context.Background(), func(tx bot.Tx) (err error) {
		signIns, err = tx.AuditRecords(context.Background(), bot.AuditFilter{Action: bot.AuditSignIn, Actor: "alice"})
		return err
	})
	if len(signIns) != 1 || signIns[0].ProgramID != 0 || signIns[0].Outcome != bot.AuditDone {
		t.Errorf("alice's sign-in records: %+v, want one", signIns)
	}
}

// TestAPIAuditPaging: following next_cursor pages through every record
// once, newest first; the last page has no cursor.
func TestAPIAuditPaging(t *testing.T) {
	f := auditFixture(t)
	alice := f.signInAs("alice")
	var all []string
	query := "limit=1"
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		status, page := alice.auditOfAPI(query)
		if status != http.StatusOK || len(page.Records) > 1 {
			t.Fatalf("GET ?%s: %d, %d records", query, status, len(page.Records))
		}
		all = append(all, auditKeys(page)...)
		if page.NextCursor == "" {
			break
		}
		query = "limit=1&cursor=" + url.QueryEscape(page.NextCursor)
	}
	if diff := cmp.Diff([]string{"alice sign-in", "bob approve", "alice variable-set", "mallory approve", "alice start"}, all); diff != "" {
		t.Errorf("paged (-want +got):\n%s", diff)
	}
	_, _, page := alice.get("/programs/acme/app/executions/2")
	mustContain(t, "the execution page", page, `href="/programs/acme/app/audit?execution=2"`)
	_, _, body := alice.get("/programs/acme/app/audit?execution=2")
	mustContain(t, "the execution's audit page", text(body), "app-refusal-words")
	mustNotContain(t, "the execution's audit page", body, "stage/LOG_LEVEL")
	_, _, body = alice.get("/programs/acme/app/audit?limit=2")
	mustContain(t, "the audit page's first page", body, "older records")
}
