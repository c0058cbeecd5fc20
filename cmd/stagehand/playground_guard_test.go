package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// webhookRecorder stands in for the bot's /webhooks: it records every
// delivery ("push <after>" for a push, the event name otherwise) and
// answers 202. With a store, a push creates a stage-only execution, as the
// bot does.
type webhookRecorder struct {
	store bot.Store
	mu    sync.Mutex
	got   []string
}

func (rec *webhookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		After string `json:"after"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &p)
	event := r.Header.Get("X-GitHub-Event")
	if event == "push" {
		event += " " + p.After
		if rec.store != nil {
			ctx := r.Context()
			err := rec.store.Update(ctx, func(tx bot.Tx) error {
				prog, err := tx.ProgramByName(ctx, playgroundOwner, playgroundRepo)
				if err != nil {
					return err
				}
				_, err = tx.CreateExecution(ctx, bot.Execution{ProgramID: prog.ID, Pipeline: bot.StageOnly, State: bot.ExecutionQueued, Commit: p.After})
				return err
			})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
	}
	rec.mu.Lock()
	rec.got = append(rec.got, event)
	rec.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (rec *webhookRecorder) deliveries() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.got...)
}

// bareHead is the commit main points to in the sample's bare repository.
func bareHead(t *testing.T, pg *playground) string {
	t.Helper()
	sha, err := git(pg.bare, "rev-parse", "refs/heads/main")
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// yourComments counts the comments "you" made on pull request #1.
func yourComments(pg *playground) int {
	n := 0
	for _, c := range pg.gh.Comments(playgroundOwner, playgroundRepo, 1) {
		if c.User == playgroundUser {
			n++
		}
	}
	return n
}

// playgroundPost is a state-changing request to the playground as a
// browser (or the push hook) would send it.
type playgroundPost struct {
	host      string // the Host header; "" for the test server's
	origin    string // the Origin header; "" for none
	fetchSite string // the Sec-Fetch-Site header; "" for none
	token     string
}

// send posts body to base+path: a form with the token in its hidden field,
// or, for the hook, the hook's lines with the token in its header.
func (p playgroundPost) send(t *testing.T, base, path string, form url.Values, hookLines string) *http.Response {
	t.Helper()
	body, contentType := hookLines, "text/plain"
	if path != "/playground/hook" {
		f := maps.Clone(form)
		if f == nil {
			f = url.Values{}
		}
		if p.token != "" {
			f.Set(playgroundTokenField, p.token)
		}
		body, contentType = f.Encode(), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if path == "/playground/hook" && p.token != "" {
		req.Header.Set(playgroundTokenHeader, p.token)
	}
	if p.host != "" {
		req.Host = p.host
	}
	if p.origin != "" {
		req.Header.Set("Origin", p.origin)
	}
	if p.fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", p.fetchSite)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestPlaygroundRefusesRequestsFromOtherSites: every state-changing route
// refuses (403, saying why, changing nothing) a request that a page of
// another site could make the newcomer's browser send, and one without this
// start's token.
func TestPlaygroundRefusesRequestsFromOtherSites(t *testing.T) {
	f := newPlaygroundFixture(t)
	pg := f.pg
	rec := &webhookRecorder{}
	srv := f.serve(t, rec)
	own := srv.URL
	port := strings.TrimPrefix(own, "http://127.0.0.1:")
	head := bareHead(t, pg)
	hookLines := zeroSHA + " " + head + " refs/heads/main\n"

	routes := []struct {
		path string
		form url.Values
	}{
		{"/playground/push", url.Values{"back": {"/playground"}}},
		{"/playground/click", url.Values{"check_run": {strconv.FormatInt(f.runID, 10)}, "action": {githubapp.ActionPromote}}},
		{"/playground/comment", url.Values{"body": {"/stagehand set BASH_ENV=/tmp/evil.sh"}}},
		{"/playground/hook", nil},
	}
	tests := []struct {
		name      string
		req       playgroundPost
		formsOnly bool // the hook is no browser: it sends no Origin
		wantWhy   string
	}{
		{"a form on another site's page", playgroundPost{origin: "http://evil.example", fetchSite: "cross-site", token: pg.token},
			false, "Sec-Fetch-Site: cross-site"},
		{"another site's page, in a browser without fetch metadata", playgroundPost{origin: "http://evil.example", token: pg.token},
			false, "Origin http://evil.example, not " + own},
		{"another server on this machine", playgroundPost{origin: "http://127.0.0.1:1", fetchSite: "same-site", token: pg.token},
			false, "Sec-Fetch-Site: same-site"},
		{"a null origin (sandboxed frame, file://)", playgroundPost{origin: "null", token: pg.token},
			false, "Origin null"},
		{"a name pointed at 127.0.0.1 (DNS rebinding)", playgroundPost{host: "evil.example:" + port, origin: "http://evil.example:" + port, fetchSite: "same-origin", token: pg.token},
			false, `addressed to "evil.example:` + port + `"`},
		{"no Origin header", playgroundPost{token: pg.token},
			true, "no Origin header"},
		{"no token", playgroundPost{origin: own, fetchSite: "same-origin"},
			false, "token"},
		{"the token of another start", playgroundPost{origin: own, fetchSite: "same-origin", token: strings.Repeat("0", len(pg.token))},
			false, "token"},
	}
	for _, route := range routes {
		for _, tt := range tests {
			if tt.formsOnly && route.path == "/playground/hook" {
				continue
			}
			t.Run(route.path+": "+tt.name, func(t *testing.T) {
				resp := tt.req.send(t, srv.URL, route.path, route.form, hookLines)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), tt.wantWhy) {
					t.Errorf("POST %s answered %s %q; want 403 saying %q", route.path, resp.Status, body, tt.wantWhy)
				}
				if got := rec.deliveries(); len(got) != 0 {
					t.Errorf("the refused request sent webhooks %v", got)
				}
				if n := yourComments(pg); n != 0 {
					t.Errorf("the refused request added %d comments", n)
				}
				if got := bareHead(t, pg); got != head {
					t.Errorf("the refused request pushed: main is %s, was %s", got, head)
				}
			})
		}
	}

	// The hook, from git, with the token: the push webhook is sent (so the
	// checks above could have seen one).
	resp := playgroundPost{token: pg.token}.send(t, srv.URL, "/playground/hook", nil, hookLines)
	resp.Body.Close()
	if diff := cmp.Diff([]string{"push " + head}, rec.deliveries()); resp.StatusCode != http.StatusOK || diff != "" {
		t.Errorf("the push hook with the token answered %s; webhooks (-want +got):\n%s", resp.Status, diff)
	}
}

// TestPlaygroundHookRefusesOptionLikeValues: the hook hands git only full
// commit ids and branch names; a line git would read as an option, a range
// or a revision is refused, nothing is sent for the whole push, and git
// writes nothing.
func TestPlaygroundHookRefusesOptionLikeValues(t *testing.T) {
	f := newPlaygroundFixture(t)
	pg := f.pg
	rec := &webhookRecorder{}
	srv := f.serve(t, rec)
	head := bareHead(t, pg)
	target := filepath.Join(t.TempDir(), "x")
	valid := zeroSHA + " " + head + " refs/heads/main"

	tests := []struct {
		name    string
		lines   string
		wantWhy string
	}{
		{"--output as the new commit", zeroSHA + " --output=" + target + " refs/heads/main", `"--output=` + target + `" is not a commit id`},
		{"--output as the old commit", "--output=" + target + " " + head + " refs/heads/main", `"--output=` + target + `" is not a commit id`},
		{"an option as the new commit", zeroSHA + " -x refs/heads/main", `"-x" is not a commit id`},
		{"a revision, not a commit id", zeroSHA + " HEAD~1 refs/heads/main", `"HEAD~1" is not a commit id`},
		{"a short commit id", zeroSHA + " " + head[:7] + " refs/heads/main", "is not a commit id"},
		{"an upper-case commit id", zeroSHA + " " + strings.ToUpper(head) + " refs/heads/main", "is not a commit id"},
		{"a ref that climbs out", zeroSHA + " " + head + " refs/heads/../../x", `contains ".."`},
		{"a command after the branch", zeroSHA + " " + head + " main; rm -rf " + target, "is not \"<old-sha> <new-sha> <ref>\""},
		{"a command in the branch", zeroSHA + " " + head + " refs/heads/main;rm", `contains ';'`},
		{"a branch that is an option", zeroSHA + " " + head + " refs/heads/--force", `starts with "." or "-"`},
		{"a ref outside refs/heads", zeroSHA + " " + head + " main", "is not a branch"},
		{"a tag", zeroSHA + " " + head + " refs/tags/v1", "is not a branch"},
		{"nothing moved", zeroSHA + " " + zeroSHA + " refs/heads/main", "neither creates, updates nor deletes"},
		{"a good line, then a bad one", valid + "\n" + zeroSHA + " --output=" + target + " refs/heads/main", "is not a commit id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := playgroundPost{token: pg.token}.send(t, srv.URL, "/playground/hook", nil, tt.lines+"\n")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tt.wantWhy) {
				t.Errorf("the hook answered %s %q; want 400 saying %q", resp.Status, body, tt.wantWhy)
			}
			if got := rec.deliveries(); len(got) != 0 {
				t.Errorf("the refused push sent webhooks %v", got)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after the refused push (stat: %v)", target, err)
			}
		})
	}

	resp := playgroundPost{token: pg.token}.send(t, srv.URL, "/playground/hook", nil, valid+"\n")
	resp.Body.Close()
	if diff := cmp.Diff([]string{"push " + head}, rec.deliveries()); resp.StatusCode != http.StatusOK || diff != "" {
		t.Errorf("a good line answered %s; webhooks (-want +got):\n%s", resp.Status, diff)
	}
}

// TestPlaygroundBranchRefs: branch names keep git's check-ref-format rules
// and use safe characters only.
func TestPlaygroundBranchRefs(t *testing.T) {
	tests := []struct {
		ref  string
		want bool // accepted
	}{
		{"refs/heads/main", true},
		{"refs/heads/feature/new-page_2", true},
		{"refs/heads/release/1.2", true},
		{"refs/heads/you+fix", true},
		{"refs/heads/café", true},
		{"refs/heads/", false},
		{"refs/heads/a..b", false},
		{"refs/heads/a/.hidden", false},
		{"refs/heads/-x", false},
		{"refs/heads/a/-x", false},
		{"refs/heads/a.lock", false},
		{"refs/heads/a/", false},
		{"refs/heads/a//b", false},
		{"refs/heads/a.", false},
		{"refs/heads/a b", false},
		{"refs/heads/a\tb", false},
		{"refs/heads/a\x7fb", false},
		{"refs/heads/a~1", false},
		{"refs/heads/a^", false},
		{"refs/heads/a:b", false},
		{"refs/heads/a?", false},
		{"refs/heads/a*", false},
		{"refs/heads/a[b", false},
		{"refs/heads/a\\b", false},
		{"refs/heads/a@{1}", false},
		{"refs/heads/a;b", false},
		{"refs/heads/$(id)", false},
		{"refs/heads/" + strings.Repeat("a", 245), false},
		{"refs/remotes/origin/main", false},
		{"HEAD", false},
	}
	for _, tt := range tests {
		err := checkBranchRef(tt.ref)
		if got := err == nil; got != tt.want {
			t.Errorf("checkBranchRef(%q) = %v, want accepted %v", tt.ref, err, tt.want)
		}
	}
}

// TestPlaygroundPushButtonRunsTheHook: Push a change from the playground's
// own page commits and pushes; the real hook (the stagehand binary's
// playground-hook, with the token from a file only this user can read)
// sends the push webhook, and the button lands on the execution it starts.
func TestPlaygroundPushButtonRunsTheHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the stagehand binary for the push hook; skipped with -short")
	}
	f := newPlaygroundFixture(t)
	rec := &webhookRecorder{store: f.store}
	srv := f.serve(t, rec)
	if err := f.pg.installHook(binary(t)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f.pg.hookTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the hook's token file has mode %v, want -rw------- (this user only)", fi.Mode().Perm())
	}
	before := bareHead(t, f.pg)

	resp := postFromPage(t, f.pg, srv.URL, "/playground/push", url.Values{"back": {"/playground"}})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	after := bareHead(t, f.pg)
	if after == before {
		t.Fatalf("Push a change answered %s %q and pushed nothing", resp.Status, body)
	}
	if diff := cmp.Diff([]string{"push " + after}, rec.deliveries()); diff != "" {
		t.Errorf("webhooks after Push a change (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(executionPage(f.ex.Number+1), resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || diff != "" {
		t.Errorf("Push a change answered %s, Location (-want +got):\n%s", resp.Status, diff)
	}
}

// TestPlaygroundListensOnLoopbackByDefault: with no --listen and no
// STAGEHAND_LISTEN the playground listens on 127.0.0.1:8080 (no other
// machine reaches it) and prints localhost URLs.
func TestPlaygroundListensOnLoopbackByDefault(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"playground", "--data-dir", t.TempDir()}, func(string) string { return "" }, &stdout, &stderr)
	}()
	var err error
	exited := false
	waitFor(t, 60*time.Second, "the playground to start or stop", func() bool {
		select {
		case err = <-done:
			exited = true
			return true
		default:
			return strings.Contains(stdout.String(), "Start here:")
		}
	})
	if exited {
		// Port 8080 is taken on this machine: the error names the address
		// the playground tried to listen on.
		if err == nil || !strings.Contains(err.Error(), "listening on "+playgroundListen+":") {
			t.Fatalf("the playground stopped with %v; want it to listen on %s", err, playgroundListen)
		}
		t.Logf("port 8080 is in use here; the playground tried %s: %v", playgroundListen, err)
		return
	}
	defer func() {
		cancel()
		<-done
	}()
	if want := "listen=" + playgroundListen + " "; !strings.Contains(stderr.String(), want) {
		t.Errorf("the playground's log does not say %q:\n%s", want, stderr.String())
	}
	if want := "Start here:      http://localhost:8080/playground\n"; !strings.Contains(stdout.String(), want) {
		t.Errorf("the playground does not print %q:\n%s", want, stdout.String())
	}
	// Another interface of this machine, as another machine would reach it.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.To4() == nil || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		addr := net.JoinHostPort(ipnet.IP.String(), "8080")
		if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("the playground answers on %s, not only on loopback", addr)
		}
	}
}

// TestPlaygroundPublicURL: the printed URLs name localhost when the
// playground listens on loopback or every interface.
func TestPlaygroundPublicURL(t *testing.T) {
	tests := []struct{ listen, want string }{
		{playgroundListen, "http://localhost:8080"},
		{"127.0.0.1:9000", "http://localhost:9000"},
		{":8080", "http://localhost:8080"},
		{"0.0.0.0:8080", "http://localhost:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"192.0.2.7:8080", "http://192.0.2.7:8080"},
	}
	for _, tt := range tests {
		if got := publicURL(tt.listen); got != tt.want {
			t.Errorf("publicURL(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}

// TestPlaygroundBackPath: after an action the playground follows a form's
// "back" value only to a page of its own.
func TestPlaygroundBackPath(t *testing.T) {
	tests := []struct{ back, want string }{
		{"/programs/playground/shop/executions/1", "/programs/playground/shop/executions/1"},
		{"/playground/conversation?back=%2Fplayground", "/playground/conversation?back=%2Fplayground"},
		{"", "/playground"},
		{"//evil.example/", "/playground"},
		{`/\evil.example/`, "/playground"},
		{"http://evil.example/", "/playground"},
		{"javascript:alert(1)", "/playground"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/playground/click", strings.NewReader(url.Values{"back": {tt.back}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := backPath(r, "/playground"); got != tt.want {
			t.Errorf("back %q: the playground lands on %q, want %q", tt.back, got, tt.want)
		}
	}
}
