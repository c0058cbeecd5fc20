package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The JSON API (read-only, GET only) shows what the dashboard shows.
// Times are RFC 3339 in UTC; a time that has not happened yet is left out.
// Paths (html_path, log_path, api_path) are relative to the server's base.
// Errors are {"error": "message"} with a 4xx or 5xx status.

// APIError is the body of every API error.
type APIError struct {
	Error string `json:"error"`
}

// APIProgram is a program (one repository).
type APIProgram struct {
	Owner    string `json:"owner"`
	Repo     string `json:"repo"`
	FullName string `json:"full_name"`
	Removed  bool   `json:"removed"`
	HTMLPath string `json:"html_path"`
	APIPath  string `json:"api_path"`
}

// APIPrograms is GET /api/v1/programs.
type APIPrograms struct {
	Programs []APIProgram `json:"programs"`
}

// APIExecution is an execution without its steps.
type APIExecution struct {
	Number         int        `json:"number"`
	Pipeline       string     `json:"pipeline"`
	State          string     `json:"state"`
	Message        string     `json:"message,omitempty"`
	Commit         string     `json:"commit"`
	Branch         string     `json:"branch,omitempty"`
	Cause          string     `json:"cause,omitempty"`
	TriggeredBy    string     `json:"triggered_by,omitempty"`
	SourceNumber   int        `json:"source_number,omitempty"` // prod-only: the stage-only execution it deploys
	ArtifactDigest string     `json:"artifact_digest,omitempty"`
	ScheduledAt    *time.Time `json:"scheduled_at,omitempty"`
	Rollback       string     `json:"rollback,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	HTMLPath       string     `json:"html_path"`
}

// APIPipeline is a configured pipeline with its last executions.
type APIPipeline struct {
	Kind           string         `json:"kind"`
	Branch         string         `json:"branch,omitempty"`
	Trigger        string         `json:"trigger,omitempty"` // empty for prod-only: it starts by promotion
	Approval       bool           `json:"approval"`
	Scheduled      bool           `json:"scheduled"`
	LastExecutions []APIExecution `json:"last_executions"` // newest first, at most 5
}

// APIDeployment is what runs on an environment.
type APIDeployment struct {
	Commit          string    `json:"commit"`
	Pipeline        string    `json:"pipeline,omitempty"`
	ExecutionNumber int       `json:"execution_number,omitempty"`
	ArtifactDigest  string    `json:"artifact_digest,omitempty"`
	Since           time.Time `json:"since"`
	HTMLPath        string    `json:"html_path,omitempty"`
}

// APIVariable is an environment variable; Source is "set" (with
// /stagehand env set) or "config" (.github/stagehand.yml).
type APIVariable struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// APISecret is a declared secret: its name and "set" or "missing"; the API
// never carries a secret's value.
type APISecret struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// APIEnvironment is stage or production.
type APIEnvironment struct {
	Name       string         `json:"name"`
	Deployment *APIDeployment `json:"deployment"` // null: nothing deployed yet
	// HeldBy are the running or waiting executions that hold the
	// environment (rule E); QueuedNext the queued ones that will.
	HeldBy         []APIExecution `json:"held_by"`
	QueuedNext     []APIExecution `json:"queued_next"`
	Variables      []APIVariable  `json:"variables"`
	VariablesError string         `json:"variables_error,omitempty"`
	// VariablesHidden: only people who can write to the repository see
	// its variables; variables is empty for the others.
	VariablesHidden bool `json:"variables_hidden,omitempty"`
	// Secrets are the declared secrets, by name (shown with the
	// variables).
	Secrets      []APISecret `json:"secrets,omitempty"`
	SecretsError string      `json:"secrets_error,omitempty"`
	// Calendar is the environment's deploy windows and freezes (policy),
	// absent when it declares none.
	Calendar      *APICalendar `json:"calendar,omitempty"`
	CalendarError string       `json:"calendar_error,omitempty"`
	// WaitingApprovals are the holders waiting for approval, with where
	// their quorum stands.
	WaitingApprovals []APIWaitingApproval `json:"waiting_approvals,omitempty"`
}

// APICalendar is an environment's deploy calendar as of the request.
type APICalendar struct {
	Windows []string    `json:"windows"` // "mon–thu 09:00–16:00 Europe/Berlin"
	Freezes []APIFreeze `json:"freezes"` // those not over yet
	Open    bool        `json:"open"`
	// State is "open now", or "closed: <why>; opens Mon 09:00
	// Europe/Berlin (in 14 h)".
	State    string     `json:"state"`
	NextOpen *time.Time `json:"next_open,omitempty"` // when closed: when deploys may start again
}

// APIFreeze is a freeze; Active: it is in effect now.
type APIFreeze struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
	Active bool      `json:"active"`
}

func apiCalendar(r *bot.CalendarReport) *APICalendar {
	if r == nil {
		return nil
	}
	out := &APICalendar{Windows: append([]string{}, r.Windows...), Freezes: []APIFreeze{}, Open: r.Open, State: r.State, NextOpen: optTime(r.Next)}
	for _, f := range r.Freezes {
		out.Freezes = append(out.Freezes, APIFreeze{From: f.From, To: f.To, Reason: f.Reason, Active: f.Now})
	}
	return out
}

// APIProgramDetail is GET /api/v1/programs/{owner}/{repo}.
type APIProgramDetail struct {
	Program      APIProgram       `json:"program"`
	Pipelines    []APIPipeline    `json:"pipelines"`
	Environments []APIEnvironment `json:"environments"`
	Queue        []APIExecution   `json:"queue"` // running and waiting executions, then queued ones, each oldest first: the order they run
}

// APIExecutions is GET /api/v1/programs/{owner}/{repo}/executions.
type APIExecutions struct {
	Executions []APIExecution `json:"executions"`
}

// APIStep is one step of an execution.
type APIStep struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Message    string     `json:"message,omitempty"`
	Attempt    int        `json:"attempt"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	DurationMS int64      `json:"duration_ms"` // so far, while it runs
	LogTail    string     `json:"log_tail,omitempty"`
	LogBytes   int64      `json:"log_bytes,omitempty"`
	LogPath    string     `json:"log_path,omitempty"` // the whole log; empty when the step wrote none
}

