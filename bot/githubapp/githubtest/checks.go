package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"
)

// CheckRun is the stand-in's state of one check run.
type CheckRun struct {
	ID          int64
	Owner, Repo string
	Name        string
	HeadSHA     string
	Status      string // queued, in_progress or completed
	Conclusion  string // empty until completed
	ExternalID  string
	DetailsURL  string
	StartedAt   time.Time
	CompletedAt time.Time // zero until completed
	Output      CheckRunOutput
	Actions     []CheckRunAction // the buttons as last sent (replaced by each update that has actions)
	// Bodies holds every request body that created (first) or updated it, in order.
	Bodies []json.RawMessage
}

// CheckRunOutput is a check run's output. Annotations accumulate over
// updates, as on GitHub; title, summary and text are replaced.
type CheckRunOutput struct {
	Title, Summary, Text string
	Annotations          []Annotation
}

// Annotation is one check-run annotation.
type Annotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	StartColumn     int    `json:"start_column,omitempty"`
	EndColumn       int    `json:"end_column,omitempty"`
	AnnotationLevel string `json:"annotation_level"`
	Message         string `json:"message"`
	Title           string `json:"title,omitempty"`
	RawDetails      string `json:"raw_details,omitempty"`
}

// CheckRunAction is a button on a completed check run.
type CheckRunAction struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

