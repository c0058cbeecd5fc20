package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
)

// routes adds the playground's pages and its GitHub-like actions to the
// server. Every action becomes the signed webhook GitHub would send; it is
// taken only from the playground's own pages or its push hook, with the
// token of this start (playground_guard.go).
func (pg *playground) routes(p parts) error {
	pg.store = p.store
	if err := reporter.ResendCheckRuns(context.Background(), p.store); err != nil {
		return fmt.Errorf("showing the executions of an earlier run on the GitHub stand-in: %w", err)
	}
	p.mux.HandleFunc("GET /playground", pg.page)
	p.mux.HandleFunc("GET /playground/conversation", pg.conversation)
	p.mux.HandleFunc("POST /playground/hook", pg.hookAction(pg.hook))
	p.mux.HandleFunc("POST /playground/push", pg.formAction(pg.pushButton))
	p.mux.HandleFunc("POST /playground/click", pg.formAction(pg.click))
	p.mux.HandleFunc("POST /playground/comment", pg.formAction(pg.comment))
	p.mux.Handle("GET /playground/sites/", http.StripPrefix("/playground/sites/", http.FileServer(http.Dir(pg.sites))))
	return nil
}

// send signs a payload and posts it to /webhooks, as GitHub does.
func (pg *playground) send(ctx context.Context, event string, payload map[string]any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	guid := make([]byte, 16)
	_, _ = rand.Read(guid)
	req, err := http.NewRequestWithContext(ctx, "POST", pg.base+"/webhooks", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/playground")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", hex.EncodeToString(guid))
	req.Header.Set("X-Hub-Signature-256", githubtest.Sign(pg.secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /webhooks answered %s: %s", resp.Status, b)
	}
	return nil
}

// template loads one of GitHub's real example payloads and points it at the
// playground's repository, installation and user.
func (pg *playground) payload(name string) map[string]any {
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload(name), &p); err != nil {
		panic(err)
	}
	r, _ := p["repository"].(map[string]any)
	if r != nil {
		r["name"], r["full_name"] = playgroundRepo, playgroundOwner+"/"+playgroundRepo
		// GitHub names the repository alike in every event: its id and
		// default branch (where policy is read) too.
		r["id"], r["default_branch"] = playgroundRepoID, "main"
		if o, ok := r["owner"].(map[string]any); ok {
			o["login"], o["name"] = playgroundOwner, playgroundOwner
		}
	}
	p["installation"] = map[string]any{"id": playgroundInst, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
	if s, ok := p["sender"].(map[string]any); ok {
		s["login"], s["type"] = playgroundUser, "User"
	}
	return p
}

// pushedRef is one line of a post-receive hook: a ref and its move.
type pushedRef struct{ before, after, ref string }

// hook receives the post-receive lines of a real git push. Every line is
// checked before any webhook is sent: a refused push sends none.
func (pg *playground) hook(w http.ResponseWriter, r *http.Request) {
	var refs []pushedRef
	sc := bufio.NewScanner(io.LimitReader(r.Body, 1<<20))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		before, after, ref, err := checkHookLine(sc.Text())
		if err != nil {
			http.Error(w, "Stagehand playground: no push webhook sent: "+err.Error(), http.StatusBadRequest)
			return
		}
		refs = append(refs, pushedRef{before, after, ref})
	}
	if err := sc.Err(); err != nil {
		http.Error(w, "Stagehand playground: no push webhook sent: reading the hook's lines: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, p := range refs {
		if err := pg.sendPush(r.Context(), p.before, p.after, p.ref); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	fmt.Fprintln(w, "Stagehand playground: push webhook sent")
}

const zeroSHA = "0000000000000000000000000000000000000000"

// sendPush sends the push webhook for one pushed ref, checked by
// checkHookLine. The stand-in's contents API learns the configuration at
// the new commit first.
func (pg *playground) sendPush(ctx context.Context, before, after, ref string) error {
	msg := ""
	if after != zeroSHA {
		cfg, err := git(pg.bare, "show", "--end-of-options", after+":.github/stagehand.yml")
		if err == nil {
			pg.gh.SetFile(playgroundOwner, playgroundRepo, after, bot.ConfigPath, []byte(cfg+"\n"))
		}
		msg, _ = git(pg.bare, "log", "-1", "--format=%s", "--end-of-options", after)
	}
	p := pg.payload("push/branch-created.json")
	p["ref"], p["before"], p["after"] = ref, before, after
	p["created"], p["deleted"], p["forced"] = before == zeroSHA, after == zeroSHA, false
	p["pusher"] = map[string]any{"name": playgroundUser, "email": "you@playground.invalid"}
	if hc, ok := p["head_commit"].(map[string]any); ok && after != zeroSHA {
		hc["id"], hc["tree_id"], hc["message"] = after, after, msg
	}
	p["commits"] = []any{}
	return pg.send(ctx, "push", p)
}

// backPath is the page of this site a form came from (its "back" value),
// or fallback.
func backPath(r *http.Request, fallback string) string {
	to := r.FormValue("back")
	// "//host" and "/\host" lead browsers to another site.
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
		return fallback
	}
	return to
}

// effectWait bounds how long an action waits for its effect to show before
// the page it lands on is drawn; effectPoll is how often it looks.
const (
	effectWait = 6 * time.Second
	effectPoll = 100 * time.Millisecond
)

// waitForPage calls found until it answers a page to land on, for at most
// effectWait; then (or when the request ends) it answers fallback.
func waitForPage(ctx context.Context, fallback string, found func() string) string {
	deadline := time.Now().Add(effectWait)
	for {
		if to := found(); to != "" {
			return to
		}
		if time.Now().After(deadline) {
			return fallback
		}
		select {
		case <-ctx.Done():
			return fallback
		case <-time.After(effectPoll):
		}
	}
}

// executionPage is the dashboard page of one of the sample's executions.
func executionPage(number int) string {
	return bot.ExecutionPath(bot.Program{Owner: playgroundOwner, Repo: playgroundRepo}, number)
}

// newest returns the newest execution of a pipeline of the sample
// repository that matches keep (nil: any), or ok false.
func (pg *playground) newest(ctx context.Context, kind bot.PipelineKind, keep func(bot.Execution) bool) (ex bot.Execution, ok bool) {
	if pg.store == nil {
		return ex, false
	}
	_ = pg.store.View(ctx, func(tx bot.Tx) error {
		prog, err := tx.ProgramByName(ctx, playgroundOwner, playgroundRepo)
		if err != nil {
			return err
		}
		list, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: prog.ID, Pipeline: kind, Limit: 20})
		if err != nil {
			return err
		}
		for _, e := range list { // newest first
			if keep == nil || keep(e) {
				ex, ok = e, true
				return nil
			}
		}
		return nil
	})
	return ex, ok
}