// APIEvent is something a person or Stagehand did to an execution.
type APIEvent struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// APIArtifactSet is an artifact set with its total size.
type APIArtifactSet struct {
	Digest string             `json:"digest"`
	Size   int64              `json:"size"`
	Files  []bot.ArtifactFile `json:"files"`
}

// APIExecutionDetail is GET /api/v1/programs/{owner}/{repo}/executions/{number}.
type APIExecutionDetail struct {
	APIExecution
	Program       string          `json:"program"`
	Steps         []APIStep       `json:"steps"`
	Events        []APIEvent      `json:"events"`
	Source        *APIExecution   `json:"source,omitempty"` // prod-only
	ArtifactSet   *APIArtifactSet `json:"artifact_set,omitempty"`
	ArtifactError string          `json:"artifact_error,omitempty"`
	// Notes say what the push of this commit did to other pipelines
	// (rule A: why they did not start).
	Notes []string `json:"notes,omitempty"`
	// Approval is where its waiting approval stands (absent when it does
	// not wait for one).
	Approval *APIQuorum `json:"approval,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func apiProgram(p bot.Program) APIProgram {
	return APIProgram{Owner: p.Owner, Repo: p.Repo, FullName: p.FullName(), Removed: p.Removed,
		HTMLPath: bot.ProgramPath(p), APIPath: apiProgramPath(p)}
}

// apiExecution converts ex; sources maps execution IDs to numbers.
func apiExecution(p bot.Program, ex bot.Execution, sources map[int64]int) APIExecution {
	return APIExecution{
		Number: ex.Number, Pipeline: string(ex.Pipeline), State: string(ex.State), Message: ex.Message,
		Commit: ex.Commit, Branch: ex.Branch, Cause: string(ex.Cause), TriggeredBy: ex.TriggeredBy,
		SourceNumber: sources[ex.SourceID], ArtifactDigest: ex.ArtifactDigest, ScheduledAt: optTime(ex.ScheduledAt),
		Rollback: ex.Rollback, CreatedAt: ex.CreatedAt.UTC(), StartedAt: optTime(ex.StartedAt),
		FinishedAt: optTime(ex.FinishedAt), HTMLPath: bot.ExecutionPath(p, ex.Number),
	}
}

func apiExecutionList(p bot.Program, es []bot.Execution, sources map[int64]int) []APIExecution {
	out := make([]APIExecution, 0, len(es))
	for _, ex := range es {
		out = append(out, apiExecution(p, ex, sources))
	}
	return out
}

// sourceNumbers maps the SourceID of each of es to that execution's number.
func sourceNumbers(ctx context.Context, tx bot.ExecutionReader, es ...[]bot.Execution) (map[int64]int, error) {
	m := map[int64]int{}
	for _, list := range es {
		for _, ex := range list {
			if ex.SourceID == 0 {
				continue
			}
			if _, ok := m[ex.SourceID]; ok {
				continue
			}
			src, err := tx.Execution(ctx, ex.SourceID)
			if errors.Is(err, bot.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			m[ex.SourceID] = src.Number
		}
	}
	return m, nil
}

// writeJSON sends v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error": "encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (d *Dashboard) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := d.statusOf(r, err)
	writeJSON(w, status, APIError{Error: msg})
}

func (d *Dashboard) apiPrograms(w http.ResponseWriter, r *http.Request) {
	progs, err := d.readablePrograms(r.Context())
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	out := APIPrograms{Programs: make([]APIProgram, 0, len(progs))}
	for _, p := range progs {
		out.Programs = append(out.Programs, apiProgram(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dashboard) apiProgram(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, err := d.programOf(r)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	var sources map[int64]int
	err = d.view(ctx, func(tx readTx) error {
		lists := [][]bot.Execution{v.Queue}
		for _, pipe := range v.Pipelines {
			lists = append(lists, pipe.Last)
		}
		var err error
		sources, err = sourceNumbers(ctx, tx, lists...)
		return err
	})
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	p := v.Program
	out := APIProgramDetail{
		Program:      apiProgram(p),
		Pipelines:    []APIPipeline{},
		Environments: []APIEnvironment{},
		Queue:        apiExecutionList(p, v.Queue, sources),
	}
	for _, pipe := range v.Pipelines {
		out.Pipelines = append(out.Pipelines, APIPipeline{
			Kind: string(pipe.Kind), Branch: pipe.Branch, Trigger: string(pipe.Trigger),
			Approval: pipe.Approval, Scheduled: pipe.Scheduled,
			LastExecutions: apiExecutionList(p, pipe.Last, sources),
		})
	}
	for _, ev := range v.Environments {
		e := APIEnvironment{
			Name:             string(ev.Name),
			HeldBy:           apiExecutionList(p, ev.Holders, sources),
			QueuedNext:       apiExecutionList(p, ev.Next, sources),
			Variables:        []APIVariable{},
			VariablesError:   ev.VariablesError,
			VariablesHidden:  ev.VariablesHidden,
			SecretsError:     ev.SecretsError,
			Calendar:         apiCalendar(ev.Calendar),
			CalendarError:    ev.CalendarError,
			WaitingApprovals: apiWaitingApprovals(p, ev.Approvals),
		}
		for _, sv := range ev.Secrets {
			e.Secrets = append(e.Secrets, APISecret(sv))
		}
		if dep := ev.Deployment; dep != nil {
			e.Deployment = &APIDeployment{Commit: dep.Commit, Pipeline: string(dep.Pipeline), ExecutionNumber: dep.Number,
				ArtifactDigest: dep.ArtifactDigest, Since: dep.Since.UTC()}
			if dep.Number != 0 {
				e.Deployment.HTMLPath = bot.ExecutionPath(p, dep.Number)
			}
		}
		for _, va := range ev.Variables {
			e.Variables = append(e.Variables, APIVariable(va))
		}
		out.Environments = append(out.Environments, e)
	}
	writeJSON(w, http.StatusOK, out)
}

// Limits of GET …/executions.
const (
	defaultExecutionsLimit = 50
	maxExecutionsLimit     = 500
)

// executionFilter reads ?pipeline=, ?state= (comma-separated) and ?limit=.
func executionFilter(r *http.Request) (bot.ExecutionFilter, error) {
	q := r.URL.Query()
	f := bot.ExecutionFilter{Limit: defaultExecutionsLimit}
	if k := q.Get("pipeline"); k != "" {
		if !slices.Contains(bot.PipelineKinds, bot.PipelineKind(k)) {
			return f, badRequest("unknown pipeline %q: use full-stack, stage-only or prod-only", k)
		}
		f.Pipeline = bot.PipelineKind(k)
	}
	known := []bot.ExecutionState{bot.ExecutionQueued, bot.ExecutionRunning, bot.ExecutionWaiting,
		bot.ExecutionSucceeded, bot.ExecutionFailed, bot.ExecutionCancelled, bot.ExecutionSkipped}
	for _, v := range q["state"] {
		for s := range strings.SplitSeq(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if s == "active" {
				f.States = append(f.States, bot.ActiveStates...)
				continue
			}
			if !slices.Contains(known, bot.ExecutionState(s)) {
				return f, badRequest("unknown state %q: use queued, running, waiting, succeeded, failed, cancelled, skipped or active", s)
			}
			f.States = append(f.States, bot.ExecutionState(s))
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxExecutionsLimit {
			return f, badRequest("limit must be a number from 1 to %d, got %q", maxExecutionsLimit, l)
		}
		f.Limit = n
	}
	return f, nil
}

func (d *Dashboard) apiExecutions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, err := executionFilter(r)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	p, _, err := d.program(ctx, r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	var out APIExecutions
	err = d.view(ctx, func(tx readTx) error {
		f.ProgramID = p.ID
		es, err := tx.Executions(ctx, f)
		if err != nil {
			return err
		}
		sources, err := sourceNumbers(ctx, tx, es)
		if err != nil {
			return err
		}
		out.Executions = apiExecutionList(p, es, sources)
		return nil
	})
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dashboard) apiExecution(w http.ResponseWriter, r *http.Request) {
	v, err := d.executionOf(r)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	p, ex := v.Program, v.Execution
	sources := map[int64]int{}
	if v.Source != nil {
		sources[v.Source.ID] = v.Source.Number
	}
	out := APIExecutionDetail{
		APIExecution:  apiExecution(p, ex, sources),
		Program:       p.FullName(),
		Steps:         []APIStep{},
		Events:        []APIEvent{},
		ArtifactError: v.ArtifactsError,
		Notes:         v.Notes,
	}
	if v.Approval != nil {
		q := apiQuorum(*v.Approval)
		out.Approval = &q
	}
	for _, s := range v.Steps {
		st := APIStep{Name: string(s.Name), State: string(s.State), Message: s.Message, Attempt: s.Attempt,
			StartedAt: optTime(s.StartedAt), FinishedAt: optTime(s.FinishedAt), DurationMS: s.Duration.Milliseconds(),
			LogTail: s.Tail, LogPath: s.LogPath}
		if s.LogSize > 0 {
			st.LogBytes = s.LogSize
		}
		out.Steps = append(out.Steps, st)
	}
	for _, ev := range v.Events {
		out.Events = append(out.Events, APIEvent{At: ev.At.UTC(), Actor: ev.Actor, Kind: string(ev.Kind), Detail: ev.Detail})
	}
	if v.Source != nil {
		src := apiExecution(p, *v.Source, nil)
		out.Source = &src
	}
	if a := v.Artifacts; a != nil {
		files := a.Files
		if files == nil {
			files = []bot.ArtifactFile{}
		}
		out.ArtifactSet = &APIArtifactSet{Digest: a.Digest, Size: a.Size(), Files: files}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiUnknown answers every other path under /api/v1/.
func (d *Dashboard) apiUnknown(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, APIError{Error: "the API is read-only: use GET"})
		return
	}
	writeJSON(w, http.StatusNotFound, APIError{Error: "no API endpoint at " + r.URL.Path +
		"; the endpoints are GET /api/v1/programs, /api/v1/programs/{owner}/{repo}, …/executions and …/executions/{number}"})
}
