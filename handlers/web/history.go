package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// An environment's history: every deploy that ran there, newest first, a
// page at a time; on the dashboard (…/environments/{env}/deployments) and
// in the API (/api/v1/…/environments/{env}/deployments).

// Limits of an environment's history.
const (
	historyPageLimit    = 25 // rows on the dashboard's page
	defaultHistoryLimit = 50
	maxHistoryLimit     = 200
)

// Artifacts of a production deploy's build.
const (
	artifactsKept   = "kept"   // the set is in the artifact store: the build can be restored
	artifactsPruned = "pruned" // retention removed it: it cannot
)

// historyRow is one deploy as the page and the API show it.
type historyRow struct {
	bot.EnvironmentDeployment
	Approval bot.QuorumState // production: who approved it
	// Artifacts is whether the artifact set of its build is still kept
	// (artifactsKept, artifactsPruned); "" when unknown.
	Artifacts string
	// Restorable: its build succeeded and its artifact set is kept, so
	// production can be restored to it.
	Restorable bool
	// PrunedAt is when retention removed the set (zero: kept, or pruned
	// before Stagehand recorded prune times).
	PrunedAt time.Time
}

// historyView is a page of an environment's history.
type historyView struct {
	Program     bot.Program
	Environment bot.EnvironmentName
	Rows        []historyRow
	// Older and Newer are the cursors of the pages around this one; ""
	// when there is none.
	Older, Newer string
}

func historyPath(p bot.Program, env bot.EnvironmentName) string {
	return environmentsPath(p) + "/" + url.PathEscape(string(env)) + "/deployments"
}

// historyPageURL is the dashboard's page of env's history at cursor.
func historyPageURL(p bot.Program, env bot.EnvironmentName, cursor string) string {
	if cursor == "" {
		return historyPath(p, env)
	}
	return historyPath(p, env) + "?cursor=" + url.QueryEscape(cursor)
}

// environmentOf reads the {env} of a path: stage or production.
func environmentOf(r *http.Request) (bot.EnvironmentName, error) {
	env := bot.EnvironmentName(r.PathValue("env"))
	if env != bot.Stage && env != bot.Production {
		return "", notFound("There is no environment %q: the environments are stage and production.", env)
	}
	return env, nil
}

// A cursor is opaque to its users: "b" (older than) or "a" (newer than), a
// deploy's start in unix nanoseconds and its execution id, in URL-safe
// base64.
func encodeCursor(dir byte, pos bot.HistoryPosition) string {
	raw := fmt.Sprintf("%c%d.%d", dir, pos.StartedAt.UnixNano(), pos.ExecutionID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor reads a cursor into the query.
func decodeCursor(cursor string, q *bot.HistoryQuery) error {
	bad := badRequest("the cursor %q is not one this server gave: take next_cursor or prev_cursor from an answer, or leave it out to start at the newest", cursor)
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) < 2 {
		return bad
	}
	nanos, id, ok := strings.Cut(string(raw[1:]), ".")
	if !ok {
		return bad
	}
	ns, err1 := strconv.ParseInt(nanos, 10, 64)
	eid, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || eid <= 0 {
		return bad
	}
	pos := bot.HistoryPosition{StartedAt: time.Unix(0, ns).UTC(), ExecutionID: eid}
	switch raw[0] {
	case 'b':
		q.Before = pos
	case 'a':
		q.After = pos
	default:
		return bad
	}
	return nil
}

// historyLimit reads ?limit= (def when absent).
func historyLimit(r *http.Request, def int) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > maxHistoryLimit {
		return 0, badRequest("limit must be a number from 1 to %d, got %q", maxHistoryLimit, l)
	}
	return n, nil
}

