package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// getJSON fetches path, checks the status and the content type, and
// decodes the body into v, refusing unknown fields.
func (f *dashFixture) getJSON(path string, status int, v any) {
	f.t.Helper()
	got, h, body := f.get(path)
	if got != status {
		f.t.Fatalf("GET %s: %d, want %d:\n%s", path, got, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		f.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.t.Fatalf("GET %s: decoding %s: %v", path, body, err)
	}
}

func tp(t time.Time) *time.Time { return &t }

func dashAt(m int) time.Time { return dashT0.Add(time.Duration(m) * time.Minute) }

// apiWant is the fixture's execution n as the API shows it in lists.
func (f *dashFixture) apiWant(n int) APIExecution {
	ex := f.ex[n]
	e := APIExecution{
		Number: n, Pipeline: string(ex.Pipeline), State: string(ex.State), Message: ex.Message, Commit: ex.Commit,
		Branch: ex.Branch, Cause: string(ex.Cause), TriggeredBy: ex.TriggeredBy, ArtifactDigest: ex.ArtifactDigest,
		CreatedAt: ex.CreatedAt, HTMLPath: "/programs/acme/app/executions/" + strconv.Itoa(n),
	}
	if !ex.StartedAt.IsZero() {
		e.StartedAt = tp(ex.StartedAt)
	}
	if !ex.FinishedAt.IsZero() {
		e.FinishedAt = tp(ex.FinishedAt)
	}
	if ex.SourceID != 0 {
		e.SourceNumber = 1
	}
	return e
}

func TestAPIPrograms(t *testing.T) {
	f := newDashFixture(t)
	var got APIPrograms
	f.getJSON("/api/v1/programs", http.StatusOK, &got)
	want := APIPrograms{Programs: []APIProgram{
		{Owner: "acme", Repo: "app", FullName: "acme/app", HTMLPath: "/programs/acme/app", APIPath: "/api/v1/programs/acme/app"},
		{Owner: "acme", Repo: "other", FullName: "acme/other", HTMLPath: "/programs/acme/other", APIPath: "/api/v1/programs/acme/other"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/v1/programs (-want +got):\n%s", diff)
	}
}

func TestAPIProgram(t *testing.T) {
	f := newDashFixture(t)
	var got APIProgramDetail
	f.getJSON("/api/v1/programs/acme/app", http.StatusOK, &got)
	digest := f.set.Digest
	want := APIProgramDetail{
		Program: APIProgram{Owner: "acme", Repo: "app", FullName: "acme/app", HTMLPath: "/programs/acme/app", APIPath: "/api/v1/programs/acme/app"},
		Pipelines: []APIPipeline{
			{Kind: "full-stack", Branch: "main", Trigger: "manual", Approval: true, LastExecutions: []APIExecution{f.apiWant(5)}},
			{Kind: "stage-only", Branch: "main", Trigger: "on-git-changes", LastExecutions: []APIExecution{f.apiWant(4), f.apiWant(1)}},
			{Kind: "prod-only", Approval: true, Scheduled: true, LastExecutions: []APIExecution{f.apiWant(3), f.apiWant(2)}},
		},
		Environments: []APIEnvironment{
			{
				Name:       "stage",
				Deployment: &APIDeployment{Commit: commitOne, Pipeline: "stage-only", ExecutionNumber: 1, ArtifactDigest: digest, Since: dashAt(4), HTMLPath: "/programs/acme/app/executions/1"},
				HeldBy:     []APIExecution{f.apiWant(4)},
				QueuedNext: []APIExecution{f.apiWant(5)},
				Variables: []APIVariable{
					{Name: "LOG_LEVEL", Value: "trace", Source: "set"},
					{Name: "REGION", Value: "eu-west-1", Source: "config"},
				},
			},
			{
				Name:       "production",
				Deployment: &APIDeployment{Commit: commitOne, Pipeline: "prod-only", ExecutionNumber: 2, ArtifactDigest: digest, Since: dashAt(20), HTMLPath: "/programs/acme/app/executions/2"},
				HeldBy:     []APIExecution{},
				QueuedNext: []APIExecution{f.apiWant(5)},
				Variables:  []APIVariable{{Name: "FEATURE_X", Value: dashEvil, Source: "set"}},
			},
		},
		Queue: []APIExecution{f.apiWant(4), f.apiWant(5)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/v1/programs/acme/app (-want +got):\n%s", diff)
	}

	// A program with nothing yet: empty lists, not null.
	_, _, body := f.get("/api/v1/programs/acme/other")
	for _, s := range []string{`"pipelines": []`, `"queue": []`, `"deployment": null`, `"held_by": []`, `"variables": []`} {
		if !strings.Contains(body, s) {
			t.Errorf("acme/other lacks %s:\n%s", s, body)
		}
	}
}

func TestAPIExecutions(t *testing.T) {
	f := newDashFixture(t)
	for query, numbers := range map[string][]int{
		"":                                 {5, 4, 3, 2, 1},
		"?pipeline=stage-only":             {4, 1},
		"?state=active":                    {5, 4},
		"?state=succeeded,cancelled":       {3, 2, 1},
		"?pipeline=prod-only&state=failed": {},
		"?limit=2":                         {5, 4},
	} {
		var got APIExecutions
		f.getJSON("/api/v1/programs/acme/app/executions"+query, http.StatusOK, &got)
		want := APIExecutions{Executions: []APIExecution{}}
		for _, n := range numbers {
			want.Executions = append(want.Executions, f.apiWant(n))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET …/executions%s (-want +got):\n%s", query, diff)
		}
	}
}

func TestAPIExecution(t *testing.T) {
	f := newDashFixture(t)
	var got APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/2", http.StatusOK, &got)
	src := f.apiWant(1)
	step := func(name bot.StepName, from, to int, msg string) APIStep {
		return APIStep{Name: string(name), State: "succeeded", Message: msg, Attempt: 1, StartedAt: tp(dashAt(from)), FinishedAt: tp(dashAt(to)),
			DurationMS: int64(to-from) * time.Minute.Milliseconds()}
	}
	want := APIExecutionDetail{
		APIExecution: f.apiWant(2),
		Program:      "acme/app",
		Steps: []APIStep{
			step(bot.StepArtifactPreparation, 10, 11, "source stage-only #1: 3 files verified"),
			step(bot.StepApproval, 11, 15, "approved by bob"),
			step(bot.StepSchedule, 15, 15, "no schedule"),
			step(bot.StepDeployProduction, 15, 20, "deployed to production"),
		},
		Events: []APIEvent{
			{At: dashAt(10), Actor: "alice", Kind: "promoted", Detail: "from stage-only #1"},
			{At: dashAt(15), Actor: "bob", Kind: "approved"},
		},
		Source:        &src,
		ArtifactSet:   &APIArtifactSet{Digest: f.set.Digest, Size: f.set.Size(), Files: f.set.Files},
		Notifications: []APINotification{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET …/executions/2 (-want +got):\n%s", diff)
	}

	// The running #4: its step's tail comes from the log file, and the
	// push's note about full-stack is there.
	var four APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/4", http.StatusOK, &four)
	build := four.Steps[0]
	wantBuild := APIStep{Name: "build", State: "running", Attempt: 1, StartedAt: tp(dashAt(40)), DurationMS: 5 * time.Minute.Milliseconds(),
		LogTail: "$ make dist\nstill compiling " + dashEvil + "\n", LogBytes: int64(len("$ make dist\nstill compiling " + dashEvil + "\n")),
		LogPath: "/programs/acme/app/executions/4/logs/build"}
	if diff := cmp.Diff(wantBuild, build); diff != "" {
		t.Errorf("#4 build step (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"full-stack not started: its trigger is manual " + dashEvil}, four.Notes); diff != "" {
		t.Errorf("#4 notes (-want +got):\n%s", diff)
	}
	if four.ArtifactSet != nil || four.ArtifactError != "" {
		t.Errorf("#4 has no artifact set yet, got %+v %q", four.ArtifactSet, four.ArtifactError)
	}

	// #1's build log: the stored tail and the whole log's path and size.
	var one APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/1", http.StatusOK, &one)
	if b := one.Steps[0]; b.LogTail != "the tail of the build log\nbuild ok\n" || b.LogPath != "/programs/acme/app/executions/1/logs/build" || b.LogBytes != int64(len(f.buildLog)) {
		t.Errorf("#1 build: %+v", b)
	}
}

func TestAPIArtifactSetMissing(t *testing.T) {
	f := newDashFixture(t)
	f.dash.Artifacts = missingArtifacts{}
	var got APIExecutionDetail
	f.getJSON("/api/v1/programs/acme/app/executions/2", http.StatusOK, &got)
	if got.ArtifactSet != nil || !strings.HasPrefix(got.ArtifactError, "the artifact set "+f.set.Digest+" is not in the artifact store (retention removes") {
		t.Errorf("missing artifact set: %+v %q", got.ArtifactSet, got.ArtifactError)
	}
	mustContain(t, "execution #2 without its artifact set", text(f.page("/programs/acme/app/executions/2")),
		"Artifact set the artifact set "+f.set.Digest+" is not in the artifact store")
}

type missingArtifacts struct{}

func (missingArtifacts) Get(ctx context.Context, digest string) (bot.ArtifactSet, error) {
	return bot.ArtifactSet{}, bot.ErrNotFound
}

func TestAPIErrors(t *testing.T) {
	f := newDashFixture(t)
	for path, want := range map[string]struct {
		status int
		msg    string
	}{
		"/api/v1/programs/acme/nope":                            {404, "Stagehand has no program acme/nope. A program appears when the GitHub App is installed on its repository; known programs: acme/app, acme/other."},
		"/api/v1/programs/acme/nope/executions":                 {404, "Stagehand has no program acme/nope. A program appears when the GitHub App is installed on its repository; known programs: acme/app, acme/other."},
		"/api/v1/programs/acme/app/executions/42":               {404, "acme/app has no execution #42: its executions are #1 to #5."},
		"/api/v1/programs/acme/app/executions/x":                {404, `"x" is not an execution number: executions are numbered 1, 2, 3, …`},
		"/api/v1/programs/acme/app/executions?pipeline=nightly": {400, `unknown pipeline "nightly": use full-stack, stage-only or prod-only`},
		"/api/v1/programs/acme/app/executions?state=done":       {400, `unknown state "done": use queued, running, waiting, succeeded, failed, cancelled, skipped or active`},
		"/api/v1/programs/acme/app/executions?limit=0":          {400, `limit must be a number from 1 to 500, got "0"`},
		"/api/v1/nothing":                                       {404, "no API endpoint at /api/v1/nothing; the endpoints are GET /api/v1/programs, /api/v1/programs/{owner}/{repo}, …/executions and …/executions/{number}"},
	} {
		var got APIError
		f.getJSON(path, want.status, &got)
		if got.Error != want.msg {
			t.Errorf("GET %s: error %q, want %q", path, got.Error, want.msg)
		}
	}

	resp, err := http.Post(f.srv.URL+"/api/v1/programs", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got APIError
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || got.Error != "the API is read-only: use GET" || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /api/v1/programs: %d %q Allow %q", resp.StatusCode, got.Error, resp.Header.Get("Allow"))
	}
}
