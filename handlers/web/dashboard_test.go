package web

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/state"
)

// dashT0 is when the fixture's story starts.
var dashT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const (
	dashEvil   = `<script>alert("x")</script>`
	commitOne  = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitFour = "4444444bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// dashFixture is a store, an artifact store and a data directory filled
// with one program's story:
//
//	#1 stage-only  succeeded  (alice pushed; artifact set; build log)  deployed to stage
//	#2 prod-only   succeeded  (source #1; promoted by alice, approved by bob)  deployed to production
//	#3 prod-only   cancelled  (source #1; rejected by carol)
//	#4 stage-only  running    (a malicious branch and message; holds stage)
//	#5 full-stack  queued
type dashFixture struct {
	t        *testing.T
	store    *state.SQLite
	arts     *state.Artifacts
	dataDir  string
	dash     *Dashboard
	srv      *httptest.Server
	prog     bot.Program
	ex       map[int]bot.Execution // by number
	set      bot.ArtifactSet
	buildLog []byte
}

func newDashFixture(t *testing.T) *dashFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &dashFixture{t: t, dataDir: filepath.Join(dir, "data"), ex: map[int]bot.Execution{}}
	clock := fixedClock{dashT0.Add(time.Hour)}
	store, err := state.OpenSQLite(ctx, filepath.Join(dir, "state.db"), state.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store = store
	if f.arts, err = state.OpenArtifacts(filepath.Join(f.dataDir, "artifacts")); err != nil {
		t.Fatal(err)
	}

	// A real build output, collected into the artifact store.
	src := filepath.Join(dir, "checkout")
	for name, content := range map[string]string{
		"dist/app.js":      "console.log('hello');\n",
		"dist/index.html":  "<!doctype html><title>app</title>\n",
		"dist/bin/run.sh":  "#!/bin/sh\necho run\n",
		"README.unrelated": "not an artifact\n",
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	if f.set, err = f.arts.Collect(ctx, src, []string{"dist/**"}); err != nil {
		t.Fatal(err)
	}
	if len(f.set.Files) != 3 {
		t.Fatalf("collected %d files, want 3: %+v", len(f.set.Files), f.set)
	}

	at := func(m int) time.Time { return dashT0.Add(time.Duration(m) * time.Minute) }
	err = store.Update(ctx, func(tx bot.Tx) error {
		p, err := tx.EnsureProgram(ctx, 7, bot.Repository{Owner: "acme", Name: "app"})
		if err != nil {
			return err
		}
		f.prog = p
		if _, err := tx.EnsureProgram(ctx, 7, bot.Repository{Owner: "acme", Name: "other"}); err != nil {
			return err
		}
		err = tx.SetPipelines(ctx, p.ID, []bot.Pipeline{
			{ProgramID: p.ID, Kind: bot.FullStack, PipelineConfig: bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerManual, Approval: true}},
			{ProgramID: p.ID, Kind: bot.StageOnly, PipelineConfig: bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerOnGitChanges}},
			{ProgramID: p.ID, Kind: bot.ProdOnly, PipelineConfig: bot.PipelineConfig{Approval: true, Scheduled: true}},
		})
		if err != nil {
			return err
		}
		// create stores an execution and sets its state and steps.
		create := func(e bot.Execution, steps map[bot.StepName]bot.Step) (bot.Execution, error) {
			want := e
			e, err := tx.CreateExecution(ctx, e)
			if err != nil {
				return e, err
			}
			e.StartedAt, e.FinishedAt, e.ScheduledAt = want.StartedAt, want.FinishedAt, want.ScheduledAt
			if err := tx.UpdateExecution(ctx, e); err != nil {
				return e, err
			}
			for name, s := range steps {
				s.ExecutionID, s.Name = e.ID, name
				if err := tx.UpdateStep(ctx, s); err != nil {
					return e, err
				}
			}
			f.ex[e.Number] = e
			return e, nil
		}
		done := func(from, to int, msg string) bot.Step {
			return bot.Step{State: bot.StepSucceeded, Message: msg, Attempt: 1, StartedAt: at(from), FinishedAt: at(to)}
		}

		one, err := create(bot.Execution{
			ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: commitOne, Branch: "main", State: bot.ExecutionSucceeded,
			Message: "stage tests passed", Cause: bot.CausePush, TriggeredBy: "alice", ArtifactDigest: f.set.Digest,
			CreatedAt: at(0), StartedAt: at(0), FinishedAt: at(9),
		}, map[bot.StepName]bot.Step{
			bot.StepBuild:       {State: bot.StepSucceeded, Message: "built", Attempt: 1, StartedAt: at(0), FinishedAt: at(0).Add(90 * time.Second), LogTail: "the tail of the build log\nbuild ok\n"},
			bot.StepDeployStage: done(2, 4, "deployed to stage"),
			bot.StepStageTests:  done(4, 9, "1 stage test(s) passed"),
		})
		if err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, bot.Event{ExecutionID: one.ID, At: at(0), Actor: "alice", Kind: "triggered", Detail: "push to main"}); err != nil {
			return err
		}

		two, err := create(bot.Execution{
			ProgramID: p.ID, Pipeline: bot.ProdOnly, Commit: commitOne, State: bot.ExecutionSucceeded, Message: "deployed to production",
			Cause: bot.CausePromotion, TriggeredBy: "alice", SourceID: one.ID, ArtifactDigest: f.set.Digest,
			CreatedAt: at(10), StartedAt: at(10), FinishedAt: at(20),
		}, map[bot.StepName]bot.Step{
			bot.StepArtifactPreparation: done(10, 11, "source stage-only #1: 3 files verified"),
			bot.StepApproval:            done(11, 15, "approved by bob"),
			bot.StepSchedule:            done(15, 15, "no schedule"),
			bot.StepDeployProduction:    done(15, 20, "deployed to production"),
		})
		if err != nil {
			return err
		}
		for _, ev := range []bot.Event{
			{ExecutionID: two.ID, At: at(10), Actor: "alice", Kind: "promoted", Detail: "from stage-only #1"},
			{ExecutionID: one.ID, At: at(10), Actor: "alice", Kind: "promoted", Detail: "to prod-only #2"},
			{ExecutionID: two.ID, At: at(15), Actor: "bob", Kind: "approved"},
		} {
			if err := tx.AddEvent(ctx, ev); err != nil {
				return err
			}
		}

		three, err := create(bot.Execution{
			ProgramID: p.ID, Pipeline: bot.ProdOnly, Commit: commitOne, State: bot.ExecutionCancelled, Message: "rejected by carol: not today",
			Cause: bot.CauseManual, TriggeredBy: "dave", SourceID: one.ID, ArtifactDigest: f.set.Digest,
			CreatedAt: at(30), StartedAt: at(30), FinishedAt: at(32),
		}, map[bot.StepName]bot.Step{
			bot.StepArtifactPreparation: done(30, 31, "verified"),
			bot.StepApproval:            {State: bot.StepCancelled, Message: "rejected by carol", StartedAt: at(31), FinishedAt: at(32)},
			bot.StepSchedule:            {State: bot.StepCancelled},
			bot.StepDeployProduction:    {State: bot.StepCancelled},
		})
		if err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, bot.Event{ExecutionID: three.ID, At: at(32), Actor: "carol", Kind: "rejected", Detail: "not today"}); err != nil {
			return err
		}

		four, err := create(bot.Execution{
			ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: commitFour, Branch: "feature/" + dashEvil, State: bot.ExecutionRunning,
			Message: "building " + dashEvil, Cause: bot.CausePush, TriggeredBy: "mallory",
			CreatedAt: at(40), StartedAt: at(40),
		}, map[bot.StepName]bot.Step{
			bot.StepBuild: {State: bot.StepRunning, Attempt: 1, StartedAt: at(40), LeaseUntil: at(61)},
		})
		if err != nil {
			return err
		}
		for _, r := range []bot.TriggerRecord{
			{ProgramID: p.ID, DeliveryID: "d4", Commit: commitFour, Branch: "main", Pipeline: bot.StageOnly, ExecutionID: four.ID, Reason: "stage-only #4 queued by the push of 4444444"},
			{ProgramID: p.ID, DeliveryID: "d4", Commit: commitFour, Branch: "main", Pipeline: bot.FullStack, Reason: "full-stack not started: its trigger is manual " + dashEvil},
		} {
			if err := tx.AddTriggerRecord(ctx, r); err != nil {
				return err
			}
		}

		if _, err := create(bot.Execution{
			ProgramID: p.ID, Pipeline: bot.FullStack, Commit: commitFour, Branch: "main", State: bot.ExecutionQueued,
			Message: "waiting for stage-only #4", Cause: bot.CauseManual, TriggeredBy: "erin", CreatedAt: at(41),
		}, nil); err != nil {
			return err
		}

		for _, d := range []bot.Deployment{
			{ProgramID: p.ID, Environment: bot.Stage, ExecutionID: one.ID, Pipeline: bot.StageOnly, Number: 1, Commit: commitOne, ArtifactDigest: f.set.Digest, Since: at(4)},
			{ProgramID: p.ID, Environment: bot.Production, ExecutionID: two.ID, Pipeline: bot.ProdOnly, Number: 2, Commit: commitOne, ArtifactDigest: f.set.Digest, Since: at(20)},
		} {
			if err := tx.SetDeployment(ctx, d); err != nil {
				return err
			}
		}
		if err := tx.SetVariable(ctx, p.ID, bot.Stage, "LOG_LEVEL", "trace"); err != nil {
			return err
		}
		return tx.SetVariable(ctx, p.ID, bot.Production, "FEATURE_X", dashEvil)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Re-read the executions as the store keeps them.
	err = store.View(ctx, func(tx bot.Tx) error {
		for n := range f.ex {
			e, err := tx.ExecutionByNumber(ctx, f.prog.ID, n)
			if err != nil {
				return err
			}
			f.ex[n] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The whole build log of #1: bigger than the tail.
	var b strings.Builder
	b.WriteString("$ checkout acme/app\n")
	for i := range 400 {
		fmt.Fprintf(&b, "compiling module %03d of 400\n", i)
	}
	b.WriteString("build ok\n")
	f.buildLog = []byte(b.String())
	logDir := filepath.Join(f.dataDir, "logs", strconv.FormatInt(f.ex[1].ID, 10))
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir, "build.log"), f.buildLog, 0o600); err != nil {
		t.Fatal(err)
	}
	// #4's build is running: its log has no stored tail yet.
	logDir4 := filepath.Join(f.dataDir, "logs", strconv.FormatInt(f.ex[4].ID, 10))
	if err := os.MkdirAll(logDir4, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir4, "build.log"), []byte("$ make dist\nstill compiling "+dashEvil+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	f.dash = &Dashboard{
		Public: true, // the sign-in's tests are in signin_test.go
		Store:  store, Artifacts: f.arts, Logs: worker.LogFiles{DataDir: f.dataDir}, Clock: fixedClock{at(45)},
		Logger: slog.New(slog.DiscardHandler),
		Variables: func(ctx context.Context, programID int64, env bot.EnvironmentName) (map[string]string, error) {
			// As bot.Engine.Variables: the configuration's, overridden by
			// those set.
			out := map[string]string{}
			if env == bot.Stage {
				out["LOG_LEVEL"], out["REGION"] = "debug", "eu-west-1"
			}
			err := store.View(ctx, func(tx bot.Tx) error {
				set, err := tx.Variables(ctx, programID, env)
				for k, v := range set {
					out[k] = v
				}
				return err
			})
			return out, err
		},
	}
	mux := http.NewServeMux()
	f.dash.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// get fetches path and returns the status, the headers and the body.
func (f *dashFixture) get(path string) (int, http.Header, string) {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// page fetches an HTML page that must answer 200.
func (f *dashFixture) page(path string) string {
	f.t.Helper()
	status, h, body := f.get(path)
	if status != http.StatusOK {
		f.t.Fatalf("GET %s: %d, want 200:\n%s", path, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		f.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	return body
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// text is an HTML page's visible text, tags removed, entities decoded,
// spaces collapsed.
func text(html string) string {
	s := tagRE.ReplaceAllString(html, " ")
	s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`, "&amp;", "&").Replace(s)
	s = strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
	return strings.NewReplacer(" ,", ",", " .", ".", " ;", ";", "( ", "(", " )", ")").Replace(s)
}

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
	if t.Failed() && testing.Verbose() {
		t.Logf("%s:\n%s", what, s)
	}
}

func mustNotContain(t *testing.T, what, s string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(s, n) {
			t.Errorf("%s contains %q", what, n)
		}
	}
}

const refreshMeta = `<meta http-equiv="refresh" content="5">`

func TestDashboardProgramsPage(t *testing.T) {
	f := newDashFixture(t)
	body := f.page("/")
	mustContain(t, "programs page", body,
		`<a href="/programs/acme/app">acme/app</a>`,
		`<a href="/programs/acme/other">acme/other</a>`,
		`<a href="/programs/acme/app/executions/5">full-stack #5</a>`,
		`<link rel="stylesheet" href="/static/style.css?v=`)
	mustContain(t, "programs page text", text(body),
		"acme/app full-stack, stage-only, prod-only full-stack #5 queued 2 1111111 1111111")
	mustNotContain(t, "programs page", body, refreshMeta, "<script")
}

func TestDashboardProgramPage(t *testing.T) {
	f := newDashFixture(t)
	body := f.page("/programs/acme/app")
	txt := text(body)
	mustContain(t, "program page", txt,
		"stage-only trigger on-git-changes branch main Last executions #4 running 4444444",
		"prod-only trigger promotion of a stage-only execution branch — approval required scheduled yes",
		"full-stack trigger manual branch main approval required scheduled no",
		"#3 cancelled 1111111 2026-03-01 10:30:00 UTC #2 succeeded",
		// the queue, in the order it runs: running stage-only #4, then queued full-stack #5
		"Queue execution state commit branch cause by created message stage-only #4 running 4444444",
		"full-stack #5 queued 4444444 main manual erin",
		// environments summary
		"stage commit 1111111 execution stage-only #1 artifact set "+bot.ShortDigest(f.set.Digest)+" since 2026-03-01 10:04:00 UTC Held by stage-only #4 (running)",
		"production commit 1111111 execution prod-only #2",
	)
	mustContain(t, "program page", body,
		`<a href="/programs/acme/app/executions/2">prod-only #2</a>`,
		`<a class="more" href="/programs/acme/app/environments">`)
	mustNotContain(t, "program page", body, refreshMeta)
	// The queue lists only active executions.
	queue := txt[strings.Index(txt, "Queue execution"):strings.Index(txt, "Environments details")]
	mustNotContain(t, "queue", queue, "#1", "#2", "#3")
}

func TestDashboardExecutionPageProdOnly(t *testing.T) {
	f := newDashFixture(t)
	body := f.page("/programs/acme/app/executions/2")
	txt := text(body)
	mustContain(t, "execution #2", txt,
		"prod-only #2 succeeded deployed to production",
		"commit "+commitOne,
		"cause promotion by alice",
		"source stage-only #1 at 1111111, artifact set "+bot.ShortDigest(f.set.Digest),
		"artifact set "+f.set.Digest,
		"duration 10m00s",
		// the step timeline
		"artifact-preparation succeeded 2026-03-01 10:10:00 UTC 1m00s",
		"approval succeeded 2026-03-01 10:11:00 UTC 4m00s approved by bob",
		"schedule succeeded 2026-03-01 10:15:00 UTC 0s",
		"deploy-production succeeded 2026-03-01 10:15:00 UTC 5m00s deployed to production",
		// who did what, when
		"promoted by alice at 2026-03-01 10:10:00 UTC — from stage-only #1",
		"approved by bob at 2026-03-01 10:15:00 UTC",
		// the artifact set
		"3 files · "+formatBytes(f.set.Size()),
	)
	mustContain(t, "execution #2", body,
		`<dt>source</dt><dd><a href="/programs/acme/app/executions/1">stage-only #1</a>`,
		`<time datetime="2026-03-01T10:15:00Z">2026-03-01 10:15:00 UTC</time>`,
		`style="margin-left: 10%; width: 40%"`, // approval: minute 1 to 5 of 10
	)
	for _, file := range f.set.Files {
		mustContain(t, "execution #2 artifact table", body,
			fmt.Sprintf(`<tr><td><code>%s</code></td><td title="%d bytes">%s</td><td><code title="%s">%s</code></td><td><code>%04o</code></td></tr>`,
				file.Path, file.Size, formatBytes(file.Size), file.SHA256, file.SHA256[:12], file.Mode))
	}
	mustNotContain(t, "execution #2", body, refreshMeta)
}

func TestDashboardExecutionPageLogs(t *testing.T) {
	f := newDashFixture(t)
	body := f.page("/programs/acme/app/executions/1")
	mustContain(t, "execution #1", body,
		`<a class="download" href="/programs/acme/app/executions/1/logs/build" download>Download the whole log</a> (`+formatBytes(int64(len(f.buildLog)))+`)`,
		"<pre>the tail of the build log\nbuild ok\n</pre>",
		// the page says the tail is only the end
		`<p>Below: the end of the log. <a class="download"`,
	)
	mustContain(t, "execution #1", text(body),
		"build succeeded 2026-03-01 10:00:00 UTC 1m30s",
		"deploy-stage succeeded 2026-03-01 10:02:00 UTC 2m00s",
		"triggered by alice at 2026-03-01 10:00:00 UTC — push to main",
		"promoted by alice at 2026-03-01 10:10:00 UTC — to prod-only #2",
	)
	// the tail is not the whole log
	mustNotContain(t, "execution #1", body, "compiling module 000")

	// A rejection.
	mustContain(t, "execution #3", text(f.page("/programs/acme/app/executions/3")),
		"prod-only #3 cancelled rejected by carol: not today",
		"cause manual by dave",
		"rejected by carol at 2026-03-01 10:32:00 UTC — not today",
		"schedule cancelled — —",
	)
}

func TestDashboardLogDownload(t *testing.T) {
	f := newDashFixture(t)
	status, h, body := f.get("/programs/acme/app/executions/1/logs/build")
	if status != http.StatusOK {
		t.Fatalf("log download: %d %s", status, body)
	}
	if body != string(f.buildLog) {
		t.Errorf("log download: got %d bytes, want the whole log of %d bytes", len(body), len(f.buildLog))
	}
	if ct := h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="acme-app-1-build.log"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(f.buildLog)) {
		t.Errorf("Content-Length %q, want %d", cl, len(f.buildLog))
	}

	for path, want := range map[string]string{
		"/programs/acme/app/executions/1/logs/deploy-stage":       "stage-only #1 has no log for deploy-stage",
		"/programs/acme/app/executions/1/logs/approval":           `stage-only #1 has no step "approval"; its steps are build, deploy-stage, stage-tests.`,
		"/programs/acme/app/executions/1/logs/..%2f..%2fstate.db": "has no step",
		"/programs/acme/app/executions/9/logs/build":              "acme/app has no execution #9",
		"/programs/acme/nope/executions/1/logs/build":             "Stagehand has no program acme/nope",
	} {
		status, h, body := f.get(path)
		if status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: Content-Type %q", path, h.Get("Content-Type"))
		}
		mustContain(t, "GET "+path, text(body), want)
	}
}

func TestDashboardEnvironmentsPage(t *testing.T) {
	f := newDashFixture(t)
	body := f.page("/programs/acme/app/environments")
	txt := text(body)
	mustContain(t, "environments page", txt,
		"stage Running now commit 1111111 execution stage-only #1 artifact set "+bot.ShortDigest(f.set.Digest)+" since 2026-03-01 10:04:00 UTC",
		"Held by stage-only #4 running since 2026-03-01 10:40:00 UTC",
		"While held, its variables cannot change (rule E).",
		"Queued to take it: full-stack #5",
		"Variables name value from LOG_LEVEL trace env set REGION eu-west-1 config",
		"production Running now commit 1111111 execution prod-only #2 artifact set "+bot.ShortDigest(f.set.Digest)+" since 2026-03-01 10:20:00 UTC",
		"Free: no active execution holds production",
		"FEATURE_X "+dashEvil+" env set",
	)
	mustContain(t, "environments page", body,
		`<a href="/programs/acme/app/executions/1">stage-only #1</a>`,
		`<code title="`+f.set.Digest+`">`+bot.ShortDigest(f.set.Digest)+`</code>`,
		`<a href="/programs/acme/app/executions/4">stage-only #4</a>`)
	mustNotContain(t, "environments page", body, refreshMeta)
}

// TestDashboardEscapes: a branch, message, log line, trigger note and
// variable chosen by a pusher never become markup.
func TestDashboardEscapes(t *testing.T) {
	f := newDashFixture(t)
	for _, path := range []string{"/", "/programs/acme/app", "/programs/acme/app/environments", "/programs/acme/app/executions/4", "/programs/acme/app/executions/5"} {
		body := f.page(path)
		mustNotContain(t, path, body, "<script", `alert("x")`)
	}
	body := f.page("/programs/acme/app/executions/4")
	mustContain(t, "execution #4", body,
		"feature/&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
		"building &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	mustContain(t, "execution #4", text(body),
		// the running step's log, read from its file
		"still compiling "+dashEvil,
		// rule A: why the other pipeline did not start
		"Other pipelines at this commit full-stack not started: its trigger is manual "+dashEvil,
		"build running 2026-03-01 10:40:00 UTC 5m00s",
	)
	mustNotContain(t, "execution #4", text(body), "stage-only #4 queued by the push")
}

// TestDashboardOtherPipelinesAreCurrent: the notes about the other
// pipelines at an execution's commit show the executions the push started
// as they are now, and leave out the page's own pipeline.
func TestDashboardOtherPipelinesAreCurrent(t *testing.T) {
	f := newDashFixture(t)
	txt := text(f.page("/programs/acme/app/executions/5")) // full-stack #5, at the commit of stage-only #4
	mustContain(t, "execution #5", txt,
		"Other pipelines at this commit stage-only #4, started by the push of 4444444: running")
	mustNotContain(t, "execution #5", txt,
		"queued by the push",                            // the push-time text of a running execution
		"full-stack not started: its trigger is manual", // about the page's own pipeline
	)
}

func TestDashboardRefreshOnlyOnActiveExecutions(t *testing.T) {
	f := newDashFixture(t)
	for n := 1; n <= 5; n++ {
		body := f.page(fmt.Sprintf("/programs/acme/app/executions/%d", n))
		active := f.ex[n].State.Active()
		if got := strings.Contains(body, refreshMeta); got != active {
			t.Errorf("execution #%d (%s): refresh %v, want %v", n, f.ex[n].State, got, active)
		}
	}
}

func TestDashboardNotFound(t *testing.T) {
	f := newDashFixture(t)
	for path, want := range map[string]string{
		"/programs/acme/nope":                       "Stagehand has no program acme/nope. A program appears when the GitHub App is installed on its repository; known programs: acme/app, acme/other.",
		"/programs/acme/nope/environments":          "Stagehand has no program acme/nope.",
		"/programs/acme/app/executions/99":          "acme/app has no execution #99: its executions are #1 to #5.",
		"/programs/acme/other/executions/1":         "acme/other has no execution #1: it has no executions yet.",
		"/programs/acme/app/executions/abc":         `"abc" is not an execution number`,
		"/programs/acme/app/executions/0":           `"0" is not an execution number`,
		"/programs/acme":                            "There is no page at /programs/acme.",
		"/programs/acme/app/executions/1/somewhere": "There is no page at",
	} {
		status, h, body := f.get(path)
		if status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		mustContain(t, "GET "+path, text(body), "404 · Not Found", want)
		mustContain(t, "GET "+path, body, `<a href="/">All programs</a>`)
	}
}

func TestDashboardNoPrograms(t *testing.T) {
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mux := http.NewServeMux()
	(&Dashboard{Store: store, Public: true}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	mustContain(t, "empty programs page", text(rec.Body.String()), "No programs yet.")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/programs/a/b", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown program without programs: %d", rec.Code)
	}
	mustContain(t, "unknown program", text(rec.Body.String()), "Stagehand has no program a/b. A program appears when the GitHub App is installed on its repository; no repository has it yet.")
}

func TestDashboardExtraAndStyle(t *testing.T) {
	f := newDashFixture(t)
	var seen []string
	f.dash.Extra = func(r *http.Request, prog bot.Program, ex bot.Execution, steps []bot.Step) template.HTML {
		seen = append(seen, fmt.Sprintf("%s %s %d steps", prog.FullName(), ex, len(steps)))
		return `<form method="post" action="/playground/approve"><button>Approve</button></form>`
	}
	body := f.page("/programs/acme/app/executions/3")
	mustContain(t, "execution #3 with extra", body, `<section class="extra"><form method="post" action="/playground/approve"><button>Approve</button></form></section>`)
	if len(seen) != 1 || seen[0] != "acme/app prod-only #3 4 steps" {
		t.Errorf("Extra called with %q", seen)
	}

	status, h, css := f.get("/static/style.css?v=" + styleVersion)
	if status != http.StatusOK || h.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(css, ".state-succeeded") {
		t.Errorf("style.css: %d %q %d bytes", status, h.Get("Content-Type"), len(css))
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("versioned style.css: Cache-Control %q", cc)
	}
	// Nothing on the pages comes from elsewhere.
	for _, path := range []string{"/", "/programs/acme/app", "/programs/acme/app/environments", "/programs/acme/app/executions/2"} {
		mustNotContain(t, path, f.page(path), "http://", "https://", "<script")
	}
}

func TestDashboardReadOnly(t *testing.T) {
	f := newDashFixture(t)
	for _, path := range []string{"/", "/programs/acme/app", "/programs/acme/app/executions/1", "/programs/acme/app/environments"} {
		resp, err := http.Post(f.srv.URL+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", path, resp.StatusCode)
		}
	}
}

func TestDashboardFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 850 * time.Millisecond: "850ms", 42 * time.Second: "42s", 185 * time.Second: "3m05s",
		2*time.Hour + 3*time.Minute + 20*time.Second: "2h03m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 20: "3.0 MiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDashboardStepDurations(t *testing.T) {
	d := &Dashboard{}
	now := dashT0.Add(time.Hour)
	for _, c := range []struct {
		step bot.Step
		want time.Duration
	}{
		{bot.Step{State: bot.StepPending}, 0},
		{bot.Step{State: bot.StepRunning, StartedAt: dashT0}, time.Hour},
		{bot.Step{State: bot.StepWaiting, StartedAt: dashT0.Add(20 * time.Minute)}, 40 * time.Minute},
		{bot.Step{State: bot.StepSucceeded, StartedAt: dashT0, FinishedAt: dashT0.Add(90 * time.Second)}, 90 * time.Second},
		{bot.Step{State: bot.StepCancelled, StartedAt: dashT0}, 0},
	} {
		if got := d.stepView(bot.Program{Owner: "o", Repo: "r"}, bot.Execution{ID: 1, Number: 1}, c.step, now).Duration; got != c.want {
			t.Errorf("%s step started %s: duration %s, want %s", c.step.State, c.step.StartedAt, got, c.want)
		}
	}
}

// TestDashboardFooterSaysWhetherItActs: read-only, unless the pages carry
// buttons that act (the playground's Extra).
func TestDashboardFooterSaysWhetherItActs(t *testing.T) {
	f := newDashFixture(t)
	mustContain(t, "dashboard", text(f.page("/")), "Stagehand dashboard · read-only")
	f.dash.Extra = func(*http.Request, bot.Program, bot.Execution, []bot.Step) template.HTML { return "" }
	txt := text(f.page("/"))
	mustContain(t, "playground dashboard", txt, "Stagehand dashboard · playground")
	mustNotContain(t, "playground dashboard", txt, "read-only")
}