// historyOf reads the page of r's program and environment: the program
// first, so that one the viewer may not read is the 404 of any other.
func (d *Dashboard) historyOf(r *http.Request, limit int) (historyView, error) {
	ctx := r.Context()
	p, _, err := d.program(ctx, r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return historyView{}, err
	}
	env, err := environmentOf(r)
	if err != nil {
		return historyView{}, err
	}
	q := bot.HistoryQuery{ProgramID: p.ID, Environment: env, Limit: limit + 1}
	c, until := r.URL.Query().Get("cursor"), r.URL.Query().Get("until")
	switch {
	case c != "" && until != "":
		return historyView{}, badRequest("give until (where a listing starts) or cursor (where it goes on), not both")
	case c != "":
		if err := decodeCursor(c, &q); err != nil {
			return historyView{}, err
		}
	case until != "":
		// The deploys that started before until, newest first: what ran
		// there at that time, then what ran before.
		at, err := queryTime("until", until)
		if err != nil {
			return historyView{}, err
		}
		q.Before = bot.HistoryPosition{StartedAt: at}
	}
	var rows []bot.EnvironmentDeployment
	err = d.view(ctx, func(tx readTx) (err error) {
		rows, err = tx.EnvironmentHistory(ctx, q)
		return err
	})
	if err != nil {
		return historyView{}, err
	}
	v := historyView{Program: p, Environment: env}
	// One more than the page was asked for says whether there is more
	// in the direction read; the cursor's own row is in the other one.
	more := len(rows) > limit
	if more && !q.After.IsZero() {
		rows = rows[1:] // the extra one is the newest
	} else if more {
		rows = rows[:limit]
	}
	if len(rows) > 0 {
		if more || !q.After.IsZero() {
			v.Older = encodeCursor('b', rows[len(rows)-1].Position())
		}
		if (more && !q.After.IsZero()) || !q.Before.IsZero() {
			v.Newer = encodeCursor('a', rows[0].Position())
		}
	}
	kept := map[string]string{}
	var pruned []string
	for _, h := range rows {
		row := historyRow{EnvironmentDeployment: h, Approval: h.Approval(), Artifacts: d.artifactsKept(ctx, h.ArtifactDigest, kept)}
		row.Restorable = row.Artifacts == artifactsKept && h.BuildState == bot.ExecutionSucceeded
		if row.Artifacts == artifactsPruned {
			pruned = append(pruned, h.ArtifactDigest)
		}
		v.Rows = append(v.Rows, row)
	}
	if len(pruned) > 0 {
		var at map[string]time.Time
		if err := d.view(ctx, func(tx readTx) (err error) {
			at, err = tx.PrunedAt(ctx, pruned)
			return err
		}); err != nil {
			return historyView{}, err
		}
		for i := range v.Rows {
			if v.Rows[i].Artifacts == artifactsPruned {
				v.Rows[i].PrunedAt = at[v.Rows[i].ArtifactDigest]
			}
		}
	}
	return v, nil
}

// artifactsKept says whether the artifact set digest is still in the
// artifact store ("" when that cannot be told); seen caches the answers.
func (d *Dashboard) artifactsKept(ctx context.Context, digest string, seen map[string]string) string {
	if digest == "" || d.Artifacts == nil {
		return ""
	}
	if s, ok := seen[digest]; ok {
		return s
	}
	_, err := d.Artifacts.Get(ctx, digest)
	switch {
	case err == nil:
		seen[digest] = artifactsKept
	case errors.Is(err, bot.ErrNotFound):
		seen[digest] = artifactsPruned
	default:
		d.logger().WarnContext(ctx, "reading an artifact set for the history", "digest", digest, bot.LogError, err)
		seen[digest] = ""
	}
	return seen[digest]
}

// historyPage is the history page's data.
type historyPage struct {
	historyView
	OlderURL, NewerURL string
	Paged              bool // a page other than the first was asked for
	// Until is the ?until= asked for: the deploys that started before it.
	Until string
	// Restore is the Restore buttons' form (nil: none shown); RestoreNote
	// says why there are none.
	Restore     *restoreForm
	RestoreNote string
}

