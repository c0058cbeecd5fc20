package githubapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

func TestCheckRunRoundTrip(t *testing.T) {
	app, gh := setup(t)
	ctx := context.Background()
	id, err := app.CreateCheckRun(ctx, 1, "acme", "app", github.CreateCheckRunOptions{
		Name: "stagehand/deploy", HeadSHA: sha,
		Status:     github.String("in_progress"),
		ExternalID: github.String("42"),
		DetailsURL: github.String("https://stagehand.example.com/executions/42"),
		Output: &github.CheckRunOutput{
			Title: github.String("Deploying"), Summary: github.String("| step | state |\n|---|---|\n| build | running |"),
			Text: github.String("log tail"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	actions := []*github.CheckRunAction{
		{Label: "Promote to Prod", Description: "Deploy this build to production", Identifier: "approve:42"},
		{Label: "Reject", Description: "Stop here", Identifier: "reject:42"},
	}
	err = app.UpdateCheckRun(ctx, 1, "acme", "app", id, github.UpdateCheckRunOptions{
		Name: "stagehand/deploy", Conclusion: github.String("action_required"),
		Output: &github.CheckRunOutput{
			Title: github.String("Waiting for approval"), Summary: github.String("approve or reject"),
			Annotations: []*github.CheckRunAnnotation{{Path: github.String("deploy.sh"), StartLine: github.Int(1), EndLine: github.Int(1),
				AnnotationLevel: github.String("warning"), Message: github.String("slow step")}},
		},
		Actions: actions,
	})
	if err != nil {
		t.Fatal(err)
	}
	runs := gh.CheckRuns("acme", "app")
	if len(runs) != 1 || runs[0].ID != id {
		t.Fatalf("check runs %+v, want one with id %d", runs, id)
	}
	got := runs[0]
	want := githubtest.CheckRun{
		ID: id, Owner: "acme", Repo: "app", Name: "stagehand/deploy", HeadSHA: sha,
		Status: "completed", Conclusion: "action_required", ExternalID: "42",
		DetailsURL: "https://stagehand.example.com/executions/42",
		Output: githubtest.CheckRunOutput{Title: "Waiting for approval", Summary: "approve or reject", Text: "log tail",
			Annotations: []githubtest.Annotation{{Path: "deploy.sh", StartLine: 1, EndLine: 1, AnnotationLevel: "warning", Message: "slow step"}}},
		Actions: []githubtest.CheckRunAction{
			{Label: "Promote to Prod", Description: "Deploy this build to production", Identifier: "approve:42"},
			{Label: "Reject", Description: "Stop here", Identifier: "reject:42"},
		},
		StartedAt: got.StartedAt, CompletedAt: got.CompletedAt, Bodies: got.Bodies,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("check run (-want +got):\n%s", diff)
	}
	if got.StartedAt.IsZero() || got.CompletedAt.IsZero() || len(got.Bodies) != 2 {
		t.Errorf("started %v completed %v, %d bodies; want both times and 2 bodies", got.StartedAt, got.CompletedAt, len(got.Bodies))
	}
	if diff := cmp.Diff(got, gh.CheckRun(id)); diff != "" {
		t.Errorf("CheckRun(id) differs from CheckRuns (-list +byID):\n%s", diff)
	}
	// The list endpoint shows the same run.
	ids, err := app.CheckRunIDs(ctx, 1, "acme", "app", sha, "stagehand/deploy", "42")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{id}, ids); diff != "" {
		t.Errorf("listed check runs (-want +got):\n%s", diff)
	}
	gh.AssertNoErrors(t)
}

func TestUpdateCheckRunNeedsName(t *testing.T) {
	app, gh := setup(t)
	err := app.UpdateCheckRun(context.Background(), 1, "acme", "app", 7, github.UpdateCheckRunOptions{Status: github.String("in_progress")})
	if err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("error %v, want one about the name", err)
	}
	if len(gh.Calls()) != 0 {
		t.Errorf("sent %d requests, want none", len(gh.Calls()))
	}
}

func TestCheckRunErrorsAreWorded(t *testing.T) {
	app, gh := setup(t)
	err := app.UpdateCheckRun(context.Background(), 1, "acme", "app", 999999, github.UpdateCheckRunOptions{Name: "stagehand/x", Status: github.String("in_progress")})
	if !errors.Is(err, bot.ErrNotFound) || !strings.Contains(err.Error(), "update check run 999999") {
		t.Errorf("error %v, want a not-found error naming the check run", err)
	}
	// The repository belongs to installation 2: 404 too.
	_, err = app.CreateCheckRun(context.Background(), 1, "other", "lib", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha})
	if !errors.Is(err, bot.ErrNotFound) || !strings.Contains(err.Error(), "installation 1 cannot see it") {
		t.Errorf("error %v, want not found for another installation's repo", err)
	}
	gh.AssertNoErrors(t)
}

func TestCommentEditAndReact(t *testing.T) {
	app, gh := setup(t)
	ctx := context.Background()
	userComment := gh.AddComment("acme", "app", 7, "octocat", "/stagehand status")
	if err := app.React(ctx, 1, "acme", "app", userComment, "eyes"); err != nil {
		t.Fatal(err)
	}
	if err := app.React(ctx, 1, "acme", "app", userComment, "eyes"); err != nil { // GitHub answers 200
		t.Fatal(err)
	}
	id, err := app.CreateComment(ctx, 1, "acme", "app", 7, "Nothing is running.")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.EditComment(ctx, 1, "acme", "app", id, "Nothing is running (edited)."); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eyes"}, gh.Reactions(userComment)); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	comments := gh.Comments("acme", "app", 7)
	if len(comments) != 2 {
		t.Fatalf("%d comments, want 2", len(comments))
	}
	got := comments[1]
	if got.ID != id || got.User != githubtest.BotLogin || got.Body != "Nothing is running (edited)." ||
		!cmp.Equal(got.Bodies, []string{"Nothing is running.", "Nothing is running (edited)."}) {
		t.Errorf("comment %+v", got)
	}
	if err := app.React(ctx, 1, "acme", "app", 424242, "eyes"); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("reacting to a missing comment: %v, want ErrNotFound", err)
	}
	if err := app.React(ctx, 1, "acme", "app", userComment, "thumbsup"); err == nil || !strings.Contains(err.Error(), "eyes") {
		t.Errorf("unknown reaction: %v", err)
	}
	gh.AssertNoErrors(t)
}

