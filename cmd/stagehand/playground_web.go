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
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/ghapp/fakegithub"
)

// routes adds the playground's pages and its GitHub-like actions to the
// server. Every action becomes the signed webhook GitHub would send.
func (pg *playground) routes(p parts) error {
	p.mux.HandleFunc("GET /playground", pg.page)
	p.mux.HandleFunc("POST /playground/hook", pg.hook)
	p.mux.HandleFunc("POST /playground/push", pg.pushButton)
	p.mux.HandleFunc("POST /playground/click", pg.click)
	p.mux.HandleFunc("POST /playground/comment", pg.comment)
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
	req.Header.Set("X-Hub-Signature-256", fakegithub.Sign(pg.secret, body))
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
	if err := json.Unmarshal(fakegithub.Payload(name), &p); err != nil {
		panic(err)
	}
	r, _ := p["repository"].(map[string]any)
	if r != nil {
		r["name"], r["full_name"] = playgroundRepo, playgroundOwner+"/"+playgroundRepo
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

// hook receives the post-receive lines of a real git push.
func (pg *playground) hook(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(io.LimitReader(r.Body, 1<<20))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		if err := pg.sendPush(r.Context(), f[0], f[1], f[2]); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	fmt.Fprintln(w, "Stagehand playground: push webhook sent")
}

const zeroSHA = "0000000000000000000000000000000000000000"

// sendPush sends the push webhook for one pushed ref. The stand-in's
// contents API learns the configuration at the new commit first.
func (pg *playground) sendPush(ctx context.Context, before, after, ref string) error {
	if after != zeroSHA {
		cfg, err := git(pg.bare, "show", after+":.github/stagehand.yml")
		if err == nil {
			pg.gh.SetFile(playgroundOwner, playgroundRepo, after, ".github/stagehand.yml", []byte(cfg+"\n"))
		}
	}
	msg, _ := git(pg.bare, "log", "-1", "--format=%s", after)
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

func (pg *playground) back(w http.ResponseWriter, r *http.Request, fallback string) {
	to := r.FormValue("back")
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") {
		to = fallback
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// pushButton is "Push a change": a commit and a real git push.
func (pg *playground) pushButton(w http.ResponseWriter, r *http.Request) {
	if _, err := pg.pushChange(); err != nil {
		http.Error(w, "pushing a change: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pg.back(w, r, "/playground")
}

// click is a button of a check run: check_run.requested_action.
func (pg *playground) click(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.FormValue("check_run"), 10, 64)
	cr := pg.gh.CheckRun(id)
	if cr.ID == 0 {
		http.Error(w, "no such check run", http.StatusNotFound)
		return
	}
	p := pg.payload("check_run/requested_action.openapi-example.json")
	run := p["check_run"].(map[string]any)
	run["id"], run["name"], run["head_sha"], run["external_id"] = cr.ID, cr.Name, cr.HeadSHA, cr.ExternalID
	if app, ok := run["app"].(map[string]any); ok {
		app["id"] = playgroundAppID
	}
	p["requested_action"] = map[string]any{"identifier": r.FormValue("action")}
	if err := pg.send(r.Context(), "check_run", p); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	time.Sleep(300 * time.Millisecond) // let the click land before the page reloads
	pg.back(w, r, "/playground")
}

// comment posts a comment on the sample pull request: issue_comment.created.
func (pg *playground) comment(w http.ResponseWriter, r *http.Request) {
	body := strings.TrimSpace(r.FormValue("body"))
	if body == "" {
		pg.back(w, r, "/playground")
		return
	}
	id := pg.gh.AddComment(playgroundOwner, playgroundRepo, 1, playgroundUser, body)
	p := pg.payload("issue_comment/created.with-installation.json")
	c := p["comment"].(map[string]any)
	c["id"], c["body"] = id, body
	c["user"].(map[string]any)["login"] = playgroundUser
	if err := pg.send(r.Context(), "issue_comment", p); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	time.Sleep(time.Second) // the answer usually lands by then
	pg.back(w, r, "/playground#conversation")
}

// buttons are the actions of an execution's newest check run, as GitHub
// would show them.
func (pg *playground) buttons(ex bot.Execution) (fakegithub.CheckRun, []fakegithub.CheckRunAction) {
	var last fakegithub.CheckRun
	for _, cr := range pg.gh.CheckRuns(playgroundOwner, playgroundRepo) {
		if cr.ExternalID == strconv.FormatInt(ex.ID, 10) && cr.ID > last.ID {
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
    <button type="submit" title="{{.Description}}" data-action="{{.Identifier}}">{{.Label}}</button>
  </form>
  {{else}}<p>No button right now.</p>{{end}}
  <form method="post" action="/playground/comment">
    <input type="hidden" name="back" value="{{.Back}}">
    <input name="body" size="40" placeholder="/stagehand status"> <button type="submit">Comment</button>
  </form>
</section>`))

// executionButtons adds GitHub's buttons and the comment box to an
// execution's page on the dashboard.
func (pg *playground) executionButtons(r *http.Request, ex bot.Execution) template.HTML {
	run, actions := pg.buttons(ex)
	var b bytes.Buffer
	_ = buttonsTemplate.Execute(&b, map[string]any{"Run": run, "Actions": actions, "Back": r.URL.Path})
	return template.HTML(b.String())
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Stagehand playground</title>
<meta http-equiv="refresh" content="5">
<link rel="stylesheet" href="/static/style.css"></head>
<body><main>
<h1>Stagehand playground</h1>
<ol>
  <li><form method="post" action="/playground/push" style="display:inline"><input type="hidden" name="back" value="/playground"><button type="submit" id="push">Push a change</button></form>
      (or edit <code>{{.Work}}/message.txt</code>, commit and <code>git push</code>)</li>
  <li>Watch the stage-only execution: <a href="/programs/playground/shop">playground/shop</a></li>
  <li>On the succeeded stage-only execution's page, click <b>Promote Build</b>, then <b>Confirm</b></li>
  <li>On the prod-only execution's page, click <b>Approve</b></li>
  <li>See production change: <a href="/playground/sites/stage/">stage</a> · <a href="/playground/sites/production/">production</a></li>
</ol>
<h2>Sites</h2>
<table><tr><th>environment</th><th>deployed</th></tr>
{{range .Sites}}<tr><td><a href="/playground/sites/{{.Env}}/">{{.Env}}</a></td><td>{{.By}}</td></tr>{{end}}
</table>
<h2 id="conversation">Pull request #1: conversation</h2>
{{range .Comments}}<div class="comment"><b>{{.User}}</b> <small>{{.Created.Format "15:04:05"}}</small><pre>{{.Body}}</pre></div>{{else}}<p>No comment yet. Try <code>/stagehand help</code>.</p>{{end}}
<form method="post" action="/playground/comment"><input type="hidden" name="back" value="/playground#conversation">
<input name="body" size="50" placeholder="/stagehand status"> <button type="submit">Comment</button></form>
</main></body></html>`))

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
	comments := pg.gh.Comments(playgroundOwner, playgroundRepo, 1)
	sort.SliceStable(comments, func(i, j int) bool { return comments[i].ID < comments[j].ID })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, map[string]any{"Work": pg.work, "Sites": sites, "Comments": comments})
}

// playgroundHook is the "playground-hook" command the sample repository's
// post-receive hook runs: it hands git's ref lines to the playground.
func playgroundHook(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: stagehand playground-hook URL < post-receive lines")
	}
	resp, err := http.Post(args[0], "text/plain", stdin)
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