func (d *Dashboard) serveHistory(w http.ResponseWriter, r *http.Request) {
	v, err := d.historyOf(r, historyPageLimit)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	page := historyPage{historyView: v, Paged: r.URL.Query().Get("cursor") != "", Until: r.URL.Query().Get("until")}
	page.Restore, page.RestoreNote = d.restoreFormFor(r, v)
	if v.Older != "" {
		page.OlderURL = historyPageURL(v.Program, v.Environment, v.Older)
	}
	if v.Newer != "" {
		page.NewerURL = historyPageURL(v.Program, v.Environment, v.Newer)
	}
	d.render(w, r, http.StatusOK, "history", pageData{
		Title:   fmt.Sprintf("%s history of %s", v.Environment, v.Program.FullName()),
		Program: &v.Program,
		Body:    page,
	})
}

// APIEnvironmentDeployments is GET
// /api/v1/programs/{owner}/{repo}/environments/{env}/deployments: the
// deploys of the environment, newest first, a page at a time (?limit=,
// ?cursor=), from the newest or from those that started before ?until=.
type APIEnvironmentDeployments struct {
	Environment string                     `json:"environment"`
	Deployments []APIEnvironmentDeployment `json:"deployments"`
	// NextCursor reads the older page, PrevCursor the newer one; absent
	// when there is none.
	NextCursor string `json:"next_cursor,omitempty"`
	PrevCursor string `json:"prev_cursor,omitempty"`
}

// APIEnvironmentDeployment is one deploy of an environment.
type APIEnvironmentDeployment struct {
	ExecutionNumber int    `json:"execution_number"`
	Pipeline        string `json:"pipeline"`
	Commit          string `json:"commit"`
	ArtifactDigest  string `json:"artifact_digest,omitempty"`
	// BuildNumber is the execution that built the artifacts: a prod-only
	// execution's source, else the execution itself.
	BuildNumber int    `json:"build_number"`
	Cause       string `json:"cause,omitempty"`
	TriggeredBy string `json:"triggered_by,omitempty"`
	// Approval is who let a production deploy run, with the quorum; absent
	// for stage.
	Approval         *APIQuorum `json:"approval,omitempty"`
	RollbackApproved bool       `json:"rollback_approved,omitempty"`
	Outcome          string     `json:"outcome"` // running, succeeded, failed, cancelled
	Message          string     `json:"message,omitempty"`
	StartedAt        time.Time  `json:"started_at"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
	// BuildState is the state of the build's execution; Artifacts "kept"
	// or "pruned" (retention removed its artifact set; absent when
	// unknown); Restorable: the build succeeded and its set is kept, so
	// production can be restored to it.
	BuildState string `json:"build_state"`
	Artifacts  string `json:"artifacts,omitempty"`
	// PrunedAt is when retention removed the artifact set ("pruned by
	// retention on …"); absent while it is kept, or when the set was
	// removed before Stagehand recorded it.
	PrunedAt   *time.Time `json:"pruned_at,omitempty"`
	Restorable bool       `json:"restorable"`
	HTMLPath   string     `json:"html_path"`
}

func (d *Dashboard) apiHistory(w http.ResponseWriter, r *http.Request) {
	limit, err := historyLimit(r, defaultHistoryLimit)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	v, err := d.historyOf(r, limit)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	out := APIEnvironmentDeployments{Environment: string(v.Environment), Deployments: []APIEnvironmentDeployment{},
		NextCursor: v.Older, PrevCursor: v.Newer}
	for _, h := range v.Rows {
		a := APIEnvironmentDeployment{
			ExecutionNumber: h.Number, Pipeline: string(h.Pipeline), Commit: h.Commit, ArtifactDigest: h.ArtifactDigest,
			BuildNumber: h.Build(), Cause: string(h.Cause), TriggeredBy: h.TriggeredBy, RollbackApproved: h.RolledBack(),
			Outcome: string(h.Outcome), Message: h.Message, StartedAt: h.StartedAt.UTC(), FinishedAt: optTime(h.FinishedAt),
			BuildState: string(h.BuildState), Artifacts: h.Artifacts, PrunedAt: optTime(h.PrunedAt), Restorable: h.Restorable, HTMLPath: bot.ExecutionPath(v.Program, h.Number),
		}
		if v.Environment == bot.Production {
			q := apiQuorum(h.Approval)
			a.Approval = &q
		}
		out.Deployments = append(out.Deployments, a)
	}
	writeJSON(w, http.StatusOK, out)
}
