package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/state"
)

// newTestPlayground makes a playground (GitHub stand-in and sample
// repository) in a fresh directory, without the server.
func newTestPlayground(t *testing.T, dir string) *playground {
	t.Helper()
	pg, err := newPlayground(dir, "http://localhost:8080", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.gh.Close)
	return pg
}

// plainGit runs git as a user would: no identity on the command line.
func plainGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// TestPlaygroundWorkCopyCommitsAndPushes is README step 1 done by hand on a
// machine with no git identity: edit, "git commit -am", "git push" — on the
// first start and after a restart.
func TestPlaygroundWorkCopyCommitsAndPushes(t *testing.T) {
	global := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(global, []byte("[user]\n\tuseConfigOnly = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, v := range []string{"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	dir := t.TempDir()
	for _, start := range []string{"first start", "restart"} {
		pg := newTestPlayground(t, dir)
		if err := os.WriteFile(filepath.Join(pg.work, "message.txt"), []byte("Edited by hand: "+start), 0o644); err != nil {
			t.Fatal(err)
		}
		plainGit(t, pg.work, "commit", "-q", "-am", "Edit by hand ("+start+")")
		plainGit(t, pg.work, "push", "-q")
		pg.gh.Close()
	}
}

// fakeBot stands in for the server behind /webhooks in playground tests:
// it accepts every delivery at once, like the real intake, and shows its
// effect only after a delay, as the real bot does (0.5–2 s).
type fakeBot struct {
	t      *testing.T
	pg     *playground
	app    *githubapp.App
	delay  time.Duration
	runID  int64 // the check run of execution 1
	execID int64 // stage-only execution 1
}

func (b *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		RequestedAction struct{ Identifier string } `json:"requested_action"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &p)
	event := r.Header.Get("X-GitHub-Event")
	w.WriteHeader(http.StatusAccepted)
	go func() {
		time.Sleep(b.delay)
		ctx := context.Background()
		var err error
		switch {
		case event == "issue_comment":
			_, err = b.app.CreateComment(ctx, playgroundInst, playgroundOwner, playgroundRepo, 1, "Stagehand: status of playground/shop")
		case p.RequestedAction.Identifier == githubapp.ActionConfirm:
			err = b.pg.store.Update(ctx, func(tx bot.Tx) error {
				_, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: 1, Pipeline: bot.ProdOnly, State: bot.ExecutionQueued, SourceID: b.execID})
				return err
			})
		default:
			err = b.app.UpdateCheckRun(ctx, playgroundInst, playgroundOwner, playgroundRepo, b.runID, github.UpdateCheckRunOptions{
				Name: "stage-only", Actions: []*github.CheckRunAction{{Label: "Confirm", Description: "Start prod-only", Identifier: githubapp.ActionConfirm}},
			})
		}
		if err != nil {
			b.t.Errorf("fake bot: %v", err)
		}
	}()
}

// playgroundFixture is a playground whose store holds stage-only
// execution 1 of the sample, and whose GitHub stand-in holds that
// execution's completed check run with a Promote Build button.
type playgroundFixture struct {
	pg    *playground
	store bot.Store
	app   *githubapp.App
	ex    bot.Execution
	runID int64
}

func newPlaygroundFixture(t *testing.T) *playgroundFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pg := newTestPlayground(t, filepath.Join(dir, "playground"))
	store, err := state.OpenSQLite(ctx, filepath.Join(dir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var ex bot.Execution
	err = store.Update(ctx, func(tx bot.Tx) error {
		prog, err := tx.EnsureProgram(ctx, playgroundInst, bot.Repository{Owner: playgroundOwner, Name: playgroundRepo})
		if err != nil {
			return err
		}
		ex, err = tx.CreateExecution(ctx, bot.Execution{ProgramID: prog.ID, Pipeline: bot.StageOnly, State: bot.ExecutionWaiting, Commit: "0123456789abcdef0123456789abcdef01234567"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := githubapp.New(githubapp.Options{AppID: playgroundAppID, PrivateKeyPEM: pg.keyPEM, APIURL: pg.gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	runID, err := app.CreateCheckRun(ctx, playgroundInst, playgroundOwner, playgroundRepo, github.CreateCheckRunOptions{
		Name: "stage-only", HeadSHA: ex.Commit, ExternalID: github.String(strconv.FormatInt(ex.ID, 10)),
		Status: github.String("completed"), Conclusion: github.String("action_required"),
		Output:  &github.CheckRunOutput{Title: github.String("Succeeded"), Summary: github.String("ok")},
		Actions: []*github.CheckRunAction{{Label: "Promote Build", Description: "Deploy these artifacts", Identifier: githubapp.ActionPromote}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &playgroundFixture{pg: pg, store: store, app: app, ex: ex, runID: runID}
}

// serve serves the playground's routes, with webhooks (the bot's
// /webhooks) behind them, on a test server whose URL becomes the
// playground's base.
func (f *playgroundFixture) serve(t *testing.T, webhooks http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if err := f.pg.routes(parts{store: f.store, mux: mux}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("POST /webhooks", webhooks)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.pg.base = srv.URL
	return srv
}

// noRedirects is a client that shows the redirect an action answers.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// postFromPage posts form to base+path the way a browser posts one of the
// playground's forms: from the playground's own origin, with the token of
// its hidden field.
func postFromPage(t *testing.T, pg *playground, base, path string, form url.Values) *http.Response {
	t.Helper()
	return playgroundPost{origin: base, fetchSite: "same-origin", token: pg.token}.send(t, base, path, form, "")
}

// TestPlaygroundActionsLandWhereTheyShow: a click, a push or a comment
// waits until its effect shows and lands on the page that shows it.
func TestPlaygroundActionsLandWhereTheyShow(t *testing.T) {
	f := newPlaygroundFixture(t)
	pg, ex, runID := f.pg, f.ex, f.runID
	srv := f.serve(t, &fakeBot{t: t, pg: pg, app: f.app, delay: 700 * time.Millisecond, runID: runID, execID: ex.ID})
	page1 := executionPage(ex.Number)

	tests := []struct {
		name         string
		path         string
		form         url.Values
		wantLocation string
		wantShown    func() bool // the effect is visible when the page is drawn
	}{
		{"Promote Build lands back once the Confirm button shows", "/playground/click",
			url.Values{"check_run": {strconv.FormatInt(runID, 10)}, "action": {githubapp.ActionPromote}, "back": {page1}},
			page1, func() bool {
				_, actions := pg.buttons(ex.ID)
				return len(actions) == 1 && actions[0].Identifier == githubapp.ActionConfirm
			}},
		{"Confirm lands on the new prod-only execution", "/playground/click",
			url.Values{"check_run": {strconv.FormatInt(runID, 10)}, "action": {githubapp.ActionConfirm}, "back": {page1}},
			executionPage(2), nil},
		{"a comment lands on the conversation with the answer", "/playground/comment",
			url.Values{"body": {"/stagehand status"}, "back": {page1}},
			"/playground/conversation?back=" + url.QueryEscape(page1) + "#answer", func() bool {
				return strings.Contains(get(t, srv.URL+"/playground/conversation"), `id="answer"`) && strings.Contains(get(t, srv.URL+"/playground/conversation"), "Stagehand: status of playground/shop")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postFromPage(t, pg, srv.URL, tt.path, tt.form)
			resp.Body.Close()
			if diff := cmp.Diff(tt.wantLocation, resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || diff != "" {
				t.Errorf("POST %s: %s, Location (-want +got):\n%s", tt.path, resp.Status, diff)
			}
			if tt.wantShown != nil && !tt.wantShown() {
				t.Errorf("POST %s answered before its effect showed", tt.path)
			}
		})
	}

	// Pages that reload every 5 s have no comment box (typed text would be
	// lost); the one that has it does not reload. Every page with a form
	// carries the token in it.
	token := `<input type="hidden" name="token" value="` + pg.token + `">`
	execReq := httptest.NewRequest("GET", page1, nil)
	pages := []struct {
		name          string
		html          string
		want, wantNot []string
	}{
		{"execution page section", string(pg.executionButtons(execReq, ex)),
			[]string{`href="/playground"`, `href="/playground/conversation?back=` + url.QueryEscape(page1) + `"`, token}, []string{"<form method=\"post\" action=\"/playground/comment\""}},
		{"/playground", get(t, srv.URL+"/playground"),
			[]string{`href="` + page1 + `" id="stage-only"`, `href="/playground/conversation"`, token}, []string{"action=\"/playground/comment\""}},
		{"/playground/conversation", get(t, srv.URL+"/playground/conversation?back="+url.QueryEscape(page1)),
			[]string{`action="/playground/comment"`, `href="` + page1 + `"`, token}, []string{`http-equiv="refresh"`}},
	}
	for _, p := range pages {
		for _, w := range p.want {
			if !strings.Contains(p.html, w) {
				t.Errorf("%s lacks %s:\n%s", p.name, w, p.html)
			}
		}
		for _, w := range p.wantNot {
			if strings.Contains(p.html, w) {
				t.Errorf("%s has %s:\n%s", p.name, w, p.html)
			}
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestPlaygroundRefusesBeforeCreatingAnything: a server's data directory or
// a busy port stops the playground before it creates anything.
func TestPlaygroundRefusesBeforeCreatingAnything(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	serverDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(serverDir, "stagehand.db"), []byte("a server's"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dataDir string
		listen  string
		want    []string
	}{
		{"a Stagehand server's data directory", serverDir, "127.0.0.1:0",
			[]string{serverDir, "stagehand.db", "Choose another directory with --data-dir", "STAGEHAND_DATA_DIR"}},
		{"a busy port", filepath.Join(t.TempDir(), "new"), busy.Addr().String(),
			[]string{"listening on " + busy.Addr().String(), "choose another with --listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a playground that starts stops then
			defer cancel()
			err := run(ctx, []string{"playground", "--data-dir", tt.dataDir, "--listen", tt.listen},
				func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("the playground started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(tt.dataDir, "playground")); err == nil {
				t.Errorf("the playground was created in %s before refusing", tt.dataDir)
			}
		})
	}
}

// TestPlaygroundRestartHandsOutNewIDs: the stand-in of a restarted
// playground forgets its check runs; a check run id the store kept from the
// earlier run must not name one of the new run's.
func TestPlaygroundRestartHandsOutNewIDs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var ids []int64
	for range 2 {
		pg := newTestPlayground(t, dir)
		app, err := githubapp.New(githubapp.Options{AppID: playgroundAppID, PrivateKeyPEM: pg.keyPEM, APIURL: pg.gh.URL()})
		if err != nil {
			t.Fatal(err)
		}
		id, err := app.CreateCheckRun(ctx, playgroundInst, playgroundOwner, playgroundRepo, github.CreateCheckRunOptions{
			Name: "stage-only", HeadSHA: "0123456789abcdef0123456789abcdef01234567"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		pg.gh.Close()
		// The ids count from the start's millisecond: the next start comes
		// in a later one, as any real restart does.
		for time.Now().UnixMilli()*1000 <= id {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if ids[1] <= ids[0] {
		t.Errorf("check run ids %v: the restarted playground's first is not after the earlier run's", ids)
	}
}
