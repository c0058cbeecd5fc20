package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
	"github.com/stagehand-dev/stagehand/state"
)

const (
	testAppID = 4242
	owner     = "Codertocat"
	repo      = "Hello-World"
	inst      = 1 // the installation of push/branch-created.json
)

const bothOnMaster = `version: 1
build: {run: make, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh stage}
  production: {deploy: ./deploy.sh production}
pipelines:
  full-stack: {branch: master, trigger: on-git-changes}
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {}
`

// fastRetry keeps the client's retries of GitHub faults short in tests.
var fastRetry = githubapp.RetryPolicy{BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type env struct {
	gh    *githubtest.Server
	store *state.SQLite
	h     *webhook.Webhooks
	heads staticHeads
}

// staticHeads are branch heads a test sets (the default branch's head is
// where the policy is read).
type staticHeads map[string]string

func (h staticHeads) HeadCommit(_ context.Context, _ bot.Program, branch string) (string, error) {
	if sha, ok := h[branch]; ok {
		return sha, nil
	}
	return "", fmt.Errorf("branch %s: %w", branch, bot.ErrNotFound)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	gh := githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(testAppID, &key.PublicKey)
	gh.AddInstallation(inst, owner)
	gh.AddRepo(inst, owner, repo)
	app, err := githubapp.New(githubapp.Options{AppID: testAppID, PrivateKeyPEM: pemBytes, APIURL: gh.URL(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	t.Cleanup(func() { gh.AssertNoErrors(t) })
	parse := func(data []byte) (*bot.Config, bot.Diagnostics) {
		return config.ParseRepoConfig(config.RepoConfigPath, data)
	}
	heads := staticHeads{}
	return &env{gh: gh, store: store, heads: heads, h: &webhook.Webhooks{
		Store: store, Files: app, Clock: fixedClock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)},
		Logger:      slog.New(slog.DiscardHandler),
		ParseConfig: parse,
		Policies:    &webhook.Policies{Heads: heads, Files: app, Parse: parse},
	}}
}

// pushPayload is the real branch-created example with ref, commits and
// flags changed as a test needs.
func pushPayload(t *testing.T, edit map[string]any) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("push/branch-created.json"), &p); err != nil {
		t.Fatal(err)
	}
	for k, v := range edit {
		p[k] = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type summary struct {
	Pipeline bot.PipelineKind
	Number   int
	State    bot.ExecutionState
	Commit   string
	Message  string
}

func (e *env) executions(t *testing.T) []summary {
	t.Helper()
	var out []summary
	err := e.store.View(context.Background(), func(tx bot.Tx) error {
		p, err := tx.ProgramByName(context.Background(), owner, repo)
		if errors.Is(err, bot.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		es, err := tx.Executions(context.Background(), bot.ExecutionFilter{ProgramID: p.ID})
		for _, x := range es {
			out = append(out, summary{x.Pipeline, x.Number, x.State, x.Commit, x.Message})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) records(t *testing.T, commit string) []string {
	t.Helper()
	var out []string
	for _, r := range e.triggerRecords(t, commit) {
		out = append(out, string(r.Pipeline)+": "+r.Reason)
	}
	return out
}

// triggerRecords are the trigger records of the program at commit.
func (e *env) triggerRecords(t *testing.T, commit string) []bot.TriggerRecord {
	t.Helper()
	var rs []bot.TriggerRecord
	err := e.store.View(context.Background(), func(tx bot.Tx) error {
		p, err := tx.ProgramByName(context.Background(), owner, repo)
		if err != nil {
			return err
		}
		rs, err = tx.TriggerRecords(context.Background(), p.ID, commit)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestPushQueuesStageOnlyAndExplainsTheRest(t *testing.T) {
	e := newEnv(t)
	const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	e.gh.SetFile(owner, repo, sha, bot.ConfigPath, []byte(bothOnMaster))
	d := webhook.Delivery{GUID: "g-1", Event: "push", Payload: githubtest.Payload("push/branch-created.json")}
	if err := e.h.HandleDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	want := []summary{{bot.StageOnly, 1, bot.ExecutionQueued, sha, "queued by a push to master"}}
	if diff := cmp.Diff(want, e.executions(t)); diff != "" {
		t.Errorf("executions (-want +got):\n%s", diff)
	}
	wantRecords := []string{
		"full-stack: full-stack not started: stage-only has priority on master",
		"stage-only: stage-only #1 queued by the push of 6113728",
		"prod-only: prod-only not started: it never starts on a push; promote a stage-only execution instead",
	}
	if diff := cmp.Diff(wantRecords, e.records(t, sha)); diff != "" {
		t.Errorf("trigger records (-want +got):\n%s", diff)
	}
	var codes []bot.ReasonCode
	for _, r := range e.triggerRecords(t, sha) {
		codes = append(codes, r.Code)
	}
	if diff := cmp.Diff([]bot.ReasonCode{bot.ReasonPriority, bot.ReasonQueued, bot.ReasonNeverOnPush}, codes); diff != "" {
		t.Errorf("trigger records' codes (-want +got):\n%s", diff)
	}

	// The same delivery again (a broker redelivery): nothing changes and
	// GitHub is not asked again.
	calls := len(e.gh.Calls())
	if err := e.h.HandleDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, e.executions(t)); diff != "" {
		t.Errorf("after redelivery (-want +got):\n%s", diff)
	}
	if got := len(e.gh.Calls()); got != calls {
		t.Errorf("redelivery made %d GitHub calls, want none", got-calls)
	}
}

func TestPushCoalescesQueuedStarts(t *testing.T) {
	e := newEnv(t)
	shas := []string{"1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "3333333ccccccccccccccccccccccccccccccccc"}
	for i, sha := range shas {
		e.gh.SetFile(owner, repo, sha, bot.ConfigPath, []byte(bothOnMaster))
		d := webhook.Delivery{GUID: "g-" + sha, Event: "push", Payload: pushPayload(t, map[string]any{"after": sha, "created": false})}
		if err := e.h.HandleDelivery(context.Background(), d); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	want := []summary{
		{bot.StageOnly, 3, bot.ExecutionQueued, shas[2], "queued by a push to master"},
		{bot.StageOnly, 2, bot.ExecutionSkipped, shas[1], "superseded by 3333333"},
		{bot.StageOnly, 1, bot.ExecutionSkipped, shas[0], "superseded by 2222222"},
	}
	if diff := cmp.Diff(want, e.executions(t)); diff != "" {
		t.Errorf("executions (-want +got):\n%s", diff)
	}
}

func TestPushStartsNothing(t *testing.T) {
	tests := []struct {
		name        string
		payload     func(t *testing.T) []byte
		config      string // at the pushed commit; empty: no file
		wantRecords []string
		wantFetches int
	}{
		{
			name:    "tag push",
			payload: func(t *testing.T) []byte { return githubtest.Payload("push/tag-created.ghes-3.5.json") },
			config:  bothOnMaster,
		},
		{
			name: "branch deletion",
			payload: func(t *testing.T) []byte {
				return pushPayload(t, map[string]any{"deleted": true, "created": false, "after": "0000000000000000000000000000000000000000", "head_commit": nil, "commits": []any{}})
			},
			config: bothOnMaster,
		},
		{
			name:        "no configuration file",
			payload:     func(t *testing.T) []byte { return githubtest.Payload("push/branch-created.json") },
			wantRecords: []string{": nothing started: Codertocat/Hello-World has no .github/stagehand.yml at 6113728"},
			wantFetches: 1,
		},
		{
			name:        "invalid configuration file",
			payload:     func(t *testing.T) []byte { return githubtest.Payload("push/branch-created.json") },
			config:      "version: 1\npipelines:\n  prod-only: {trigger: on-git-changes}\n",
			wantFetches: 1,
		},
		{
			name:        "push to a branch no pipeline follows",
			payload:     func(t *testing.T) []byte { return pushPayload(t, map[string]any{"ref": "refs/heads/feature"}) },
			config:      bothOnMaster,
			wantFetches: 2, // the pushed commit's file, and the default branch's (policy)
			wantRecords: []string{
				"full-stack: full-stack not started: it follows branch master, the push was to feature",
				"stage-only: stage-only not started: it follows branch master, the push was to feature",
				"prod-only: prod-only not started: it never starts on a push; promote a stage-only execution instead",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
			if tt.config != "" {
				e.gh.SetFile(owner, repo, sha, bot.ConfigPath, []byte(tt.config))
			}
			e.heads["master"] = sha // the default branch's head, where policy is read
			if err := e.h.HandleDelivery(context.Background(), webhook.Delivery{GUID: "g", Event: "push", Payload: tt.payload(t)}); err != nil {
				t.Fatal(err)
			}
			if got := e.executions(t); len(got) != 0 {
				t.Errorf("executions = %v, want none", got)
			}
			fetches := 0
			for _, c := range e.gh.Calls() {
				if strings.Contains(c.Path, "/contents/") {
					fetches++
				}
			}
			if fetches != tt.wantFetches {
				t.Errorf("configuration fetched %d times, want %d", fetches, tt.wantFetches)
			}
			if tt.wantFetches == 0 {
				return
			}
			got := e.records(t, sha)
			if tt.name == "invalid configuration file" {
				if len(got) != 1 || !strings.Contains(got[0], "is invalid") || !strings.Contains(got[0], ".github/stagehand.yml:3:") {
					t.Errorf("records = %q, want one that says the file is invalid and where", got)
				}
				return
			}
			if diff := cmp.Diff(tt.wantRecords, got); diff != "" {
				t.Errorf("trigger records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPushFetchFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	e.gh.SetFile(owner, repo, sha, bot.ConfigPath, []byte(bothOnMaster))
	e.gh.FailNext("/repos/"+owner+"/"+repo+"/contents/", githubapp.DefaultRetryPolicy.MaxAttempts, 502, nil) // more than the client retries
	d := webhook.Delivery{GUID: "g-retry", Event: "push", Payload: githubtest.Payload("push/branch-created.json")}
	err := e.h.HandleDelivery(context.Background(), d)
	if err == nil {
		t.Fatal("a failed GitHub call must be an error, so the router retries the delivery")
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		t.Errorf("a GitHub outage must not be permanent: %v", err)
	}
	if got := e.executions(t); len(got) != 0 {
		t.Fatalf("executions after a failed attempt = %v, want none", got)
	}
	if err := e.h.HandleDelivery(context.Background(), d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := e.executions(t); len(got) != 1 {
		t.Errorf("executions after the retry = %v, want one", got)
	}
}

func TestMalformedPayloadIsPermanent(t *testing.T) {
	e := newEnv(t)
	err := e.h.HandleDelivery(context.Background(), webhook.Delivery{GUID: "bad", Event: "push", Payload: []byte(`{"ref": 12}`)})
	var p interface{ Permanent() bool }
	if !errors.As(err, &p) || !p.Permanent() {
		t.Errorf("err = %v, want a permanent error", err)
	}
}

func TestInstallationEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The real "removed" example removes a repository never seen here; point
	// it at one that was added (its id and name), as a later removal would.
	var removed map[string]any
	if err := json.Unmarshal(githubtest.Payload("installation_repositories/removed.json"), &removed); err != nil {
		t.Fatal(err)
	}
	gone := removed["repositories_removed"].([]any)[0].(map[string]any)
	gone["id"], gone["full_name"] = 186853007, "Codertocat/Space" // as in installation_repositories/added.json
	removedBody, _ := json.Marshal(removed)
	deliveries := []webhook.Delivery{
		{GUID: "i1", Event: "installation", Payload: githubtest.Payload("installation/created.json")},
		{GUID: "i2", Event: "installation_repositories", Payload: githubtest.Payload("installation_repositories/added.json")},
		{GUID: "i3", Event: "installation_repositories", Payload: removedBody},
		{GUID: "i4", Event: "installation", Payload: githubtest.Payload("installation/suspend.json")},
	}
	for _, d := range deliveries {
		if err := e.h.HandleDelivery(ctx, d); err != nil {
			t.Fatalf("delivery %s: %v", d.GUID, err)
		}
	}
	var progs []string
	var inst bot.Installation
	err := e.store.View(ctx, func(tx bot.Tx) error {
		ps, err := tx.Programs(ctx)
		for _, p := range ps {
			progs = append(progs, fmt.Sprintf("%s installation %d removed %v", p.FullName(), p.InstallationID, p.Removed))
		}
		if err != nil {
			return err
		}
		inst, err = tx.Installation(ctx, 16598467) // suspend.json
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Codertocat/Hello-World installation 957387 removed false",
		"Codertocat/Space installation 957387 removed true",
	}
	if diff := cmp.Diff(want, progs); diff != "" {
		t.Errorf("programs (-want +got):\n%s", diff)
	}
	if !inst.Suspended || inst.Account != "Codertocat" {
		t.Errorf("installation after suspend = %+v, want suspended, account Codertocat", inst)
	}
}

func TestOtherEventsAreRecordedOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"ping/app-hook.json", "issue_comment/created.with-installation.json", "check_run/requested_action.json", "check_suite/rerequested.json"} {
		event := strings.Split(name, "/")[0]
		d := webhook.Delivery{GUID: "guid-" + name, Event: event, Payload: githubtest.Payload(name)}
		for range 2 {
			if err := e.h.HandleDelivery(ctx, d); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		var done bool
		err := e.store.View(ctx, func(tx bot.Tx) error {
			var err error
			done, err = tx.DeliveryProcessed(ctx, d.GUID)
			return err
		})
		if err != nil || !done {
			t.Errorf("%s: processed = %v, %v; want true", name, done, err)
		}
	}
}
