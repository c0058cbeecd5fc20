package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"html/template"

	"github.com/stagehand-dev/stagehand/bot"
)

// ArtifactReader reads artifact sets by digest (state.Artifacts does).
type ArtifactReader interface {
	Get(ctx context.Context, digest string) (bot.ArtifactSet, error)
}

// StepLogs says where a step's log file is (worker.LogFiles).
type StepLogs interface {
	File(executionID int64, step bot.StepName) string
}

// Dashboard serves the read-only web dashboard (server-rendered HTML, no
// JavaScript needed, no CDN) and the JSON API over the same data. Every
// route is a GET: nothing here changes state.
//
// Unless Public, a request sees a program only when its viewer (put in the
// request's context by SignIn.Require, through Guard) can read the
// program's repository on GitHub, and the variables of its environments
// only when they can write to it. A program they cannot read is answered
// exactly as one that does not exist: 404, the same words.
type Dashboard struct {
	Store     bot.Viewer     // the pages and the API only read
	Artifacts ArtifactReader // nil: artifact sets are not shown
	Logs      StepLogs       // where step logs are; nil: no logs shown
	Clock     bot.Clock      // nil: the system clock
	Logger    *slog.Logger   // nil: discard
	// Variables lists an environment's variables as the next deployment
	// sees them (bot.Engine.Variables: configuration overridden by
	// /stagehand env set). Nil: only the variables set with /stagehand env
	// set are shown.
	Variables func(ctx context.Context, programID int64, env bot.EnvironmentName) (map[string]string, error)
	// Secrets says which secrets an environment declares and whether the
	// server has a value for each ("set" or "missing"); values are never
	// shown. Nil: no secrets are shown.
	Secrets func(ctx context.Context, prog bot.Program, env bot.EnvironmentName) (map[string]string, error)
	// Calendar is an environment's deploy windows and freezes under the
	// policy (bot.Engine.Calendar). Nil: none are shown.
	Calendar func(ctx context.Context, programID int64, env bot.EnvironmentName) (bot.DeployCalendar, error)
	// Extra renders extra HTML on the execution page (the playground adds
	// its buttons here); nil in production.
	Extra func(r *http.Request, prog bot.Program, ex bot.Execution, steps []bot.Step) template.HTML
	// ParseConfig reads executions' configurations, for the quorum of a
	// waiting approval (approvers.required). Nil: one approval is shown as
	// enough.
	ParseConfig bot.ConfigParser
	// Public shows every program to every visitor (--dashboard public).
	Public bool
	// Guard wraps every route but the style sheet (SignIn.Require).
	Guard func(http.Handler) http.Handler
}

// Route is one pattern of the dashboard for an http.ServeMux.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes lists the dashboard's routes with their http.ServeMux patterns.
func (d *Dashboard) Routes() []Route {
	h := func(f http.HandlerFunc) http.Handler {
		if d.Guard != nil {
			return d.Guard(f)
		}
		return f
	}
	return []Route{
		{"GET /{$}", h(d.servePrograms)},
		{"GET /programs/{owner}/{repo}", h(d.serveProgram)},
		{"GET /programs/{owner}/{repo}/environments", h(d.serveEnvironments)},
		{"GET /programs/{owner}/{repo}/executions/{number}", h(d.serveExecution)},
		{"GET /programs/{owner}/{repo}/executions/{number}/logs/{step}", h(d.serveLog)},
		{"GET /programs/", h(d.serveUnknownPage)},
		{"GET /static/style.css", http.HandlerFunc(serveStyle)},

		{"GET /api/v1/programs", h(d.apiPrograms)},
		{"GET /api/v1/programs/{owner}/{repo}", h(d.apiProgram)},
		{"GET /api/v1/programs/{owner}/{repo}/executions", h(d.apiExecutions)},
		{"GET /api/v1/programs/{owner}/{repo}/executions/{number}", h(d.apiExecution)},
		{"/api/v1/", h(d.apiUnknown)},
	}
}

