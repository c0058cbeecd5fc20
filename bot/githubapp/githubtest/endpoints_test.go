package githubtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

const headSHA = "abc1234def5678abc1234def5678abc1234def56"

// errorsSince returns the errors recorded after the first before ones.
func errorsSince(s *githubtest.Server, before int) []string {
	var out []string
	for _, err := range s.Errors()[before:] {
		out = append(out, err.Error())
	}
	return out
}

func TestCheckRunEndpoints(t *testing.T) {
	s := newServer(t)
	tok := "token " + installationToken(t, s, 1)
	base := s.URL() + "repos/acme/app/"
	create := func(body string) int64 {
		t.Helper()
		status, resp := do(t, "POST", base+"check-runs", tok, body)
		if status != 201 {
			t.Fatalf("create: %d %s", status, resp)
		}
		var cr struct{ ID int64 }
		_ = json.Unmarshal(resp, &cr)
		return cr.ID
	}
	first := create(`{"name":"stagehand/a","head_sha":"` + headSHA + `","status":"in_progress"}`)
	second := create(`{"name":"stagehand/a","head_sha":"` + headSHA + `","conclusion":"success"}`)
	create(`{"name":"stagehand/b","head_sha":"` + headSHA + `"}`)
	create(`{"name":"stagehand/a","head_sha":"0000000000000000000000000000000000000000"}`)

	if got := s.CheckRun(second); got.Status != "completed" || got.Conclusion != "success" || got.CompletedAt.IsZero() {
		t.Errorf("a conclusion completes the run: %+v", got)
	}
	if got := s.CheckRun(first); got.Status != "in_progress" || got.Conclusion != "" {
		t.Errorf("first run %+v", got)
	}
	// Annotations accumulate; title, summary and text are replaced.
	for i, body := range []string{
		`{"name":"stagehand/a","output":{"title":"t1","summary":"s1","annotations":[{"path":"a","start_line":1,"end_line":1,"annotation_level":"notice","message":"m1"}]}}`,
		`{"name":"stagehand/a","output":{"title":"t2","summary":"s2","annotations":[{"path":"b","start_line":2,"end_line":2,"annotation_level":"failure","message":"m2"}]}}`,
	} {
		if status, resp := do(t, "PATCH", base+"check-runs/"+itoa(first), tok, body); status != 200 {
			t.Fatalf("update %d: %d %s", i, status, resp)
		}
	}
	got := s.CheckRun(first)
	if got.Output.Title != "t2" || got.Output.Summary != "s2" || len(got.Output.Annotations) != 2 || len(got.Bodies) != 3 {
		t.Errorf("after updates: %+v", got)
	}

	// latest (the default): the newest run of each name for the sha.
	var list struct {
		Total int `json:"total_count"`
		Runs  []struct {
			ID   int64
			Name string
		} `json:"check_runs"`
	}
	status, resp := do(t, "GET", base+"commits/"+headSHA+"/check-runs", tok, "")
	if err := json.Unmarshal(resp, &list); err != nil || status != 200 {
		t.Fatalf("list: %d %s", status, resp)
	}
	if list.Total != 2 || list.Runs[0].Name != "stagehand/b" || list.Runs[1].ID != second {
		t.Errorf("latest: %+v", list)
	}
	req, _ := http.NewRequest("GET", base+"commits/"+headSHA+"/check-runs?filter=all&per_page=2&check_name=stagehand/a", nil)
	req.Header.Set("Authorization", tok)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(r.Body).Decode(&list)
	r.Body.Close()
	if list.Total != 2 || len(list.Runs) != 2 || r.Header.Get("Link") != "" {
		t.Errorf("all of stagehand/a: %+v, Link %q", list, r.Header.Get("Link"))
	}
	if len(s.CheckRuns("acme", "app")) != 4 || len(s.CheckRuns("other", "lib")) != 0 {
		t.Errorf("CheckRuns: %d and %d", len(s.CheckRuns("acme", "app")), len(s.CheckRuns("other", "lib")))
	}
	s.AssertNoErrors(t)

	// What GitHub refuses to an App is answered 422 and recorded.
	for _, body := range []string{
		`{"name":"x","head_sha":"` + headSHA + `","status":"completed","conclusion":"stale"}`,
		`{"name":"x","head_sha":"` + headSHA + `","status":"pending"}`,
	} {
		before := len(s.Errors())
		if status, _ := do(t, "POST", base+"check-runs", tok, body); status != 422 || len(s.Errors()) != before+1 {
			t.Errorf("%s: status %d, errors %v", body, status, errorsSince(s, before))
		}
	}
}

