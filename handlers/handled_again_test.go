package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// A delivery is handled again when its handler fails after doing part of
// its work (GitHub did not take the reply, the store refused to record the
// delivery) or the process dies in between: the router retries it, or the
// broker redelivers it. What the first handling did must not be done twice.

// countExecutions is the number of executions of the sample program.
func (e *pipelineEnv) countExecutions() int {
	e.t.Helper()
	var n int
	e.view(func(tx bot.Tx) error {
		es, err := tx.Executions(context.Background(), bot.ExecutionFilter{ProgramID: e.prog.ID})
		n = len(es)
		return err
	})
	return n
}

// handleAgain hands the same delivery to the handler, as the router's retry
// or the broker's redelivery would, and returns the handler's error.
func (e *surfaceEnv) handleAgain(event, guid string, p map[string]any) error {
	body, _ := json.Marshal(p)
	return e.hooks.HandleDelivery(context.Background(), webhook.Delivery{GUID: guid, Event: event, Payload: body})
}

// The reply to "/stagehand promote" fails (GitHub answers 500 beyond the
// client's retries), so the delivery fails and is handled again: the
// promotion happened once, and the reply says the command was done then.
func TestCommentHandledAgainDoesNotRepeatCommands(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)

	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("issue_comment/created.with-installation.json"), &p); err != nil {
		t.Fatal(err)
	}
	const body = "/stagehand promote\n/stagehand env set stage K=V"
	id := e.gh.AddComment(owner, repo, 1, "alice", body)
	c := p["comment"].(map[string]any)
	c["body"], c["id"], c["created_at"] = body, id, e.clock.Now().UTC().Format(time.RFC3339)
	c["user"].(map[string]any)["login"] = "alice"
	p["sender"].(map[string]any)["login"] = "alice"
	e.setRepo(p)
	const guid = "comment-handled-twice"

	attempts := githubapp.DefaultRetryPolicy.MaxAttempts
	if fastRetry.MaxAttempts != 0 {
		attempts = fastRetry.MaxAttempts
	}
	e.gh.FailNext("/repos/"+owner+"/"+repo+"/issues/1/comments", attempts, http.StatusInternalServerError, nil)
	if err := e.handleAgain("issue_comment", guid, p); err == nil || !strings.Contains(err.Error(), "answering the comment") {
		t.Fatalf("first handling = %v, want the failed reply", err)
	}
	if n := e.countExecutions(); n != 2 {
		t.Fatalf("after the first handling: %d executions, want 2 (the promotion started prod-only #2)", n)
	}
	if err := e.handleAgain("issue_comment", guid, p); err != nil {
		t.Fatalf("second handling: %v", err)
	}
	if n := e.countExecutions(); n != 2 {
		t.Errorf("after the second handling: %d executions, want still 2 (promote not repeated)", n)
	}
	comments := e.gh.Comments(owner, repo, 1)
	reply := comments[len(comments)-1].Body
	for _, want := range []string{"`/stagehand promote`: done when this comment was first handled", "`/stagehand env set stage K=V`: done when this comment was first handled"} {
		if !strings.Contains(reply, want) {
			t.Errorf("the reply lacks %q:\n%s", want, reply)
		}
	}
	if strings.Contains(reply, "🚫") {
		t.Errorf("the reply refuses the person's own command, seen again:\n%s", reply)
	}
	// A third handling: the delivery is recorded as processed; nothing more.
	before := len(comments)
	if err := e.handleAgain("issue_comment", guid, p); err != nil {
		t.Fatalf("third handling: %v", err)
	}
	if got := len(e.gh.Comments(owner, repo, 1)); got != before {
		t.Errorf("the processed comment was answered again: %d comments, want %d", got, before)
	}
	// The key belongs to this delivery: the same command in a new comment
	// runs (and is refused, prod-only #2 holding production).
	if reply := e.comment("alice", "/stagehand promote"); !strings.Contains(reply.Body, "🚫") {
		t.Errorf("a new comment's promote was not evaluated anew:\n%s", reply.Body)
	}
}

// failMarkStore fails recording one delivery as processed, once: the
// handler has done its work, the delivery is not recorded, and it is
// handled again.
type failMarkStore struct {
	bot.Store
	guid string
	mu   sync.Mutex
	done bool
}

func (s *failMarkStore) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	return s.Store.Update(ctx, func(tx bot.Tx) error { return fn(&failMarkTx{Tx: tx, s: s}) })
}

type failMarkTx struct {
	bot.Tx
	s *failMarkStore
}

func (t *failMarkTx) MarkDelivery(ctx context.Context, d bot.Delivery) (bool, error) {
	t.s.mu.Lock()
	fail := d.GUID == t.s.guid && !t.s.done
	t.s.done = t.s.done || fail
	t.s.mu.Unlock()
	if fail {
		return false, errors.New("the store is busy")
	}
	return t.Tx.MarkDelivery(ctx, d)
}