// pushButton is "Push a change": a commit and a real git push. It lands on
// the stage-only execution the push starts (a page that refreshes itself).
func (pg *playground) pushButton(w http.ResponseWriter, r *http.Request) {
	before, _ := pg.newest(r.Context(), bot.StageOnly, nil)
	if _, err := pg.pushChange(); err != nil {
		http.Error(w, "pushing a change: "+err.Error(), http.StatusInternalServerError)
		return
	}
	to := waitForPage(r.Context(), "/playground", func() string {
		if ex, ok := pg.newest(r.Context(), bot.StageOnly, nil); ok && ex.ID > before.ID {
			return executionPage(ex.Number)
		}
		return ""
	})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// checkRunShown is what an execution's page shows of its newest check run:
// when it changes, a click has taken effect.
func (pg *playground) checkRunShown(executionID int64) string {
	run, actions := pg.buttons(executionID)
	shown := fmt.Sprintf("%d %s %s %s", run.ID, run.Status, run.Conclusion, run.Output.Title)
	for _, a := range actions {
		shown += " " + a.Identifier
	}
	return shown
}

// click is a button of a check run: check_run.requested_action. It waits
// (a few seconds at most) until the click shows, and lands on the page that
// shows it: the new prod-only execution after Confirm or Create & Promote,
// the clicked execution's page otherwise.
func (pg *playground) click(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.FormValue("check_run"), 10, 64)
	cr := pg.gh.CheckRun(id)
	if cr.ID == 0 {
		http.Error(w, "no such check run: it belongs to an earlier run of the playground; reload the page for the current buttons", http.StatusNotFound)
		return
	}
	executionID, _ := strconv.ParseInt(cr.ExternalID, 10, 64)
	action := r.FormValue("action")
	startsProdOnly := action == githubapp.ActionConfirm || action == githubapp.ActionCreatePromote
	promotes := func(e bot.Execution) bool { return e.SourceID == executionID }
	prodBefore, _ := pg.newest(r.Context(), bot.ProdOnly, promotes)
	shownBefore := pg.checkRunShown(executionID)
	p := pg.payload("check_run/requested_action.openapi-example.json")
	run := p["check_run"].(map[string]any)
	run["id"], run["name"], run["head_sha"], run["external_id"] = cr.ID, cr.Name, cr.HeadSHA, cr.ExternalID
	if app, ok := run["app"].(map[string]any); ok {
		app["id"] = playgroundAppID
	}
	p["requested_action"] = map[string]any{"identifier": action}
	if err := pg.send(r.Context(), "check_run", p); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	to := waitForPage(r.Context(), backPath(r, "/playground"), func() string {
		if startsProdOnly {
			if ex, ok := pg.newest(r.Context(), bot.ProdOnly, promotes); ok && ex.ID > prodBefore.ID {
				return executionPage(ex.Number)
			}
			return ""
		}
		if pg.checkRunShown(executionID) != shownBefore {
			return backPath(r, "/playground")
		}
		return ""
	})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// comment posts a comment on the sample pull request: issue_comment.created.
// It waits (a few seconds at most) for the bot's answer and lands on the
// conversation, which shows it.
func (pg *playground) comment(w http.ResponseWriter, r *http.Request) {
	conversation := "/playground/conversation?back=" + url.QueryEscape(backPath(r, "/playground"))
	body := strings.TrimSpace(r.FormValue("body"))
	if body == "" {
		http.Redirect(w, r, conversation, http.StatusSeeOther)
		return
	}
	id := pg.gh.AddComment(playgroundOwner, playgroundRepo, 1, playgroundUser, body)
	p := pg.payload("issue_comment/created.with-installation.json")
	c := p["comment"].(map[string]any)
	c["id"], c["body"], c["created_at"] = id, body, time.Now().UTC().Format(time.RFC3339)
	c["user"].(map[string]any)["login"] = playgroundUser
	if err := pg.send(r.Context(), "issue_comment", p); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	to := waitForPage(r.Context(), conversation+"#answer", func() string {
		for _, c := range pg.gh.Comments(playgroundOwner, playgroundRepo, 1) {
			if c.ID > id && c.User != playgroundUser {
				return conversation + "#answer"
			}
		}
		return ""
	})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// buttons are the actions of an execution's newest check run, as GitHub
// would show them.
func (pg *playground) buttons(executionID int64) (githubtest.CheckRun, []githubtest.CheckRunAction) {
	var last githubtest.CheckRun
	for _, cr := range pg.gh.CheckRuns(playgroundOwner, playgroundRepo) {
		if cr.ExternalID == strconv.FormatInt(executionID, 10) && cr.ID > last.ID {
			last = cr
		}
	}
	if last.Status != "completed" {
		return last, nil
	}
	return last, last.Actions
}

var buttonsTemplate = template.Must(template.New("buttons").Parse(`
<section class="playground">
  <h2>On GitHub</h2>
  {{if .Run.ID}}<p>Check run <code>{{.Run.Name}}</code>: {{.Run.Status}}{{if .Run.Conclusion}} ({{.Run.Conclusion}}){{end}} — {{.Run.Output.Title}}</p>{{end}}
  {{range .Actions}}
  <form method="post" action="/playground/click" style="display:inline">
    <input type="hidden" name="check_run" value="{{$.Run.ID}}">
    <input type="hidden" name="action" value="{{.Identifier}}">
    <input type="hidden" name="back" value="{{$.Back}}">
    <input type="hidden" name="token" value="{{$.Token}}">
    <button type="submit" title="{{.Description}}" data-action="{{.Identifier}}">{{.Label}}</button>
  </form>
  {{else}}<p>No button right now.</p>{{end}}
  <p><a href="{{.Conversation}}" id="conversation-link">Comment on pull request #1</a> (slash commands such as <code>/stagehand approve</code>; the bot answers there)
   · <a href="/playground">Playground guide</a></p>
</section>`))

// executionButtons adds GitHub's buttons and the comment box to an
// execution's page on the dashboard.
func (pg *playground) executionButtons(r *http.Request, ex bot.Execution) template.HTML {
	run, actions := pg.buttons(ex.ID)
	var b bytes.Buffer
	_ = buttonsTemplate.Execute(&b, map[string]any{"Run": run, "Actions": actions, "Back": r.URL.Path, "Token": pg.token,
		"Conversation": "/playground/conversation?back=" + url.QueryEscape(r.URL.Path)})
	return template.HTML(b.String())
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Stagehand playground</title>
<meta http-equiv="refresh" content="5">
<link rel="stylesheet" href="/static/style.css"></head>
<body><main>
<h1>Stagehand playground</h1>
{{with .SandboxNote}}<p id="sandbox-note"><b>Note:</b> {{.}}</p>{{end}}
<ol>
  <li><form method="post" action="/playground/push" style="display:inline"><input type="hidden" name="back" value="/playground"><input type="hidden" name="token" value="{{.Token}}"><button type="submit" id="push">Push a change</button></form>
      (or edit <code>{{.Work}}/message.txt</code>, commit and <code>git push</code>)</li>
  <li>Watch the stage-only execution (its page refreshes itself):
      {{with .StageOnly}}<a href="{{.}}" id="stage-only">the newest one</a>{{else}}it appears after the push, under <a href="/programs/playground/shop">playground/shop</a>{{end}}</li>
  <li>On the succeeded stage-only execution's page, click <b>Promote Build</b>, then <b>Confirm</b></li>
  <li>On the prod-only execution's page, click <b>Approve</b></li>
  <li>See production change: <a href="/playground/sites/stage/">stage</a> · <a href="/playground/sites/production/">production</a></li>
</ol>
<h2>Sites</h2>
<table><tr><th>environment</th><th>deployed</th></tr>
{{range .Sites}}<tr><td><a href="/playground/sites/{{.Env}}/">{{.Env}}</a></td><td>{{.By}}</td></tr>{{end}}
</table>
<h2>Pull request #1</h2>
<p>Slash commands such as <code>/stagehand help</code> work in comments: <a href="/playground/conversation">open the conversation</a>.</p>
</main></body></html>`))

// conversationTemplate is pull request #1, with the comment box. It does
// not reload itself, so half-typed text stays.
var conversationTemplate = template.Must(template.New("conversation").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Pull request #1 · Stagehand playground</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main>
<p><a href="{{.Back}}">← back</a> · <a href="/playground">Playground guide</a></p>
<h1>Pull request #1: conversation</h1>
{{range .Comments}}<div class="comment"{{if .Answer}} id="answer"{{end}}><b>{{.User}}</b> <small>{{.Created.Format "15:04:05"}}</small><pre>{{.Body}}</pre></div>
{{else}}<p>No comment yet. Try <code>/stagehand help</code>.</p>{{end}}
{{if .Waiting}}<p>The bot has not answered your last comment yet: <a href="">reload</a> in a moment.</p>{{end}}
<form method="post" action="/playground/comment"><input type="hidden" name="back" value="{{.Back}}"><input type="hidden" name="token" value="{{.Token}}">
<input name="body" size="50" placeholder="/stagehand status" autofocus> <button type="submit" id="comment">Comment</button></form>
</main></body></html>`))

// conversation shows pull request #1: what you said and what the bot
// answered.
func (pg *playground) conversation(w http.ResponseWriter, r *http.Request) {
	type comment struct {
		githubtest.Comment
		Answer bool // the bot's answer to your last comment
	}
	all := pg.gh.Comments(playgroundOwner, playgroundRepo, 1)
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	var comments []comment
	lastYours, answered := int64(0), false
	for _, c := range all {
		answer := c.User != playgroundUser && lastYours != 0 && !answered
		if c.User == playgroundUser {
			lastYours, answered = c.ID, false
		} else if lastYours != 0 {
			answered = true
		}
		comments = append(comments, comment{Comment: c, Answer: answer})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = conversationTemplate.Execute(w, map[string]any{
		"Back": backPath(r, "/playground"), "Comments": comments, "Waiting": lastYours != 0 && !answered, "Token": pg.token,
	})
}

func (pg *playground) page(w http.ResponseWriter, r *http.Request) {
	type site struct{ Env, By string }
	var sites []site
	for _, env := range []string{"stage", "production"} {
		by, err := os.ReadFile(filepath.Join(pg.sites, env, "deployed-by.txt"))
		s := site{Env: env, By: strings.TrimSpace(string(by))}
		if err != nil {
			s.By = "nothing yet"
		}
		sites = append(sites, s)
	}
	stageOnly := ""
	if ex, ok := pg.newest(r.Context(), bot.StageOnly, nil); ok {
		stageOnly = executionPage(ex.Number)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, map[string]any{"Work": pg.work, "Sites": sites, "StageOnly": stageOnly, "Token": pg.token, "SandboxNote": pg.sandboxNote})
}

// playgroundHook is the "playground-hook" command the sample repository's
// post-receive hook runs: it hands git's ref lines to the playground, with
// the token the playground wrote to TOKEN_FILE at its start.
func playgroundHook(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: stagehand playground-hook URL TOKEN_FILE < post-receive lines")
	}
	token, err := os.ReadFile(args[1])
	if err != nil {
		return fmt.Errorf("reading the playground's token (restart the playground, which writes it again): %w", err)
	}
	req, err := http.NewRequest("POST", args[0], stdin)
	if err != nil {
		return fmt.Errorf("the playground's hook URL %q: %w", args[0], err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(playgroundTokenHeader, strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("telling the playground about the push (is it running?): %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Fprint(stdout, string(b))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the playground answered %s", resp.Status)
	}
	return nil
}