func TestCommentEndpoints(t *testing.T) {
	s := newServer(t)
	tok := "token " + installationToken(t, s, 1)
	base := s.URL() + "repos/acme/app/"
	user := s.AddComment("acme", "app", 5, "octocat", "/stagehand help")
	statuses := []int{}
	for range 2 {
		status, _ := do(t, "POST", base+"issues/comments/"+itoa(user)+"/reactions", tok, `{"content":"eyes"}`)
		statuses = append(statuses, status)
	}
	if diff := cmp.Diff([]int{201, 200}, statuses); diff != "" {
		t.Errorf("reaction statuses (-want +got):\n%s", diff)
	}
	if status, _ := do(t, "PATCH", base+"issues/comments/"+itoa(user), tok, `{"body":"mine now"}`); status != 403 {
		t.Errorf("editing a user's comment: %d, want 403", status)
	}
	status, resp := do(t, "POST", base+"issues/5/comments", tok, `{"body":"Here is help."}`)
	var c struct {
		ID   int64
		User struct{ Login, Type string }
	}
	if err := json.Unmarshal(resp, &c); err != nil || status != 201 || c.User.Login != githubtest.BotLogin || c.User.Type != "Bot" {
		t.Fatalf("create: %d %s", status, resp)
	}
	comments := s.Comments("acme", "app", 5)
	if len(comments) != 2 || comments[0].User != "octocat" || comments[1].ID != c.ID || comments[1].Body != "Here is help." {
		t.Errorf("comments %+v", comments)
	}
	if diff := cmp.Diff([]string{"eyes"}, s.Reactions(user)); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	if status, _ := do(t, "POST", base+"issues/comments/999/reactions", tok, `{"content":"eyes"}`); status != 404 {
		t.Errorf("reaction on a missing comment: %d", status)
	}
	s.AssertNoErrors(t)
	before := len(s.Errors())
	long, _ := json.Marshal(map[string]string{"body": strings.Repeat("x", 65537)})
	if status, _ := do(t, "POST", base+"issues/5/comments", tok, string(long)); status != 422 || len(s.Errors()) != before+1 {
		t.Errorf("over-long comment: %d, errors %v", status, errorsSince(s, before))
	}
}

func TestDeploymentEndpointsFlagMissingFields(t *testing.T) {
	s := newServer(t)
	tok := "token " + installationToken(t, s, 1)
	url := s.URL() + "repos/acme/app/deployments"
	tests := []struct {
		name, body string
		wantErrs   []string
	}{
		{"both", `{"ref":"main","environment":"stage","auto_merge":false,"required_contexts":[]}`, nil},
		{"no auto_merge", `{"ref":"main","environment":"stage","required_contexts":[]}`, []string{"auto_merge"}},
		{"auto_merge true", `{"ref":"main","auto_merge":true,"required_contexts":[]}`, []string{"auto_merge"}},
		{"no required_contexts", `{"ref":"main","auto_merge":false}`, []string{"required_contexts"}},
		{"some required_contexts", `{"ref":"main","auto_merge":false,"required_contexts":["ci"]}`, []string{"required_contexts"}},
		{"neither", `{"ref":"main"}`, []string{"auto_merge", "required_contexts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Errors())
			if status, resp := do(t, "POST", url, tok, tt.body); status != 201 {
				t.Fatalf("status %d %s", status, resp)
			}
			errs := errorsSince(s, before)
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want ones about %v", errs, tt.wantErrs)
			}
			for i, want := range tt.wantErrs {
				if !strings.Contains(errs[i], want) {
					t.Errorf("error %q, want one about %s", errs[i], want)
				}
			}
		})
	}
	deps := s.Deployments("acme", "app")
	if len(deps) != len(tests) || deps[1].AutoMerge != nil || deps[0].Environment != "stage" || deps[2].Environment != "production" || !deps[2].ProductionEnvironment {
		t.Errorf("deployments %+v", deps)
	}
	// Statuses: unknown deployment 404, a description over 140 characters 422.
	if status, _ := do(t, "POST", url+"/1/statuses", tok, `{"state":"success"}`); status != 404 {
		t.Errorf("status of a missing deployment: %d", status)
	}
	before := len(s.Errors())
	long, _ := json.Marshal(map[string]string{"state": "success", "description": strings.Repeat("x", 141)})
	if status, _ := do(t, "POST", url+"/"+itoa(deps[0].ID)+"/statuses", tok, string(long)); status != 422 || len(s.Errors()) != before+1 {
		t.Errorf("long description: %d, %v", status, errorsSince(s, before))
	}
}