// A Re-run request on a finished stage-only execution whose delivery could
// not be recorded: handled again after the re-run finished, it starts no
// second execution.
func TestClickHandledAgainStartsOnce(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	e.report()
	cr := e.checkRuns(bot.StageOnly, "")[0]

	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("check_run/requested_action.json"), &p); err != nil {
		t.Fatal(err)
	}
	run := p["check_run"].(map[string]any)
	run["external_id"], run["id"], run["head_sha"] = cr.ExternalID, cr.ID, cr.HeadSHA
	run["app"].(map[string]any)["id"] = testAppID
	p["action"] = "rerequested"
	delete(p, "requested_action")
	p["sender"].(map[string]any)["login"] = "alice"
	e.setRepo(p)
	const guid = "click-handled-twice"
	e.hooks.Store = &failMarkStore{Store: e.store, guid: guid}

	if err := e.handleAgain("check_run", guid, p); err == nil {
		t.Fatal("first handling succeeded, want the store's failure")
	}
	// The re-run finishes before the delivery comes back (a redelivery
	// after a restart), so nothing would refuse a second re-run.
	e.waitState(2, bot.ExecutionSucceeded)
	if err := e.handleAgain("check_run", guid, p); err != nil {
		t.Fatalf("second handling: %v", err)
	}
	if n := e.countExecutions(); n != 2 {
		t.Errorf("%d executions, want 2: the re-run started once", n)
	}
}

// goneChecks is GitHub on which some check runs were deleted: updating one
// of them answers 404 (which the githubapp client reports as bot.ErrNotFound).
type goneChecks struct {
	reporter.ChecksAPI
	gone map[int64]bool
}

func (g *goneChecks) UpdateCheckRun(ctx context.Context, inst int64, owner, repo string, id int64, opts github.UpdateCheckRunOptions) error {
	if g.gone[id] {
		return fmt.Errorf("update check run %d: not found (404): %w", id, bot.ErrNotFound)
	}
	return g.ChecksAPI.UpdateCheckRun(ctx, inst, owner, repo, id, opts)
}

// A check run deleted on GitHub (or lost by a stand-in that restarted) is
// created again for its phase, instead of the reporter failing on it at
// every tick.
func TestReporterRecreatesACheckRunGoneFromGitHub(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	e.report()
	first := e.checkRuns(bot.StageOnly, "")
	if len(first) != 1 {
		t.Fatalf("%d stage-only check runs, want 1", len(first))
	}
	e.reporter.GitHub = &goneChecks{ChecksAPI: e.reporter.GitHub, gone: map[int64]bool{first[0].ID: true}}

	e.click(first[0], githubapp.ActionPromote, "alice") // the check run must show Confirm / Dismiss now
	e.report()                                          // fails without the fix: "updating check run …: not found"

	runs := e.checkRuns(bot.StageOnly, "")
	if len(runs) != 2 {
		t.Fatalf("%d stage-only check runs, want 2 (the lost one and its replacement)", len(runs))
	}
	if diff := cmp.Diff([]string{"Confirm", "Dismiss"}, labels(runs[1])); diff != "" {
		t.Errorf("the new check run's buttons (-want +got):\n%s", diff)
	}
	e.report() // nothing left to report: no error, no third check run
	if got := len(e.checkRuns(bot.StageOnly, "")); got != 2 {
		t.Errorf("%d stage-only check runs after another tick, want 2", got)
	}
}

// ResendCheckRuns: GitHub lost every check run (the playground's stand-in
// restarted). After ResendCheckRuns the next tick creates the current one
// again, with its buttons; without it nothing would be reported, since
// nothing changed.
func TestResendCheckRuns(t *testing.T) {
	e := newSurfaceEnv(t, sampleConfig(splitPipelines))
	e.push()
	e.waitState(1, bot.ExecutionSucceeded)
	e.report()
	first := e.checkRuns(bot.StageOnly, "")
	if len(first) != 1 || !slices.Contains(labels(first[0]), "Promote Build") {
		t.Fatalf("before: check runs %+v, want one with Promote Build", first)
	}
	e.reporter.GitHub = &goneChecks{ChecksAPI: e.reporter.GitHub, gone: map[int64]bool{first[0].ID: true}}

	if err := reporter.ResendCheckRuns(context.Background(), e.store); err != nil {
		t.Fatal(err)
	}
	e.report()
	runs := e.checkRuns(bot.StageOnly, "")
	if len(runs) != 2 || !slices.Contains(labels(runs[1]), "Promote Build") {
		t.Fatalf("after: %d check runs, the last with %v; want a new one with Promote Build", len(runs), labels(runs[len(runs)-1]))
	}
	e.report()
	if got := len(e.checkRuns(bot.StageOnly, "")); got != 2 {
		t.Errorf("%d check runs after another tick, want 2", got)
	}
}
