package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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

// Dashboard serves the web dashboard (server-rendered HTML, no JavaScript
// needed, no CDN) and the JSON API over the same data. Every route is a
// GET that changes nothing, but one: with Restores, production's history
// page offers its approvers a Restore button (a POST, restore.go).
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
	// Guard wraps every route but the style sheet and the Restore button's
	// POST (SignIn.Require).
	Guard func(http.Handler) http.Handler
	// Restores turns on production's Restore button for its approvers;
	// nil: none.
	Restores *Restores
	// Identify wraps the Restore button's POST (SignIn.Identify): it puts
	// the visitor in the request's context when there is one, and lets the
	// handler refuse (and record) a request from nobody. Nil: nobody is
	// signed in.
	Identify func(http.Handler) http.Handler
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
		{"GET /programs/{owner}/{repo}/environments/{env}/deployments", h(d.serveHistory)},
		{"POST /programs/{owner}/{repo}/environments/{env}/restore", d.identify(d.serveRestore)},
		{"GET /programs/{owner}/{repo}/audit", h(d.serveAudit)},
		{"GET /programs/{owner}/{repo}/executions/{number}", h(d.serveExecution)},
		{"GET /programs/{owner}/{repo}/executions/{number}/logs/{step}", h(d.serveLog)},
		{"GET /programs/", h(d.serveUnknownPage)},
		{"GET /static/style.css", http.HandlerFunc(serveStyle)},

		{"GET /api/v1/programs", h(d.apiPrograms)},
		{"GET /api/v1/audit", h(d.apiAudit)},
		{"GET /api/v1/programs/{owner}/{repo}", h(d.apiProgram)},
		{"GET /api/v1/programs/{owner}/{repo}/executions", h(d.apiExecutions)},
		{"GET /api/v1/programs/{owner}/{repo}/executions/{number}", h(d.apiExecution)},
		{"GET /api/v1/programs/{owner}/{repo}/environments/{env}/deployments", h(d.apiHistory)},
		{"/api/v1/", h(d.apiUnknown)},
	}
}

// identify wraps the Restore button's POST with Identify.
func (d *Dashboard) identify(f http.HandlerFunc) http.Handler {
	if d.Identify != nil {
		return d.Identify(f)
	}
	return f
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
	// Pin: production runs a restored build ("pinned by restore of #N").
	Pin bot.RestorePin
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
	// FailedNotifications are its notifications given up (their reason
	// never holds the target's URL).
	FailedNotifications []bot.Notification
	// Notifications are all of them, oldest first (the API).
	Notifications []bot.Notification
}