// checkRunBody is the request body of create and update (schema-checked before use).
type checkRunBody struct {
	Name        *string `json:"name"`
	HeadSHA     string  `json:"head_sha"`
	DetailsURL  *string `json:"details_url"`
	ExternalID  *string `json:"external_id"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *struct {
		Title       *string      `json:"title"`
		Summary     *string      `json:"summary"`
		Text        *string      `json:"text"`
		Annotations []Annotation `json:"annotations"`
	} `json:"output"`
	Actions []CheckRunAction `json:"actions"`
}

// CheckRuns returns the check runs of owner/repo in order of creation, each
// in its current state.
func (s *Server) CheckRuns(owner, repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, id := range s.checkRunOrder {
		if cr := s.checkRuns[id]; repoKey(cr.Owner, cr.Repo) == repoKey(owner, repo) {
			out = append(out, cr.clone())
		}
	}
	return out
}

// CheckRun returns the check run with that id; the zero CheckRun if none.
func (s *Server) CheckRun(id int64) CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cr := s.checkRuns[id]; cr != nil {
		return cr.clone()
	}
	return CheckRun{}
}

func (cr *CheckRun) clone() CheckRun {
	c := *cr
	c.Output.Annotations = slices.Clone(cr.Output.Annotations)
	c.Actions = slices.Clone(cr.Actions)
	c.Bodies = slices.Clone(cr.Bodies)
	return c
}

// apply sets the fields body has, with GitHub's rules: a conclusion
// completes the run, completed_at defaults to now, annotations accumulate.
func (cr *CheckRun) apply(b *checkRunBody, now time.Time) {
	if b.Name != nil {
		cr.Name = *b.Name
	}
	if b.DetailsURL != nil {
		cr.DetailsURL = *b.DetailsURL
	}
	if b.ExternalID != nil {
		cr.ExternalID = *b.ExternalID
	}
	if b.StartedAt != nil {
		cr.StartedAt, _ = time.Parse(time.RFC3339, *b.StartedAt)
	}
	if b.Status != nil {
		cr.Status = *b.Status
		if cr.Status != "completed" {
			cr.Conclusion, cr.CompletedAt = "", time.Time{}
		}
	}
	if b.Conclusion != nil {
		cr.Status, cr.Conclusion = "completed", *b.Conclusion
	}
	if b.CompletedAt != nil {
		cr.CompletedAt, _ = time.Parse(time.RFC3339, *b.CompletedAt)
	}
	if cr.Status == "completed" && cr.CompletedAt.IsZero() {
		cr.CompletedAt = now
	}
	if o := b.Output; o != nil {
		if o.Title != nil {
			cr.Output.Title = *o.Title
		}
		if o.Summary != nil {
			cr.Output.Summary = *o.Summary
		}
		if o.Text != nil {
			cr.Output.Text = *o.Text
		}
		cr.Output.Annotations = append(cr.Output.Annotations, o.Annotations...)
	}
	if b.Actions != nil {
		cr.Actions = slices.Clone(b.Actions)
	}
}

// checkRunRefusal is GitHub's 422 for values its schema allows but its API
// refuses to an App; "" when body is acceptable.
func checkRunRefusal(b *checkRunBody) string {
	if b.Status != nil {
		switch *b.Status {
		case "waiting", "requested", "pending":
			return "Only GitHub Actions can set a status of waiting, pending, or requested."
		}
	}
	if b.Conclusion != nil && *b.Conclusion == "stale" {
		return "Conclusion can't be set to stale. Only GitHub can set this."
	}
	return ""
}

func (s *Server) createCheckRun(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, checksWrite); resp != nil {
		return *resp
	}
	var b checkRunBody
	if err := json.Unmarshal(req.body, &b); err != nil {
		return s.refuse(req, "Problems parsing JSON")
	}
	if msg := checkRunRefusal(&b); msg != "" {
		return s.refuse(req, msg)
	}
	rp := s.repo(repoKey(owner, repo))
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	s.nextID++
	cr := &CheckRun{ID: s.nextID, Owner: rp.owner, Repo: rp.name, HeadSHA: b.HeadSHA, Status: "queued", StartedAt: now,
		Bodies: []json.RawMessage{slices.Clone(req.body)}}
	cr.apply(&b, now)
	s.checkRuns[cr.ID] = cr
	s.checkRunOrder = append(s.checkRunOrder, cr.ID)
	body := s.checkRunJSON(cr)
	s.mu.Unlock()
	return response{status: http.StatusCreated, body: body}
}

func (s *Server) updateCheckRun(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, checksWrite); resp != nil {
		return *resp
	}
	id, _ := strconv.ParseInt(req.params["check_run_id"], 10, 64)
	var b checkRunBody
	if err := json.Unmarshal(req.body, &b); err != nil {
		return s.refuse(req, "Problems parsing JSON")
	}
	if msg := checkRunRefusal(&b); msg != "" {
		return s.refuse(req, msg)
	}
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := s.checkRuns[id]
	if cr == nil || repoKey(cr.Owner, cr.Repo) != repoKey(owner, repo) {
		return req.notFound()
	}
	cr.apply(&b, now)
	cr.Bodies = append(cr.Bodies, slices.Clone(req.body))
	return response{status: http.StatusOK, body: s.checkRunJSON(cr)}
}

// listCheckRunsForRef serves check runs whose head_sha is ref (the stand-in
// knows no branches), with GitHub's check_name, status, filter (latest: the
// newest run of each name; all) and per_page/page parameters.
func (s *Server) listCheckRunsForRef(req *request) response {
	owner, repo, ref := req.params["owner"], req.params["repo"], req.params["ref"]
	if _, resp := s.installationAuth(req, owner, repo, checksRead); resp != nil {
		return *resp
	}
	q := req.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*CheckRun
	newest := map[string]int64{}
	for _, id := range s.checkRunOrder {
		cr := s.checkRuns[id]
		if repoKey(cr.Owner, cr.Repo) != repoKey(owner, repo) || cr.HeadSHA != ref {
			continue
		}
		if name := q.Get("check_name"); name != "" && cr.Name != name {
			continue
		}
		if st := q.Get("status"); st != "" && cr.Status != st {
			continue
		}
		matched = append(matched, cr)
		newest[cr.Name] = max(newest[cr.Name], cr.ID)
	}
	if q.Get("filter") != "all" {
		matched = slices.DeleteFunc(matched, func(cr *CheckRun) bool { return newest[cr.Name] != cr.ID })
	}
	// GitHub lists the newest first.
	sort.Slice(matched, func(i, j int) bool { return matched[i].ID > matched[j].ID })
	pg := s.pageOf(req, len(matched))
	list := make([]map[string]any, 0, pg.end-pg.start)
	for _, cr := range matched[pg.start:pg.end] {
		list = append(list, s.checkRunJSON(cr))
	}
	return pg.response(map[string]any{"total_count": len(matched), "check_runs": list})
}

// page is the part of a list one request asks for.
type page struct {
	start, end int    // of the list
	next       string // the Link header naming the next page; empty on the last
}

// pageOf reads per_page (default 30, at most 100) and page (default 1) as
// GitHub does, for a list of total items.
func (s *Server) pageOf(req *request, total int) page {
	q := req.URL.Query()
	perPage, n := 30, 1
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		n = v
	}
	pg := page{start: min((n-1)*perPage, total)}
	pg.end = min(pg.start+perPage, total)
	if pg.end < total {
		next := *req.URL
		v := next.Query()
		v.Set("page", strconv.Itoa(n+1))
		next.RawQuery = v.Encode()
		pg.next = fmt.Sprintf(`<%s%s>; rel="next"`, s.srv.URL, next.RequestURI())
	}
	return pg
}

// response is a 200 with body and, when there is a next page, its Link.
func (pg page) response(body any) response {
	resp := response{status: http.StatusOK, header: http.Header{}, body: body}
	if pg.next != "" {
		resp.header.Set("Link", pg.next)
	}
	return resp
}

// checkRunJSON renders cr as GitHub does. s.mu must be held.
func (s *Server) checkRunJSON(cr *CheckRun) map[string]any {
	api := fmt.Sprintf("%srepos/%s/%s/check-runs/%d", s.URL(), url.PathEscape(cr.Owner), url.PathEscape(cr.Repo), cr.ID)
	var title, summary, text any
	if cr.Output.Title != "" {
		title = cr.Output.Title
	}
	if cr.Output.Summary != "" {
		summary = cr.Output.Summary
	}
	if cr.Output.Text != "" {
		text = cr.Output.Text
	}
	return map[string]any{
		"id":           cr.ID,
		"node_id":      nodeID("CheckRun", cr.ID),
		"head_sha":     cr.HeadSHA,
		"name":         cr.Name,
		"url":          api,
		"html_url":     fmt.Sprintf("https://github.com/%s/%s/runs/%d", cr.Owner, cr.Repo, cr.ID),
		"details_url":  orNull(cr.DetailsURL),
		"external_id":  orNull(cr.ExternalID),
		"status":       cr.Status,
		"conclusion":   orNull(cr.Conclusion),
		"started_at":   timeOrNull(cr.StartedAt),
		"completed_at": timeOrNull(cr.CompletedAt),
		"output": map[string]any{
			"title": title, "summary": summary, "text": text,
			"annotations_count": len(cr.Output.Annotations),
			"annotations_url":   api + "/annotations",
		},
		"check_suite":   map[string]any{"id": 5000000 + cr.ID},
		"app":           s.appJSON(),
		"pull_requests": []any{},
	}
}

// appJSON is the GitHub App object the stand-in's check runs carry: app id
// is the lowest registered with SetAppKey (1 when none is).
func (s *Server) appJSON() map[string]any {
	var appID int64 = 1
	first := true
	for id := range s.appKeys {
		if first || id < appID {
			appID, first = id, false
		}
	}
	created := "2024-01-01T00:00:00Z"
	return map[string]any{
		"id": appID, "slug": "stagehand", "node_id": nodeID("Integration", appID),
		"owner":        s.simpleUser("stagehand-dev", 4200, "Organization"),
		"name":         "Stagehand",
		"description":  "Deploy pipelines",
		"external_url": "https://stagehand.example.com",
		"html_url":     "https://github.com/apps/stagehand",
		"created_at":   created, "updated_at": created,
		"permissions": appPermissions,
		"events":      []string{"check_run", "check_suite", "issue_comment", "pull_request", "push"},
	}
}

func orNull(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func timeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func nodeID(kind string, id int64) string {
	return base64URL(fmt.Sprintf("%s%d", kind, id))
}

// refuse answers 422 the way GitHub refuses a request it understood but
// will not do, and records it: Stagehand never sends such requests.
func (s *Server) refuse(req *request, message string) response {
	s.addError(fmt.Errorf("GitHub would refuse %s %s: %s", req.Method, req.URL.Path, message))
	resp := errorResponse(http.StatusUnprocessableEntity, message, req.op.docURL)
	resp.unchecked = true // the 422 bodies GitHub documents need fields we do not model
	return resp
}
