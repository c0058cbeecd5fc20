package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// brokenFiles is a contents API that fails for the configuration file.
type brokenFiles struct{ webhook.FileFetcher }

func (b brokenFiles) FetchFile(ctx context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	if path == bot.ConfigPath {
		return nil, errors.New("GitHub answered 502 Bad Gateway")
	}
	return b.FileFetcher.FetchFile(ctx, inst, owner, repo, path, ref)
}

// eventsFailStore is a store whose transactions fail to read events: the
// self-approval check reads them.
type eventsFailStore struct{ bot.Transactor }

func (s eventsFailStore) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	return s.Transactor.Update(ctx, func(tx bot.Tx) error { return fn(eventsFailTx{tx}) })
}

type eventsFailTx struct{ bot.Tx }

func (eventsFailTx) Events(context.Context, int64) ([]bot.Event, error) {
	return nil, errors.New("database is locked")
}

// TestFailClosed: when the policy, the permission or the store cannot be
// read, approve, Deploy Now and self-approval are refused with a reply that
// says so; nothing is allowed by default.
func TestFailClosed(t *testing.T) {
	self := strings.Replace(sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n  prod-only: {approval: true, scheduled: true}\n"),
		"    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    prevent_self_approval: true\n", 1)
	for _, tt := range []struct {
		name   string
		break_ func(e *surfaceEnv) (restore func())
		reply  string
	}{
		{"the default branch's file is broken", func(e *surfaceEnv) func() {
			e.repo.commit("break the policy", map[string]string{".github/stagehand.yml": "version: 1\npipelines: {prod-only: {trigger: on-git-changes}}\n"})
			return func() {}
		}, "is invalid, so Stagehand has no policy"},
		{"the policy cannot be read", func(e *surfaceEnv) func() {
			files := e.hooks.Policies.Files
			e.hooks.Policies.Files = brokenFiles{files}
			e.hooks.Policies.Forget()
			return func() { e.hooks.Policies.Files = files }
		}, "could not check"},
		{"the store fails", func(e *surfaceEnv) func() {
			store := e.engine.Store
			e.engine.Store = eventsFailStore{store}
			return func() { e.engine.Store = store }
		}, "database is locked"},
		{"the permission cannot be read", func(e *surfaceEnv) func() {
			e.gh.FailNext("/repos/"+owner+"/"+repo+"/collaborators/", 1000, 500, nil)
			return func() {}
		}, "could not check"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newSurfaceEnv(t, self)
			e.push()
			e.waitReported(1, bot.ExecutionSucceeded)
			e.comment("alice", "/stagehand promote")
			e.waitStep(2, bot.StepApproval, bot.StepWaiting)
			e.report()
			gate := e.checkRuns(bot.ProdOnly, "")
			restore := tt.break_(e)
			before := e.snapshotState()
			// alice promoted #2: approving it is self-approval.
			for _, user := range []string{"alice", "bob"} {
				replies := e.deliverComment(user, "/stagehand approve 2", nil)
				if len(replies) != 1 || strings.HasPrefix(replies[0], "✅") || !strings.Contains(replies[0], tt.reply) {
					t.Errorf("%s's approval was answered %q, want a refusal that says %q", user, replies, tt.reply)
				}
			}
			// A click is refused with a note on its check run, or its
			// delivery fails and is retried later (checked again then):
			// never allowed.
			body, _ := json.Marshal(e.clickPayload(gate[len(gate)-1], githubapp.ActionApprove, "bob"))
			_ = e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: "click-" + tt.name, Event: "check_run", Payload: body})
			if diff := cmp.Diff(before, e.snapshotState()); diff != "" {
				t.Errorf("state changed (-before +after):\n%s", diff)
			}
			restore()
		})
	}
}

// TestManualOnlyRepositoryFirstCommand: in a repository whose pipelines
// are all manual and that has never had a push, the first
// /stagehand run stage-only runs and is answered.
func TestManualOnlyRepositoryFirstCommand(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig("  stage-only: {branch: main, trigger: manual}\n"))
	reply := e.comment("alice", "/stagehand run stage-only")
	if !strings.HasPrefix(reply.Body, "✅") || !strings.Contains(reply.Body, "stage-only #1") {
		t.Fatalf("the first command was answered %q", reply.Body)
	}
	e.view(func(tx bot.Tx) error {
		var err error
		e.prog, err = tx.ProgramByName(context.Background(), owner, repo)
		return err
	})
	e.waitState(1, bot.ExecutionSucceeded)
}