// Register adds the dashboard's routes to mux.
func (d *Dashboard) Register(mux *http.ServeMux) { register(mux, d.Routes()) }

func register(mux *http.ServeMux, routes []Route) {
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
}

func (d *Dashboard) now() time.Time {
	if d.Clock == nil {
		return time.Now()
	}
	return d.Clock.Now()
}

func (d *Dashboard) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// pageStatus is the HTTP status of each refusal a page or the API shows
// the user; other errors are internal (500, logged, not shown).
var pageStatus = map[bot.RefusalCode]int{
	bot.RefusalNotFound:    http.StatusNotFound,
	bot.RefusalBadRequest:  http.StatusBadRequest,
	bot.RefusalSignIn:      http.StatusUnauthorized,
	bot.RefusalUnavailable: http.StatusServiceUnavailable,
}

func notFound(format string, args ...any) error {
	return &bot.Refusal{Code: bot.RefusalNotFound, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &bot.Refusal{Code: bot.RefusalBadRequest, Message: fmt.Sprintf(format, args...)}
}

// statusOf is the HTTP status and user message of err; internal errors
// are logged.
func (d *Dashboard) statusOf(r *http.Request, err error) (int, string) {
	if re := bot.Refused(err); re != nil && pageStatus[re.Code] != 0 {
		return pageStatus[re.Code], re.Error()
	}
	if errors.Is(err, context.Canceled) {
		return 499, "request cancelled"
	}
	d.logger().ErrorContext(r.Context(), "dashboard request failed", "path", r.URL.Path, bot.LogError, err)
	return http.StatusInternalServerError, "Stagehand could not read its state; the error is in the server's log"
}

// Paths of the dashboard's pages.

func environmentsPath(p bot.Program) string { return bot.ProgramPath(p) + "/environments" }

func logPath(p bot.Program, number int, step bot.StepName) string {
	return bot.ExecutionPath(p, number) + "/logs/" + url.PathEscape(string(step))
}

func apiProgramPath(p bot.Program) string {
	return "/api/v1/programs/" + url.PathEscape(p.Owner) + "/" + url.PathEscape(p.Repo)
}

// Views: what the pages and the API show, read in one transaction.

type programSummary struct {
	Program   bot.Program
	Pipelines []bot.Pipeline
	Latest    *bot.Execution
	Active    int
	Stage     *bot.Deployment
	Prod      *bot.Deployment
}

type pipelineView struct {
	bot.Pipeline
	Last []bot.Execution // newest first
}

type environmentView struct {
	Name       bot.EnvironmentName
	Deployment *bot.Deployment
	// Holders are the running or waiting executions that hold the
	// environment (rule E); Next are queued ones that will.
	Holders []bot.Execution
	Next    []bot.Execution
	// Approvals are the holders waiting for approval, with their quorum.
	Approvals []approvalView
	Variables []variableView
	// VariablesError says why the variables could not be read.
	VariablesError string
	// VariablesHidden: the viewer may not write to the repository, so they
	// do not see its variables (nor the names of its secrets).
	VariablesHidden bool
	// Secrets are the declared secrets' names and "set" or "missing".
	Secrets      []secretView
	SecretsError string
	// Calendar is the environment's deploy windows and freezes and
	// whether deploys may start now; nil when it declares none.
	Calendar      *bot.CalendarReport
	CalendarError string
}

// secretView is a declared secret: its name and whether the server has a
// value, never the value.
type secretView struct {
	Name, Status string
}

// variableView is one variable; Source is "set" (with /stagehand env set)
// or "config" (from .github/stagehand.yml).
type variableView struct {
	Name, Value, Source string
}

type programView struct {
	Program      bot.Program
	Pipelines    []pipelineView
	Queue        []bot.Execution // running and waiting, then queued, each oldest first: the order they run
	Recent       []bot.Execution
	Environments []environmentView
}

type stepView struct {
	bot.Step
	Duration time.Duration // so far, for a running step
	Tail     string        // the stored tail, or the end of the log file while it runs
	LogSize  int64         // -1: no log file
	LogPath  string
	// Offset and Width place the step on the execution's timeline, in
	// percent of its duration.
	Offset, Width float64
}

type executionView struct {
	// The execution as read (its Steps are shadowed by the steps as shown;
	// they are ExecutionDetail.Steps).
	bot.ExecutionDetail
	Duration  time.Duration
	Steps     []stepView
	Artifacts *bot.ArtifactSet
	// ArtifactsError says why the artifact set could not be shown.
	ArtifactsError string
	// Notes are what the push of this commit did to the other pipelines
	// (rule A: why they did not start).
	Notes []string
	// Approval is where its waiting approval stands (nil: not waiting).
	Approval *bot.QuorumState
	// Overrides are its break-glass overrides (the reason in Detail).
	Overrides []bot.Event
}

// runOrder sorts active executions in the order they run: those running
// or waiting first, then the queued ones, each oldest first.
func runOrder(es []bot.Execution) {
	queued := func(e bot.Execution) int {
		if e.State == bot.ExecutionQueued {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(es, func(a, b bot.Execution) int {
		if c := cmp.Compare(queued(a), queued(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.Number, b.Number)
	})
}

// otherPipelineNote says what the push of ex's commit did to another
// pipeline: why it did not start (the push-time reason, still true), or the
// execution it started as it is now, not as it was at the push ("" when
// the record is about ex's own pipeline).
func otherPipelineNote(ctx context.Context, tx bot.ExecutionReader, ex bot.Execution, r bot.TriggerRecord) (string, error) {
	if r.Pipeline == ex.Pipeline || r.ExecutionID == ex.ID {
		return "", nil
	}
	if r.ExecutionID == 0 {
		return r.Reason, nil
	}
	other, err := tx.Execution(ctx, r.ExecutionID)
	if errors.Is(err, bot.ErrNotFound) {
		return r.Reason, nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, started by the push of %s: %s", other, bot.ShortSHA(r.Commit), other.State), nil
}

// permission is what the request's viewer may see of p.
func (d *Dashboard) permission(ctx context.Context, p bot.Program) (Permission, error) {
	if d.Public {
		return WriteAccess, nil
	}
	v := viewerFrom(ctx)
	if v == nil {
		return NoAccess, nil // no viewer: nothing (a dashboard without Guard)
	}
	return v.permission(ctx, p)
}

// readablePrograms are the programs the request's viewer may read.
func (d *Dashboard) readablePrograms(ctx context.Context) ([]bot.Program, error) {
	var all []bot.Program
	err := d.view(ctx, func(tx readTx) (err error) {
		all, err = tx.Programs(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []bot.Program
	for _, p := range all {
		perm, err := d.permission(ctx, p)
		if err != nil {
			return nil, err
		}
		if perm >= ReadAccess {
			out = append(out, p)
		}
	}
	return out, nil
}

// program finds owner/repo for the request's viewer, with what they may
// see of it. One they may not read is not found, in the same words as one
// that does not exist, which name the programs they can read.
func (d *Dashboard) program(ctx context.Context, owner, repo string) (bot.Program, Permission, error) {
	var p bot.Program
	err := d.view(ctx, func(tx readTx) (err error) {
		p, err = tx.ProgramByName(ctx, owner, repo)
		return err
	})
	perm := NoAccess
	if err == nil {
		perm, err = d.permission(ctx, p)
	}
	if err != nil && !errors.Is(err, bot.ErrNotFound) {
		return p, NoAccess, err
	}
	if perm >= ReadAccess {
		return p, perm, nil
	}
	readable, err := d.readablePrograms(ctx)
	if err != nil {
		return bot.Program{}, NoAccess, err
	}
	names := make([]string, len(readable))
	for i, p := range readable {
		names[i] = p.FullName()
	}
	if d.Public {
		msg := fmt.Sprintf("Stagehand has no program %s/%s. A program appears when the GitHub App is installed on its repository", owner, repo)
		if len(names) == 0 {
			return bot.Program{}, NoAccess, notFound("%s; no repository has it yet.", msg)
		}
		return bot.Program{}, NoAccess, notFound("%s; known programs: %s.", msg, strings.Join(names, ", "))
	}
	msg := fmt.Sprintf("Stagehand has no program %s/%s that you can read. You see the programs whose repository you can read on GitHub", owner, repo)
	if len(names) == 0 {
		return bot.Program{}, NoAccess, notFound("%s; you can read none yet.", msg)
	}
	return bot.Program{}, NoAccess, notFound("%s: %s.", msg, strings.Join(names, ", "))
}

func (d *Dashboard) loadPrograms(ctx context.Context) ([]programSummary, error) {
	progs, err := d.readablePrograms(ctx)
	if err != nil {
		return nil, err
	}
	var out []programSummary
	err = d.view(ctx, func(tx readTx) error {
		out = nil
		for _, p := range progs {
			s := programSummary{Program: p}
			if s.Pipelines, err = tx.Pipelines(ctx, p.ID); err != nil {
				return err
			}
			latest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Limit: 1})
			if err != nil {
				return err
			}
			if len(latest) > 0 {
				s.Latest = &latest[0]
			}
			active, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, States: bot.ActiveStates})
			if err != nil {
				return err
			}
			s.Active = len(active)
			if s.Stage, err = deployment(ctx, tx, p.ID, bot.Stage); err != nil {
				return err
			}
			if s.Prod, err = deployment(ctx, tx, p.ID, bot.Production); err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func deployment(ctx context.Context, tx bot.ExecutionReader, programID int64, env bot.EnvironmentName) (*bot.Deployment, error) {
	dep, err := tx.Deployment(ctx, programID, env)
	if errors.Is(err, bot.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &dep, nil
}

// Limits of the lists on a program's page.
const (
	lastPerPipeline = 5
	recentLimit     = 25
)

// loadProgram reads p's page; its variables only when perm is write.
func (d *Dashboard) loadProgram(ctx context.Context, p bot.Program, perm Permission) (programView, error) {
	var v programView
	setVars := map[bot.EnvironmentName]map[string]string{}
	err := d.view(ctx, func(tx readTx) error {
		v = programView{Program: p}
		pipes, err := tx.Pipelines(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, pipe := range pipes {
			last, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Pipeline: pipe.Kind, Limit: lastPerPipeline})
			if err != nil {
				return err
			}
			v.Pipelines = append(v.Pipelines, pipelineView{Pipeline: pipe, Last: last})
		}
		if v.Queue, err = tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, States: bot.ActiveStates}); err != nil {
			return err
		}
		runOrder(v.Queue)
		if v.Recent, err = tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Limit: recentLimit}); err != nil {
			return err
		}
		for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
			ev := environmentView{Name: env}
			if ev.Deployment, err = deployment(ctx, tx, p.ID, env); err != nil {
				return err
			}
			for _, a := range v.Queue {
				if !bot.Holds(a.Pipeline, env) {
					continue
				}
				if a.State == bot.ExecutionQueued {
					ev.Next = append(ev.Next, a)
				} else {
					ev.Holders = append(ev.Holders, a)
				}
			}
			if ev.Approvals, err = d.waitingApprovals(ctx, tx, ev.Holders); err != nil {
				return err
			}
			ev.VariablesHidden = perm < WriteAccess
			if !ev.VariablesHidden {
				if setVars[env], err = tx.Variables(ctx, p.ID, env); err != nil {
					return err
				}
			}
			v.Environments = append(v.Environments, ev)
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	// Variables and the calendar read the store themselves: outside the
	// transaction above.
	for i := range v.Environments {
		ev := &v.Environments[i]
		d.loadCalendar(ctx, v.Program, ev)
		if ev.VariablesHidden {
			continue
		}
		set := setVars[ev.Name]
		all := set
		if d.Variables != nil {
			merged, err := d.Variables(ctx, v.Program.ID, ev.Name)
			if err != nil {
				d.logger().WarnContext(ctx, "reading variables for the dashboard", bot.LogRepo, v.Program.FullName(), "environment", ev.Name, bot.LogError, err)
				ev.VariablesError = "the configuration's variables could not be read; showing those set with /stagehand env set"
			} else {
				all = merged
			}
		}
		for _, k := range slices.Sorted(maps.Keys(all)) {
			src := "config"
			if sv, ok := set[k]; ok && sv == all[k] {
				src = "set"
			}
			ev.Variables = append(ev.Variables, variableView{Name: k, Value: all[k], Source: src})
		}
		if d.Secrets != nil {
			status, err := d.Secrets(ctx, v.Program, ev.Name)
			if err != nil {
				d.logger().WarnContext(ctx, "reading declared secrets for the dashboard", bot.LogRepo, v.Program.FullName(), "environment", ev.Name, bot.LogError, err)
				ev.SecretsError = "the declared secrets could not be read"
			}
			for _, k := range slices.Sorted(maps.Keys(status)) {
				ev.Secrets = append(ev.Secrets, secretView{Name: k, Status: status[k]})
			}
		}
	}
	return v, nil
}

// parseNumber reads an execution number from a path.
func parseNumber(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "#"))
	if err != nil || n <= 0 {
		return 0, notFound("%q is not an execution number: executions are numbered 1, 2, 3, …", s)
	}
	return n, nil
}

// execution finds execution number of p, or says which numbers exist.
func (d *Dashboard) execution(ctx context.Context, tx bot.ExecutionReader, p bot.Program, number int) (bot.Execution, error) {
	ex, err := tx.ExecutionByNumber(ctx, p.ID, number)
	if errors.Is(err, bot.ErrNotFound) {
		latest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Limit: 1})
		if err != nil {
			return ex, err
		}
		if len(latest) == 0 {
			return ex, notFound("%s has no execution #%d: it has no executions yet.", p.FullName(), number)
		}
		return ex, notFound("%s has no execution #%d: its executions are #1 to #%d.", p.FullName(), number, latest[0].Number)
	}
	return ex, err
}

func (d *Dashboard) loadExecution(ctx context.Context, p bot.Program, number string) (executionView, error) {
	var v executionView
	n, err := parseNumber(number)
	if err != nil {
		return v, err
	}
	err = d.view(ctx, func(tx readTx) (err error) {
		v = executionView{}
		ex, err := d.execution(ctx, tx, p, n)
		if err != nil {
			return err
		}
		if v.ExecutionDetail, err = bot.LoadExecutionDetail(ctx, tx, ex); err != nil {
			return err
		}
		if q, ok := d.approval(ex, v.ExecutionDetail.Steps, v.Events); ok {
			v.Approval = &q
		}
		v.Overrides = bot.Overrides(v.Events)
		if ex.Commit != "" {
			recs, err := tx.TriggerRecords(ctx, p.ID, ex.Commit)
			if err != nil {
				return err
			}
			for _, r := range recs {
				note, err := otherPipelineNote(ctx, tx, ex, r)
				if err != nil {
					return err
				}
				if note != "" && !slices.Contains(v.Notes, note) {
					v.Notes = append(v.Notes, note)
				}
			}
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	now := d.now()
	v.Duration = span(v.Execution.StartedAt, v.Execution.FinishedAt, now)
	for _, s := range v.ExecutionDetail.Steps {
		v.Steps = append(v.Steps, d.stepView(v.Program, v.Execution, s, now))
	}
	placeSteps(v.Execution, v.Steps, now)
	if dg := v.Execution.ArtifactDigest; dg != "" && d.Artifacts != nil {
		set, err := d.Artifacts.Get(ctx, dg)
		switch {
		case errors.Is(err, bot.ErrNotFound):
			v.ArtifactsError = fmt.Sprintf("the artifact set %s is not in the artifact store (retention removes sets nothing needs once their executions are older than the --retention age)", dg)
		case err != nil:
			d.logger().WarnContext(ctx, "reading an artifact set for the dashboard", "digest", dg, bot.LogError, err)
			v.ArtifactsError = fmt.Sprintf("the artifact set %s could not be read: %v", dg, err)
		default:
			v.Artifacts = &set
		}
	}
	return v, nil
}

// span is the time from start to end (or to now while it goes on); zero
// when it has not started.
func span(start, end, now time.Time) time.Duration {
	if start.IsZero() {
		return 0
	}
	if end.IsZero() {
		end = now
	}
	if end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

func (d *Dashboard) logFile(ex bot.Execution, step bot.StepName) string {
	return d.Logs.File(ex.ID, step)
}

func (d *Dashboard) stepView(p bot.Program, ex bot.Execution, s bot.Step, now time.Time) stepView {
	v := stepView{Step: s, Tail: s.LogTail, LogSize: -1}
	end := s.FinishedAt
	if end.IsZero() && s.State != bot.StepRunning && s.State != bot.StepWaiting {
		end = s.StartedAt // not going on: ended without a time
	}
	v.Duration = span(s.StartedAt, end, now)
	if d.Logs == nil {
		return v
	}
	fi, err := os.Stat(d.logFile(ex, s.Name))
	if err != nil || !fi.Mode().IsRegular() {
		return v
	}
	v.LogSize, v.LogPath = fi.Size(), logPath(p, ex.Number, s.Name)
	if v.Tail == "" && fi.Size() > 0 {
		v.Tail = readTail(d.logFile(ex, s.Name), bot.LogTailBytes)
	}
	return v
}

// readTail returns about the last n bytes of a file, from a line start.
func readTail(name string, n int64) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return ""
	}
	if off > 0 {
		if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// placeSteps sets each started step's place on the execution's timeline.
func placeSteps(ex bot.Execution, steps []stepView, now time.Time) {
	start := ex.StartedAt
	for _, s := range steps {
		if !s.StartedAt.IsZero() && (start.IsZero() || s.StartedAt.Before(start)) {
			start = s.StartedAt
		}
	}
	if start.IsZero() {
		return
	}
	end := start
	for _, s := range steps {
		if t := s.StartedAt.Add(s.Duration); !s.StartedAt.IsZero() && t.After(end) {
			end = t
		}
	}
	if !ex.FinishedAt.IsZero() && ex.FinishedAt.After(end) {
		end = ex.FinishedAt
	} else if ex.State.Active() && now.After(end) {
		end = now
	}
	total := end.Sub(start)
	if total <= 0 {
		return
	}
	for i := range steps {
		s := &steps[i]
		if s.StartedAt.IsZero() {
			continue
		}
		s.Offset = roundPct(float64(s.StartedAt.Sub(start)) / float64(total) * 100)
		s.Width = max(roundPct(float64(s.Duration)/float64(total)*100), 0.5)
		if s.Offset+s.Width > 100 {
			s.Offset = max(100-s.Width, 0)
		}
	}
}

func roundPct(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

// HTML handlers.

func (d *Dashboard) servePrograms(w http.ResponseWriter, r *http.Request) {
	progs, err := d.loadPrograms(r.Context())
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "programs", pageData{Title: "Programs", Body: programsPage{Programs: progs, SignedIn: !d.Public}})
}

// programOf reads the program page of r's {owner}/{repo}.
func (d *Dashboard) programOf(r *http.Request) (programView, error) {
	p, perm, err := d.program(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return programView{}, err
	}
	return d.loadProgram(r.Context(), p, perm)
}

// executionOf reads the execution page of r's {owner}/{repo}/…/{number}.
func (d *Dashboard) executionOf(r *http.Request) (executionView, error) {
	p, _, err := d.program(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return executionView{}, err
	}
	return d.loadExecution(r.Context(), p, r.PathValue("number"))
}

func (d *Dashboard) serveProgram(w http.ResponseWriter, r *http.Request) {
	v, err := d.programOf(r)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "program", pageData{Title: v.Program.FullName(), Program: &v.Program, Body: v})
}

func (d *Dashboard) serveEnvironments(w http.ResponseWriter, r *http.Request) {
	v, err := d.programOf(r)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "environments", pageData{Title: "Environments of " + v.Program.FullName(), Program: &v.Program, Body: v})
}

// programsPage is the program list's data.
type programsPage struct {
	Programs []programSummary
	SignedIn bool // the list holds what the viewer may read
}

// executionPage is the execution page's data.
type executionPage struct {
	executionView
	Extra template.HTML
}

func (d *Dashboard) serveExecution(w http.ResponseWriter, r *http.Request) {
	v, err := d.executionOf(r)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	page := executionPage{executionView: v}
	if d.Extra != nil {
		page.Extra = d.Extra(r, v.Program, v.Execution, v.ExecutionDetail.Steps)
	}
	d.render(w, r, http.StatusOK, "execution", pageData{
		Title:   fmt.Sprintf("%s %s", v.Program.FullName(), v.Execution),
		Program: &v.Program,
		Refresh: v.Execution.State.Active(),
		Body:    page,
	})
}

// serveLog sends a step's whole log as a download.
func (d *Dashboard) serveLog(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n, err := parseNumber(r.PathValue("number"))
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	prog, _, err := d.program(ctx, r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	var ex bot.Execution
	err = d.view(ctx, func(tx readTx) (err error) {
		ex, err = d.execution(ctx, tx, prog, n)
		return err
	})
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	step := bot.StepName(r.PathValue("step"))
	steps := bot.StepsOf(ex.Pipeline)
	if !slices.Contains(steps, step) {
		names := make([]string, len(steps))
		for i, s := range steps {
			names[i] = string(s)
		}
		d.errorPage(w, r, notFound("%s has no step %q; its steps are %s.", ex, step, strings.Join(names, ", ")))
		return
	}
	f, err := os.Open(d.logFile(ex, step))
	if errors.Is(err, os.ErrNotExist) {
		d.errorPage(w, r, notFound("%s has no log for %s: the step has not run a command.", ex, step))
		return
	}
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	name := fmt.Sprintf("%s-%s-%d-%s.log", prog.Owner, prog.Repo, ex.Number, step)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", mimeAttachment(name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// mimeAttachment is a Content-Disposition for a download of name.
func mimeAttachment(name string) string {
	safe := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '/' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, safe, url.PathEscape(name))
}

func (d *Dashboard) serveUnknownPage(w http.ResponseWriter, r *http.Request) {
	d.errorPage(w, r, notFound("There is no page at %s. Pages are /programs/OWNER/REPO, …/environments and …/executions/N.", r.URL.Path))
}

// loadCalendar adds the environment's deploy calendar, as of now, when it
// declares windows or freezes. Everyone who sees the program sees it.
func (d *Dashboard) loadCalendar(ctx context.Context, p bot.Program, ev *environmentView) {
	if d.Calendar == nil {
		return
	}
	cal, err := d.Calendar(ctx, p.ID, ev.Name)
	if err != nil {
		d.logger().WarnContext(ctx, "reading the deploy calendar for the dashboard", bot.LogRepo, p.FullName(), "environment", ev.Name, bot.LogError, err)
		ev.CalendarError = "the policy's deploy windows and freezes could not be read"
		return
	}
	if cal.Restricted() {
		r := cal.Report(ev.Name, d.now())
		ev.Calendar = &r
	}
}