func TestLongCommentIsCut(t *testing.T) {
	app, gh := setup(t)
	body := strings.Repeat("é", 70000)
	if _, err := app.CreateComment(context.Background(), 1, "acme", "app", 3, body); err != nil {
		t.Fatal(err)
	}
	got := gh.Comments("acme", "app", 3)[0].Body
	if n := len([]rune(got)); n != 65536 || !strings.HasSuffix(got, "65536 characters)") {
		t.Errorf("body of %d characters ending %q", n, got[len(got)-40:])
	}
	gh.AssertNoErrors(t)
}

func TestDeployment(t *testing.T) {
	app, gh := setup(t)
	ctx := context.Background()
	payload := map[string]any{"execution": 42, "digest": "sha256:abc"}
	stage1, err := app.CreateDeployment(ctx, 1, "acme", "app", sha, "stage", "stage-only #41", payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.CreateDeploymentStatus(ctx, 1, "acme", "app", stage1, "success", "https://stage.example.com", "https://stagehand.example.com/executions/41", "deployed"); err != nil {
		t.Fatal(err)
	}
	stage2, err := app.CreateDeployment(ctx, 1, "acme", "app", sha, "stage", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := app.CreateDeployment(ctx, 1, "acme", "app", sha, "production", "full-stack #42", payload)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 200)
	for _, st := range []string{"in_progress", "success"} {
		if err := app.CreateDeploymentStatus(ctx, 1, "acme", "app", stage2, st, "", "https://stagehand.example.com/executions/42", long); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.CreateDeploymentStatus(ctx, 1, "acme", "app", prod, "in_progress", "", "https://stagehand.example.com/executions/42", ""); err != nil {
		t.Fatal(err)
	}
	deps := gh.Deployments("acme", "app")
	if len(deps) != 3 || deps[0].ID != stage1 || deps[1].ID != stage2 || deps[2].ID != prod {
		t.Fatalf("deployments %+v", deps)
	}
	for _, d := range deps {
		if d.AutoMerge == nil || *d.AutoMerge || d.RequiredContexts == nil || len(d.RequiredContexts) != 0 || d.TransientEnvironment {
			t.Errorf("deployment %d: auto_merge %v, required_contexts %#v, transient %v", d.ID, d.AutoMerge, d.RequiredContexts, d.TransientEnvironment)
		}
		// As sent on the wire: both explicitly.
		if !strings.Contains(string(d.Body), `"auto_merge":false`) || !strings.Contains(string(d.Body), `"required_contexts":[]`) {
			t.Errorf("deployment %d body %s", d.ID, d.Body)
		}
		if d.ProductionEnvironment != (d.Environment == "production") || d.Ref != sha || d.SHA != sha {
			t.Errorf("deployment %d: environment %q production %v ref %q sha %q", d.ID, d.Environment, d.ProductionEnvironment, d.Ref, d.SHA)
		}
	}
	var p map[string]any
	if err := json.Unmarshal(deps[0].Payload, &p); err != nil || p["execution"] != 42.0 || p["digest"] != "sha256:abc" {
		t.Errorf("payload %s (%v)", deps[0].Payload, err)
	}
	if deps[1].Payload != nil || deps[0].Description != "stage-only #41" {
		t.Errorf("payload %s description %q", deps[1].Payload, deps[0].Description)
	}
	states := func(d githubtest.Deployment) []string {
		var out []string
		for _, s := range d.Statuses {
			out = append(out, s.State)
		}
		return out
	}
	// The second stage deployment's success made GitHub mark the first inactive.
	if diff := cmp.Diff([]string{"success", "inactive"}, states(deps[0])); diff != "" {
		t.Errorf("stage1 statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"in_progress", "success"}, states(deps[1])); diff != "" {
		t.Errorf("stage2 statuses (-want +got):\n%s", diff)
	}
	s := deps[0].Statuses[0]
	if s.EnvironmentURL != "https://stage.example.com" || s.LogURL != "https://stagehand.example.com/executions/41" || s.Description != "deployed" {
		t.Errorf("status %+v", s)
	}
	if d := deps[1].Statuses[0].Description; len([]rune(d)) != 140 {
		t.Errorf("description of %d characters, want it cut to 140", len([]rune(d)))
	}
	if err := app.CreateDeploymentStatus(ctx, 1, "acme", "app", prod, "done", "", "", ""); err == nil {
		t.Error("unknown state accepted")
	}
	gh.AssertNoErrors(t)
}

func TestPermission(t *testing.T) {
	app, gh := setup(t)
	for _, role := range []string{"admin", "maintain", "write", "triage", "read", "none"} {
		gh.SetPermission("acme", "app", "user-"+role, role)
	}
	gh.SetPermission("other", "lib", "stranger", "admin")
	ctx := context.Background()
	tests := []struct {
		user, want string
		write      bool
	}{
		{"user-admin", "admin", true}, {"user-maintain", "maintain", true}, {"user-write", "write", true},
		{"user-triage", "triage", false}, {"user-read", "read", false}, {"user-none", "none", false},
		{"stranger", "none", false},      // known user without a role here
		{"nobody-at-all", "none", false}, // GitHub: 404 "is not a user"
	}
	for _, tt := range tests {
		got, err := app.Permission(ctx, 1, "acme", "app", tt.user)
		if err != nil {
			t.Fatalf("%s: %v", tt.user, err)
		}
		if got != tt.want || githubapp.HasPermission(got, "write") != tt.write {
			t.Errorf("Permission(%s) = %q (write or higher: %v), want %q (%v)", tt.user, got, githubapp.HasPermission(got, "write"), tt.want, tt.write)
		}
	}
	if githubapp.HasPermission("custom-role", "read") || githubapp.HasPermission("admin", "owner") {
		t.Error("HasPermission accepted an unknown role")
	}
	gh.AssertNoErrors(t)
}

func TestIsTeamMember(t *testing.T) {
	app, gh := setup(t)
	gh.AddTeamMember("acme", "release-approvers", "alice")
	gh.AddTeamMember("other", "release-approvers", "bob")
	ctx := context.Background()
	for user, want := range map[string]bool{"alice": true, "ALICE": true, "bob": false, "carol": false} {
		got, err := app.IsTeamMember(ctx, 1, "acme", "release-approvers", user)
		if err != nil || got != want {
			t.Errorf("IsTeamMember(%s) = %v, %v; want %v", user, got, err, want)
		}
	}
	if got, err := app.IsTeamMember(ctx, 1, "acme", "other-team", "alice"); err != nil || got {
		t.Errorf("other team: %v, %v", got, err)
	}
	gh.AssertNoErrors(t)
}

// 500 twice then 201: the check run is created once.
func TestServerErrorsAreRetriedWithoutDuplicates(t *testing.T) {
	app, gh := setup(t)
	gh.FailNext("/repos/acme/app/check-runs", 2, http.StatusInternalServerError, nil)
	id, err := app.CreateCheckRun(context.Background(), 1, "acme", "app", github.CreateCheckRunOptions{Name: "stagehand/x", HeadSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	if runs := gh.CheckRuns("acme", "app"); len(runs) != 1 || runs[0].ID != id {
		t.Errorf("check runs %+v, want exactly the one created", runs)
	}
	var statuses []int
	for _, c := range gh.Calls() {
		if c.Operation == "POST /repos/{owner}/{repo}/check-runs" {
			statuses = append(statuses, c.Status)
		}
	}
	if diff := cmp.Diff([]int{500, 500, 201}, statuses); diff != "" {
		t.Errorf("POST statuses (-want +got):\n%s", diff)
	}
	gh.AssertNoErrors(t)
}

func TestSecondaryRateLimitWaitsRetryAfter(t *testing.T) {
	app, gh := setup(t)
	gh.RateLimitNext("/repos/acme/app/issues/", 1, time.Second)
	start := time.Now()
	if _, err := app.CreateComment(context.Background(), 1, "acme", "app", 1, "hello"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("retried after %v, want at least the 1s of Retry-After", elapsed)
	}
	if n := len(gh.Comments("acme", "app", 1)); n != 1 {
		t.Errorf("%d comments, want 1", n)
	}
	gh.AssertNoErrors(t)
}

func TestSecondaryRateLimitWithoutRetryAfterBacksOff(t *testing.T) {
	app, gh := setup(t)
	gh.RateLimitNext("/repos/acme/app/issues/", 2, 0)
	if _, err := app.CreateComment(context.Background(), 1, "acme", "app", 1, "hello"); err != nil {
		t.Fatal(err)
	}
	if n := len(gh.Comments("acme", "app", 1)); n != 1 {
		t.Errorf("%d comments, want 1", n)
	}
	gh.AssertNoErrors(t)
}

func TestPrimaryRateLimitWaitsForReset(t *testing.T) {
	app, gh := setup(t)
	reset := time.Now().Add(2 * time.Second).Unix()
	gh.FailNext("/repos/acme/app/check-runs", 1, http.StatusForbidden, http.Header{
		"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {fmt.Sprint(reset)},
	})
	start := time.Now()
	wantWait := time.Until(time.Unix(reset, 0))
	if _, err := app.CreateCheckRun(context.Background(), 1, "acme", "app", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < wantWait {
		t.Errorf("retried after %v, want to wait for the reset (%v)", elapsed, wantWait)
	}
	if n := len(gh.CheckRuns("acme", "app")); n != 1 {
		t.Errorf("%d check runs, want 1", n)
	}
	gh.AssertNoErrors(t)
}

// A wait GitHub asks for that outlasts the context fails at once.
func TestRateLimitPastDeadlineFailsFast(t *testing.T) {
	app, gh := setup(t)
	gh.RateLimitNext("/repos/acme/app/issues/", 1, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := app.CreateComment(ctx, 1, "acme", "app", 1, "hello")
	var rl *githubapp.RateLimitedError
	if !errors.Is(err, githubapp.ErrRateLimited) || !errors.As(err, &rl) || !rl.Secondary || rl.Installation != 1 {
		t.Fatalf("error %v, want a secondary RateLimitedError", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v, want to fail without waiting", time.Since(start))
	}
	if !strings.Contains(err.Error(), "secondary rate limit") || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("message %q does not say what happened", err)
	}
	gh.AssertNoErrors(t)
}

func TestSlowResponseAndDeadline(t *testing.T) {
	app, gh := setup(t)
	// The check-run token is fetched first: not part of what is timed.
	if _, err := app.CheckRunIDs(context.Background(), 1, "acme", "app", sha, "x", ""); err != nil {
		t.Fatal(err)
	}
	gh.SlowNext("/repos/acme/app/check-runs", 1, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := app.CreateCheckRun(ctx, 1, "acme", "app", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("returned after %v, want soon after the 200ms deadline", elapsed)
	}
	// The next request is not slowed and goes through (once: the slow POST
	// was abandoned by the client, so the stand-in did not create it).
	if _, err := app.CreateCheckRun(context.Background(), 1, "acme", "app", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	if n := len(gh.CheckRuns("acme", "app")); n != 1 {
		t.Errorf("%d check runs, want 1", n)
	}
	gh.AssertNoErrors(t)
}

func TestConcurrentWritesDoNotOverlap(t *testing.T) {
	app, gh := setup(t)
	gh.SetPermission("acme", "app", "octocat", "write")
	const n = 8
	gh.SlowNext("/repos/acme/app/", 3*n, 20*time.Millisecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, err := app.CreateComment(ctx, 1, "acme", "app", 1, fmt.Sprint("comment ", i))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := app.CreateCheckRun(ctx, 1, "acme", "app", github.CreateCheckRunOptions{Name: fmt.Sprint("c", i), HeadSHA: sha})
			errs <- err
		}()
		go func() { // reads are not serialised
			defer wg.Done()
			_, err := app.Permission(ctx, 1, "acme", "app", "octocat")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := gh.MaxConcurrentWrites(1); got != 1 {
		t.Errorf("up to %d writes of installation 1 in flight at once, want 1", got)
	}
	if len(gh.Comments("acme", "app", 1)) != n || len(gh.CheckRuns("acme", "app")) != n {
		t.Errorf("%d comments and %d check runs, want %d of each", len(gh.Comments("acme", "app", 1)), len(gh.CheckRuns("acme", "app")), n)
	}
	gh.AssertNoErrors(t)
}

// Without the client's lock the stand-in does see overlapping writes: the
// test above would notice a client that does not serialise.
func TestStandInSeesOverlappingWrites(t *testing.T) {
	apps := make([]*githubapp.App, 2)
	gh := githubtest.New(t)
	gh.SetAppKey(appID, &keys()[0].key.PublicKey)
	gh.AddRepo(1, "acme", "app")
	for i := range apps {
		var err error
		apps[i], err = githubapp.New(githubapp.Options{AppID: appID, PrivateKeyPEM: keys()[0].pem, APIURL: gh.URL()})
		if err != nil {
			t.Fatal(err)
		}
	}
	release := gh.Hold("/repos/acme/app/issues/")
	var wg sync.WaitGroup
	for _, a := range apps { // two App values: two locks
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.CreateComment(context.Background(), 1, "acme", "app", 1, "x"); err != nil {
				t.Error(err)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gh.WaitHeld(ctx, "/repos/acme/app/issues/", 2); err != nil {
		t.Error(err)
	}
	release()
	wg.Wait()
	if got := gh.MaxConcurrentWrites(1); got != 2 {
		t.Errorf("MaxConcurrentWrites = %d, want 2", got)
	}
}

func TestCallsCountedByLabel(t *testing.T) {
	app, gh := setup(t)
	if _, err := app.Token(context.Background(), 1, githubapp.Repository{Name: "app"}); err != nil { // unlabelled: ""
		t.Fatal(err)
	}
	gh.FailNext("/repos/acme/app/check-runs", 1, http.StatusBadGateway, nil)
	ctx42 := githubapp.WithCallLabel(context.Background(), "execution/42")
	ctx7 := githubapp.WithCallLabel(context.Background(), "execution/7")
	if _, err := app.CreateCheckRun(ctx42, 1, "acme", "app", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.CreateComment(ctx42, 1, "acme", "app", 1, "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.FetchFile(ctx7, 1, "acme", "app", cfgPath, sha); err != nil {
		t.Fatal(err)
	}
	// The retry after the 502 counts: it is another call against the
	// limits. So do the token requests, one per purpose (checks, comments,
	// contents), under the label of the call that needed them.
	want := map[string]int{"": 1, "execution/42": 5, "execution/7": 2}
	if diff := cmp.Diff(want, app.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	if total := len(gh.Calls()); total != 8 {
		t.Errorf("the stand-in saw %d requests, want 8", total)
	}
	gh.AssertNoErrors(t)
}

// failingTransport makes the first request matching match fail: before
// sending it (a dial error) or after GitHub got it (the answer is lost).
type failingTransport struct {
	mu        sync.Mutex
	match     func(*http.Request) bool
	afterSend bool
	left      int
}

func (f *failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fail := f.left > 0 && f.match(req)
	if fail {
		f.left--
	}
	f.mu.Unlock()
	if !fail {
		return http.DefaultTransport.RoundTrip(req)
	}
	if !f.afterSend {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return nil, errors.New("connection reset by peer")
}

func TestNetworkErrorRetries(t *testing.T) {
	isPost := func(r *http.Request) bool { return r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/comments") }
	isGet := func(r *http.Request) bool { return r.Method == "GET" && strings.Contains(r.URL.Path, "/permission") }
	tests := []struct {
		name         string
		ft           *failingTransport
		post         bool
		wantErr      bool
		wantComments int
	}{
		{"POST lost after sending is not repeated", &failingTransport{match: isPost, afterSend: true, left: 1}, true, true, 1},
		{"POST that failed to dial is retried", &failingTransport{match: isPost, left: 1}, true, false, 1},
		{"GET lost after sending is retried", &failingTransport{match: isGet, afterSend: true, left: 1}, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := githubtest.New(t)
			gh.SetAppKey(appID, &keys()[0].key.PublicKey)
			gh.AddRepo(1, "acme", "app")
			gh.SetPermission("acme", "app", "octocat", "write")
			app, err := githubapp.New(githubapp.Options{AppID: appID, PrivateKeyPEM: keys()[0].pem, APIURL: gh.URL(),
				HTTPClient: &http.Client{Transport: tt.ft}, Retry: fastRetry})
			if err != nil {
				t.Fatal(err)
			}
			if tt.post {
				_, err = app.CreateComment(context.Background(), 1, "acme", "app", 1, "once")
			} else {
				_, err = app.Permission(context.Background(), 1, "acme", "app", "octocat")
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error: %v", err, tt.wantErr)
			}
			if n := len(gh.Comments("acme", "app", 1)); n != tt.wantComments {
				t.Errorf("%d comments, want %d", n, tt.wantComments)
			}
			gh.AssertNoErrors(t)
		})
	}
}

// TestDeploymentIDs: the deployments of one commit and environment whose
// payload names the execution, found through GitHub's list (paged), as the
// reporter looks up a create whose answer was lost.
func TestDeploymentIDs(t *testing.T) {
	app, gh := setup(t)
	ctx := context.Background()
	create := func(env, pipeline string, n int) int64 {
		t.Helper()
		id, err := app.CreateDeployment(ctx, 1, "acme", "app", sha, env, "", map[string]any{"execution": n, "pipeline": pipeline})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	var want []int64
	for i := 0; i < 120; i++ { // more than a page of 100
		create("stage", "stage-only", 7)
	}
	want = append(want, create("production", "full-stack", 8))
	create("stage", "full-stack", 8)
	create("production", "full-stack", 9)
	create("production", "prod-only", 8)
	want = append(want, create("production", "full-stack", 8))
	ids, err := app.DeploymentIDs(ctx, 1, "acme", "app", sha, "production", "full-stack", 8)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("deployment ids (-want +got):\n%s", diff)
	}
	ids, err = app.DeploymentIDs(ctx, 1, "acme", "app", sha, "stage", "stage-only", 7)
	if err != nil || len(ids) != 120 {
		t.Errorf("stage-only #7: %d ids (%v), want 120 over two pages", len(ids), err)
	}
	ids, err = app.DeploymentIDs(ctx, 1, "acme", "app", strings.Repeat("0", 40), "production", "full-stack", 8)
	if err != nil || len(ids) != 0 {
		t.Errorf("another commit: %v (%v), want none", ids, err)
	}
	gh.AssertNoErrors(t)
}
