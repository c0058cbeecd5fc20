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
		Notifications: []APINotification{},
	}
	for _, n := range v.Notifications {
		a := APINotification{Target: n.Target.Name, TargetType: string(n.Target.Type), Event: string(n.Event), State: string(n.State),
			Attempts: n.Attempts, LastError: n.Error, Delivery: n.Delivery, CreatedAt: n.CreatedAt.UTC()}
		if n.State == bot.NotificationPending {
			a.NextAt = optTime(n.NextAt)
		}
		out.Notifications = append(out.Notifications, a)
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
