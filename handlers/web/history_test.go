package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// prunedDigest names an artifact set the artifact store does not hold.
const prunedDigest = "0000000000000000000000000000000000000000000000000000000000000000"

// addProductionDeploys adds n prod-only executions (#6, #7, …) of #1's
// commit that deployed to production one after the other after #2, each
// approved by erin; the even-numbered ones deployed a build whose artifact
// set is gone.
func (f *dashFixture) addProductionDeploys(n int) {
	f.t.Helper()
	ctx := context.Background()
	err := f.store.Update(ctx, func(tx bot.Tx) error {
		for i := range n {
			e, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: f.prog.ID, Pipeline: bot.ProdOnly, Commit: commitOne,
				State: bot.ExecutionSucceeded, Cause: bot.CausePromotion, TriggeredBy: "dave", SourceID: f.ex[1].ID, ArtifactDigest: f.set.Digest})
			if err != nil {
				return err
			}
			if e.Number%2 == 0 {
				e.ArtifactDigest = prunedDigest
				if err := tx.UpdateExecution(ctx, e); err != nil {
					return err
				}
			}
			f.ex[e.Number] = e
			s := bot.Step{ExecutionID: e.ID, Name: bot.StepDeployProduction, State: bot.StepSucceeded, Message: "deployed",
				Attempt: 1, StartedAt: dashAt(100 + 10*i), FinishedAt: dashAt(101 + 10*i)}
			if err := tx.UpdateStep(ctx, s); err != nil {
				return err
			}
			if err := tx.AddEvent(ctx, bot.Event{ExecutionID: e.ID, At: dashAt(99 + 10*i), Actor: "erin", Kind: bot.EventApproved}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func TestAPIHistory(t *testing.T) {
	f := newDashFixture(t)
	digest := f.set.Digest
	tests := []struct {
		path string
		want APIEnvironmentDeployments
	}{
		{"/api/v1/programs/acme/app/environments/stage/deployments", APIEnvironmentDeployments{Environment: "stage", Deployments: []APIEnvironmentDeployment{{
			ExecutionNumber: 1, Pipeline: "stage-only", Commit: commitOne, ArtifactDigest: digest, BuildNumber: 1, Cause: "push",
			TriggeredBy: "alice", Outcome: "succeeded", Message: "deployed to stage", StartedAt: dashAt(2), FinishedAt: tp(dashAt(4)),
			BuildState: "succeeded", Artifacts: "kept", Restorable: true, HTMLPath: "/programs/acme/app/executions/1",
		}}}},
		// #3 was rejected: its deploy never ran, so it is not history.
		{"/api/v1/programs/acme/app/environments/production/deployments", APIEnvironmentDeployments{Environment: "production", Deployments: []APIEnvironmentDeployment{{
			ExecutionNumber: 2, Pipeline: "prod-only", Commit: commitOne, ArtifactDigest: digest, BuildNumber: 1, Cause: "promotion",
			TriggeredBy: "alice", Outcome: "succeeded", Message: "deployed to production", StartedAt: dashAt(15), FinishedAt: tp(dashAt(20)),
			Approval:   &APIQuorum{Required: 1, Approvals: 1, Approvers: []string{"bob"}, Summary: "1 of 1 approvals: @bob"},
			BuildState: "succeeded", Artifacts: "kept", Restorable: true, HTMLPath: "/programs/acme/app/executions/2",
		}}}},
		{"/api/v1/programs/acme/other/environments/production/deployments", APIEnvironmentDeployments{Environment: "production", Deployments: []APIEnvironmentDeployment{}}},
	}
	for _, tt := range tests {
		var got APIEnvironmentDeployments
		f.getJSON(tt.path, http.StatusOK, &got)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", tt.path, diff)
		}
	}
}

// TestAPIHistoryPaging walks production's history three at a time, down
// with next_cursor and back up with prev_cursor.
func TestAPIHistoryPaging(t *testing.T) {
	f := newDashFixture(t)
	f.addProductionDeploys(6) // #6 … #11
	const base = "/api/v1/programs/acme/app/environments/production/deployments?limit=3"
	type page struct {
		numbers    []int
		next, prev bool
	}
	read := func(cursor string) (page, APIEnvironmentDeployments) {
		t.Helper()
		path := base
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var got APIEnvironmentDeployments
		f.getJSON(path, http.StatusOK, &got)
		p := page{next: got.NextCursor != "", prev: got.PrevCursor != ""}
		for _, d := range got.Deployments {
			p.numbers = append(p.numbers, d.ExecutionNumber)
		}
		return p, got
	}
	want := []page{
		{numbers: []int{11, 10, 9}, next: true},
		{numbers: []int{8, 7, 6}, next: true, prev: true},
		{numbers: []int{2}, prev: true},
	}
	var pages []APIEnvironmentDeployments
	cursor := ""
	for i, w := range want {
		got, body := read(cursor)
		if diff := cmp.Diff(w, got, cmp.AllowUnexported(page{})); diff != "" {
			t.Fatalf("page %d down (-want +got):\n%s", i+1, diff)
		}
		pages = append(pages, body)
		cursor = body.NextCursor
	}
	// Back up from the last page.
	for i := len(want) - 2; i >= 0; i-- {
		got, _ := read(pages[i+1].PrevCursor)
		if diff := cmp.Diff(want[i], got, cmp.AllowUnexported(page{})); diff != "" {
			t.Errorf("page %d up (-want +got):\n%s", i+1, diff)
		}
	}
	// Whether each build can be restored: the even ones' sets are gone.
	for _, d := range pages[0].Deployments {
		want := "kept"
		if d.ExecutionNumber%2 == 0 {
			want = "pruned"
		}
		if d.Artifacts != want || d.Restorable != (want == "kept") || d.Approval == nil || d.Approval.Summary != "1 of 1 approvals: @erin" || d.TriggeredBy != "dave" || d.BuildNumber != 1 {
			t.Errorf("#%d: artifacts %q (want %q), approval %+v, triggered by %q, build #%d", d.ExecutionNumber, d.Artifacts, want, d.Approval, d.TriggeredBy, d.BuildNumber)
		}
	}
}

func TestAPIHistoryRefusals(t *testing.T) {
	f := newDashFixture(t)
	const path = "/api/v1/programs/acme/app/environments/"
	for query, want := range map[string]struct {
		status int
		msg    string
	}{
		"production/deployments?limit=0":            {400, "limit must be a number from 1 to 200, got \"0\""},
		"production/deployments?limit=many":         {400, "limit must be a number from 1 to 200, got \"many\""},
		"production/deployments?cursor=bm90IG1pbmU": {400, "the cursor \"bm90IG1pbmU\" is not one this server gave: take next_cursor or prev_cursor from an answer, or leave it out to start at the newest"},
		"production/deployments?cursor=%25%25":      {400, "the cursor \"%%\" is not one this server gave: take next_cursor or prev_cursor from an answer, or leave it out to start at the newest"},
		"qa/deployments":                            {404, "There is no environment \"qa\": the environments are stage and production."},
	} {
		var got APIError
		f.getJSON(path+query, want.status, &got)
		if got.Error != want.msg {
			t.Errorf("GET %s: %q, want %q", path+query, got.Error, want.msg)
		}
	}
}

func TestHistoryPage(t *testing.T) {
	f := newDashFixture(t)
	for _, from := range []string{"/programs/acme/app/environments", "/programs/acme/app"} {
		page := f.page(from)
		for _, link := range []string{`href="/programs/acme/app/environments/stage/deployments"`, `href="/programs/acme/app/environments/production/deployments"`} {
			mustContain(t, from, page, link)
		}
	}

	prod := f.page("/programs/acme/app/environments/production/deployments")
	mustContain(t, "production's history", text(prod),
		"production history of acme/app", "prod-only #2", "(build of #1)", "succeeded", bot.ShortSHA(commitOne),
		bot.ShortDigest(f.set.Digest), "alice (promotion)", "bob", "2026-03-01 10:15:00 UTC", "2026-03-01 10:20:00 UTC", "can be restored")
	mustContain(t, "production's history", prod, `href="/programs/acme/app/executions/2"`)
	mustNotContain(t, "production's history", text(prod), "prod-only #3", "older", "newer")

	stage := f.page("/programs/acme/app/environments/stage/deployments")
	mustContain(t, "stage's history", text(stage), "stage-only #1", "deployed to stage", "alice (push)", "can be restored")
	mustNotContain(t, "stage's history", text(stage), "approved by", "bob")

	mustContain(t, "an empty history", text(f.page("/programs/acme/other/environments/production/deployments")), "Nothing has been deployed to production yet.")
	status, _, body := f.get("/programs/acme/app/environments/qa/deployments")
	if status != http.StatusNotFound {
		t.Errorf("GET …/environments/qa/deployments: %d, want 404", status)
	}
	mustContain(t, "an unknown environment", text(body), `There is no environment "qa": the environments are stage and production.`)
}

// TestHistoryPagePaging: a page holds 25 deploys; "older" and "newer"
// links walk the rest.
func TestHistoryPagePaging(t *testing.T) {
	f := newDashFixture(t)
	f.addProductionDeploys(30) // #6 … #35, then #2
	first := f.page("/programs/acme/app/environments/production/deployments")
	mustContain(t, "the first page", text(first), "prod-only #35", "prod-only #11", "artifacts pruned", "can be restored", "older →")
	mustNotContain(t, "the first page", text(first), "prod-only #10 ", "prod-only #2 ", "← newer")
	older := linkOf(t, first, "next")
	second := f.page(older)
	mustContain(t, "the second page", text(second), "prod-only #10", "prod-only #6", "prod-only #2", "← newer")
	mustNotContain(t, "the second page", text(second), "prod-only #11 ", "older →")
	back := f.page(linkOf(t, second, "prev"))
	mustContain(t, "the page above the second", text(back), "prod-only #35", "prod-only #11")
	mustNotContain(t, "the page above the second", text(back), "prod-only #10 ", "← newer")
}

// linkOf is the href of the page's link with rel.
func linkOf(t *testing.T, page, rel string) string {
	t.Helper()
	i := strings.Index(page, `rel="`+rel+`"`)
	if i < 0 {
		t.Fatalf("no %s link in:\n%s", rel, page)
	}
	start := strings.LastIndex(page[:i], `href="`)
	href := page[start+len(`href="`):]
	href = href[:strings.IndexByte(href, '"')]
	return strings.ReplaceAll(href, "&amp;", "&")
}

// TestHistoryFailedBuild: a full-stack execution whose production deploy
// failed ran there, but its build cannot be restored: its execution did
// not succeed.
func TestHistoryFailedBuild(t *testing.T) {
	f := newDashFixture(t)
	ctx := context.Background()
	err := f.store.Update(ctx, func(tx bot.Tx) error {
		e, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: f.prog.ID, Pipeline: bot.FullStack, Commit: commitFour,
			State: bot.ExecutionFailed, Cause: bot.CauseManual, TriggeredBy: "erin", ArtifactDigest: f.set.Digest})
		if err != nil {
			return err
		}
		return tx.UpdateStep(ctx, bot.Step{ExecutionID: e.ID, Name: bot.StepDeployProduction, State: bot.StepFailed,
			Message: "exit status 1", Attempt: 1, StartedAt: dashAt(200), FinishedAt: dashAt(201)})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got APIEnvironmentDeployments
	f.getJSON("/api/v1/programs/acme/app/environments/production/deployments?limit=1", http.StatusOK, &got)
	if len(got.Deployments) != 1 {
		t.Fatalf("got %d deploys, want 1", len(got.Deployments))
	}
	d := got.Deployments[0]
	if d.ExecutionNumber != 6 || d.Outcome != "failed" || d.BuildState != "failed" || d.Artifacts != "kept" || d.Restorable || d.BuildNumber != 6 {
		t.Errorf("the failed full-stack deploy: %+v", d)
	}
	page := text(f.page("/programs/acme/app/environments/production/deployments"))
	mustContain(t, "production's history", page, "full-stack #6", "failed exit status 1", "erin (manual)", "build failed", "prod-only #2")
}

// TestHistorySaysWhenPruned: a build whose artifact set retention removed
// says so with the day it happened (the API: pruned_at); one removed before
// prune times were recorded says only that it was pruned.
func TestHistorySaysWhenPruned(t *testing.T) {
	f := newDashFixture(t)
	f.addProductionDeploys(2) // #6 (its set pruned), #7
	var before APIEnvironmentDeployments
	f.getJSON("/api/v1/programs/acme/app/environments/production/deployments?limit=2", http.StatusOK, &before)
	if d := before.Deployments[1]; d.ExecutionNumber != 6 || d.Artifacts != "pruned" || d.PrunedAt != nil || d.Restorable {
		t.Errorf("#6 before its prune time is recorded: %+v", d)
	}
	mustContain(t, "production's history", text(f.page(prodHistory)), "artifacts pruned")

	prunedAt := time.Date(2026, 4, 2, 3, 4, 5, 0, time.UTC)
	if err := f.store.Update(context.Background(), func(tx bot.Tx) error {
		return tx.RecordPruned(context.Background(), []string{prunedDigest}, prunedAt)
	}); err != nil {
		t.Fatal(err)
	}
	var got APIEnvironmentDeployments
	f.getJSON("/api/v1/programs/acme/app/environments/production/deployments?limit=2", http.StatusOK, &got)
	if d := got.Deployments[1]; d.PrunedAt == nil || !d.PrunedAt.Equal(prunedAt) || d.Artifacts != "pruned" {
		t.Errorf("#6 after its prune time is recorded: %+v", d)
	}
	if d := got.Deployments[0]; d.PrunedAt != nil || !d.Restorable {
		t.Errorf("#7, kept: %+v", d)
	}
	mustContain(t, "production's history", text(f.page(prodHistory)), "artifacts pruned by retention on 2026-04-02")
}

// TestHistoryUntil: ?until= starts production's history at a time, in the
// API and on the page: the deploys that started before it, newest first
// (the first is what ran there then), with cursors on both sides; a date
// is midnight UTC. A bad time, or until with a cursor, is a 400.
func TestHistoryUntil(t *testing.T) {
	f := newDashFixture(t)
	f.addProductionDeploys(6) // #6 … #11, started at 11:40, 11:50, … 12:30
	const base = "/api/v1/programs/acme/app/environments/production/deployments?limit=3&until="
	numbers := func(a APIEnvironmentDeployments) []int {
		var out []int
		for _, d := range a.Deployments {
			out = append(out, d.ExecutionNumber)
		}
		return out
	}
	for _, tt := range []struct {
		until      string
		want       []int
		next, prev bool
	}{
		{dashAt(125).Format(time.RFC3339), []int{8, 7, 6}, true, true},
		{dashAt(120).Format(time.RFC3339), []int{7, 6, 2}, false, true}, // #8 started at that moment, not before
		{"2026-03-02", []int{11, 10, 9}, true, true},
		{"2026-03-01", nil, false, false},
	} {
		var got APIEnvironmentDeployments
		f.getJSON(base+url.QueryEscape(tt.until), http.StatusOK, &got)
		if diff := cmp.Diff(tt.want, numbers(got)); diff != "" || (got.NextCursor != "") != tt.next || (got.PrevCursor != "") != tt.prev {
			t.Errorf("until=%s: (-want +got):\n%s next %q prev %q", tt.until, diff, got.NextCursor, got.PrevCursor)
		}
		if tt.until == dashAt(125).Format(time.RFC3339) {
			var newer APIEnvironmentDeployments
			f.getJSON("/api/v1/programs/acme/app/environments/production/deployments?limit=3&cursor="+url.QueryEscape(got.PrevCursor), http.StatusOK, &newer)
			if diff := cmp.Diff([]int{11, 10, 9}, numbers(newer)); diff != "" {
				t.Errorf("the page newer than until=%s (-want +got):\n%s", tt.until, diff)
			}
		}
	}
	for query, msg := range map[string]string{
		"until=last-tuesday":             `until "last-tuesday" is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a date (2026-12-01)`,
		"until=2026-03-02&cursor=YjEuMQ": "give until (where a listing starts) or cursor (where it goes on), not both",
	} {
		var got APIError
		f.getJSON("/api/v1/programs/acme/app/environments/production/deployments?"+query, http.StatusBadRequest, &got)
		if got.Error != msg {
			t.Errorf("?%s: %q, want %q", query, got.Error, msg)
		}
	}

	page := f.page("/programs/acme/app/environments/production/deployments")
	mustContain(t, "the history page", page, `name="until"`)
	page = text(f.page("/programs/acme/app/environments/production/deployments?until=" + url.QueryEscape(dashAt(125).Format(time.RFC3339))))
	mustContain(t, "the page until 12:05", page, "prod-only #8", "prod-only #6", "prod-only #2", "← newer")
	mustNotContain(t, "the page until 12:05", page, "prod-only #9 ", "prod-only #11")
	mustContain(t, "the page until March 1", text(f.page("/programs/acme/app/environments/production/deployments?until=2026-03-01")),
		"Nothing was deployed to production before 2026-03-01.")
}