func TestPermissionAndTeamEndpoints(t *testing.T) {
	s := newServer(t)
	s.SetPermission("acme", "app", "Maint", "maintain")
	s.SetPermission("acme", "app", "tri", "triage")
	s.AddTeamMember("acme", "approvers", "alice")
	tok1 := "token " + installationToken(t, s, 1)
	tok2 := "token " + installationToken(t, s, 2)
	perm := func(user string) (int, string, string) {
		status, resp := do(t, "GET", s.URL()+"repos/acme/app/collaborators/"+user+"/permission", tok1, "")
		var p struct {
			Permission string
			RoleName   string `json:"role_name"`
			Message    string
		}
		_ = json.Unmarshal(resp, &p)
		if status != 200 {
			return status, p.Message, ""
		}
		return status, p.Permission, p.RoleName
	}
	type answer struct {
		Status      int
		Permission  string
		RoleOrEmpty string
	}
	for user, want := range map[string]answer{
		"maint": {200, "write", "maintain"}, "tri": {200, "read", "triage"},
		"alice": {200, "none", "none"}, "ghost": {404, "ghost is not a user", ""},
	} {
		status, p, role := perm(user)
		if diff := cmp.Diff(want, answer{status, p, role}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", user, diff)
		}
	}
	team := s.URL() + "orgs/acme/teams/approvers/memberships/"
	if status, resp := do(t, "GET", team+"alice", tok1, ""); status != 200 || !strings.Contains(string(resp), `"state":"active"`) {
		t.Errorf("member: %d %s", status, resp)
	}
	for _, tt := range []struct{ user, tok string }{{"bob", tok1}, {"alice", tok2}} {
		if status, _ := do(t, "GET", team+tt.user, tt.tok, ""); status != 404 {
			t.Errorf("%s: %d, want 404", tt.user, status)
		}
	}
	if status, _ := do(t, "GET", team+"alice", "", ""); status != 401 {
		t.Errorf("no token: %d, want 401", status)
	}
	for _, c := range s.Calls() {
		if strings.HasPrefix(c.Path, "/orgs/") && c.Operation != "GET /orgs/{org}/teams/{team_slug}/memberships/{username}" {
			t.Errorf("call %s recorded as operation %q", c.Path, c.Operation)
		}
	}
	s.AssertNoErrors(t)
}

func TestRateLimitNext(t *testing.T) {
	s := newServer(t)
	s.RateLimitNext("/rate_limit", 1, 1500*time.Millisecond)
	s.RateLimitNext("/rate_limit", 1, 0)
	var got []string
	for range 3 {
		resp, err := http.Get(s.URL() + "rate_limit")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Message string
			Doc     string `json:"documentation_url"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		got = append(got, strings.Join([]string{itoa(int64(resp.StatusCode)), resp.Header.Get("Retry-After"),
			resp.Header.Get("X-RateLimit-Remaining"), strings.Fields(body.Message + " x")[0],
			itoa(int64(strings.Count(body.Doc, "secondary-rate-limits")))}, " "))
	}
	want := []string{"403 2 4999 You 1", "403  4999 You 1", "200  4999 x 0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	s.AssertNoErrors(t)
}

func TestSlowNext(t *testing.T) {
	s := newServer(t)
	s.SlowNext("/rate_limit", 1, 300*time.Millisecond)
	for i, want := range []time.Duration{300 * time.Millisecond, 0} {
		start := time.Now()
		if status, _ := do(t, "GET", s.URL()+"rate_limit", "", ""); status != 200 {
			t.Fatalf("status %d", status)
		}
		elapsed := time.Since(start)
		if elapsed < want || (want == 0 && elapsed > 250*time.Millisecond) {
			t.Errorf("request %d took %v, want about %v", i, elapsed, want)
		}
	}
	// A client that gives up is recorded with status 0.
	s.SlowNext("/rate_limit", 1, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"rate_limit", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request survived its deadline")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		calls := s.Calls()
		if len(calls) == 3 && calls[2].Status == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("abandoned slow request not recorded with status 0: %+v", s.Calls())
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
