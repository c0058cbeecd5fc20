package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Deployment is the stand-in's state of one GitHub deployment.
type Deployment struct {
	ID          int64
	Owner, Repo string
	Ref         string
	SHA         string // ref itself when it is a full sha; otherwise a made-up one
	Task        string
	Environment string // changed by a status that names another environment, as on GitHub
	Description string
	// Payload is the payload as sent (a JSON object or string); nil when none was.
	Payload json.RawMessage
	// AutoMerge is auto_merge as sent; nil when absent (GitHub then defaults to true).
	AutoMerge *bool
	// RequiredContexts is required_contexts as sent; nil when absent (GitHub
	// then requires every status context to be successful).
	RequiredContexts      []string
	TransientEnvironment  bool
	ProductionEnvironment bool
	Body                  json.RawMessage // the request body that created it
	Created               time.Time
	Statuses              []DeploymentStatus // in order of creation
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	Environment    string
	EnvironmentURL string
	LogURL         string // target_url when only that was sent
	// ByGitHub marks an "inactive" status GitHub added itself (auto_inactive)
	// when a newer deployment to the same environment succeeded.
	ByGitHub bool
	Body     json.RawMessage // the request body; nil when ByGitHub
	Created  time.Time
}

// maxDeploymentStatusDescription is GitHub's limit on a status description.
const maxDeploymentStatusDescription = 140

// Deployments returns the deployments of owner/repo in order of creation,
// each with its statuses.
func (s *Server) Deployments(owner, repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, id := range s.deploymentOrder {
		d := s.deployments[id]
		if repoKey(d.Owner, d.Repo) == repoKey(owner, repo) {
			dd := *d
			dd.RequiredContexts = slices.Clone(d.RequiredContexts)
			dd.Statuses = slices.Clone(d.Statuses)
			out = append(out, dd)
		}
	}
	return out
}

func (s *Server) createDeployment(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, deploymentsWrite); resp != nil {
		return *resp
	}
	var b struct {
		Ref                   string          `json:"ref"`
		Task                  *string         `json:"task"`
		AutoMerge             *bool           `json:"auto_merge"`
		RequiredContexts      *[]string       `json:"required_contexts"`
		Payload               json.RawMessage `json:"payload"`
		Environment           *string         `json:"environment"`
		Description           *string         `json:"description"`
		TransientEnvironment  *bool           `json:"transient_environment"`
		ProductionEnvironment *bool           `json:"production_environment"`
	}
	if err := json.Unmarshal(req.body, &b); err != nil {
		return s.refuse(req, "Problems parsing JSON")
	}
	// Stagehand must always send both: without them GitHub merges the
	// default branch into the ref or refuses until every status is green.
	if b.AutoMerge == nil || *b.AutoMerge {
		s.addError(fmt.Errorf("bot created a deployment of %s on %s/%s without \"auto_merge\": false (GitHub defaults to true and may merge the default branch into the ref)", b.Ref, owner, repo))
	}
	if b.RequiredContexts == nil || len(*b.RequiredContexts) > 0 {
		s.addError(fmt.Errorf("bot created a deployment of %s on %s/%s without \"required_contexts\": [] (GitHub then refuses it until the listed or all status contexts succeed)", b.Ref, owner, repo))
	}
	d := &Deployment{Ref: b.Ref, Task: "deploy", Environment: "production", Body: slices.Clone(req.body), AutoMerge: b.AutoMerge}
	if b.Task != nil {
		d.Task = *b.Task
	}
	if b.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *b.RequiredContexts...)
	}
	if len(b.Payload) > 0 && string(b.Payload) != "null" {
		d.Payload = slices.Clone(b.Payload)
	}
	if b.Environment != nil {
		d.Environment = *b.Environment
	}
	if b.Description != nil {
		d.Description = *b.Description
	}
	if b.TransientEnvironment != nil {
		d.TransientEnvironment = *b.TransientEnvironment
	}
	d.ProductionEnvironment = d.Environment == "production"
	if b.ProductionEnvironment != nil {
		d.ProductionEnvironment = *b.ProductionEnvironment
	}
	d.SHA = strings.ToLower(d.Ref)
	if len(d.SHA) != 40 || strings.Trim(d.SHA, "0123456789abcdef") != "" {
		sum := sha1.Sum([]byte("ref " + d.Ref))
		d.SHA = hex.EncodeToString(sum[:])
	}
	rp := s.repo(repoKey(owner, repo))
	d.Owner, d.Repo = rp.owner, rp.name
	d.Created = s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	s.nextID++
	d.ID = s.nextID
	s.deployments[d.ID] = d
	s.deploymentOrder = append(s.deploymentOrder, d.ID)
	body := s.deploymentJSON(d)
	s.mu.Unlock()
	return response{status: http.StatusCreated, body: body}
}

// listDeployments lists a repository's deployments newest first, as
// GitHub does, filtered by sha, ref, task and environment, a page at a
// time (per_page, page; a Link header names the next page).
func (s *Server) listDeployments(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, deploymentsRead); resp != nil {
		return *resp
	}
	q := req.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*Deployment
	for i := len(s.deploymentOrder) - 1; i >= 0; i-- {
		d := s.deployments[s.deploymentOrder[i]]
		switch {
		case repoKey(d.Owner, d.Repo) != repoKey(owner, repo),
			q.Get("sha") != "" && d.SHA != q.Get("sha"),
			q.Get("ref") != "" && d.Ref != q.Get("ref"),
			q.Get("task") != "" && d.Task != q.Get("task"),
			q.Get("environment") != "" && d.Environment != q.Get("environment"):
			continue
		}
		matched = append(matched, d)
	}
	pg := s.pageOf(req, len(matched))
	list := make([]map[string]any, 0, pg.end-pg.start)
	for _, d := range matched[pg.start:pg.end] {
		list = append(list, s.deploymentJSON(d))
	}
	return pg.response(list)
}

func (s *Server) createDeploymentStatus(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, deploymentsWrite); resp != nil {
		return *resp
	}
	id, _ := strconv.ParseInt(req.params["deployment_id"], 10, 64)
	var b struct {
		State          string  `json:"state"`
		TargetURL      *string `json:"target_url"`
		LogURL         *string `json:"log_url"`
		Description    *string `json:"description"`
		Environment    *string `json:"environment"`
		EnvironmentURL *string `json:"environment_url"`
		AutoInactive   *bool   `json:"auto_inactive"`
	}
	if err := json.Unmarshal(req.body, &b); err != nil {
		return s.refuse(req, "Problems parsing JSON")
	}
	if b.Description != nil && utf8.RuneCountInString(*b.Description) > maxDeploymentStatusDescription {
		return s.refuse(req, fmt.Sprintf("Validation Failed: description is too long (maximum is %d characters)", maxDeploymentStatusDescription))
	}
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deployments[id]
	if d == nil || repoKey(d.Owner, d.Repo) != repoKey(owner, repo) {
		return req.notFound()
	}
	st := DeploymentStatus{State: b.State, Body: slices.Clone(req.body), Created: now}
	if b.Description != nil {
		st.Description = *b.Description
	}
	if b.TargetURL != nil {
		st.LogURL = *b.TargetURL
	}
	if b.LogURL != nil {
		st.LogURL = *b.LogURL
	}
	if b.EnvironmentURL != nil {
		st.EnvironmentURL = *b.EnvironmentURL
	}
	if b.Environment != nil && *b.Environment != "" {
		d.Environment = *b.Environment
	}
	st.Environment = d.Environment
	s.nextID++
	st.ID = s.nextID
	d.Statuses = append(d.Statuses, st)
	if st.State == "success" && (b.AutoInactive == nil || *b.AutoInactive) {
		s.autoInactivate(d, now)
	}
	resp := response{status: http.StatusCreated, header: http.Header{}, body: s.deploymentStatusJSON(d, st)}
	resp.header.Set("Location", resp.body.(map[string]any)["url"].(string))
	if st.LogURL == "" {
		// GitHub answers "target_url": "" when no URL was sent, although its
		// description says format uri: skip the check rather than lie.
		resp.unchecked = true
	}
	return resp
}

// autoInactivate adds GitHub's "inactive" status to the earlier non-transient,
// non-production deployments of d's repository and environment whose latest
// status is success. s.mu must be held.
func (s *Server) autoInactivate(d *Deployment, now time.Time) {
	for _, id := range s.deploymentOrder {
		o := s.deployments[id]
		if o.ID >= d.ID || repoKey(o.Owner, o.Repo) != repoKey(d.Owner, d.Repo) || o.Environment != d.Environment ||
			o.TransientEnvironment || o.ProductionEnvironment || len(o.Statuses) == 0 || o.Statuses[len(o.Statuses)-1].State != "success" {
			continue
		}
		s.nextID++
		o.Statuses = append(o.Statuses, DeploymentStatus{ID: s.nextID, State: "inactive", Environment: o.Environment, ByGitHub: true, Created: now})
	}
}

// deploymentJSON renders d as GitHub does. s.mu must be held.
func (s *Server) deploymentJSON(d *Deployment) map[string]any {
	repoAPI := fmt.Sprintf("%srepos/%s/%s", s.URL(), url.PathEscape(d.Owner), url.PathEscape(d.Repo))
	self := fmt.Sprintf("%s/deployments/%d", repoAPI, d.ID)
	var payload any = map[string]any{}
	if d.Payload != nil {
		payload = d.Payload
	}
	created := d.Created.Format(time.RFC3339)
	return map[string]any{
		"url": self, "id": d.ID, "node_id": nodeID("Deployment", d.ID),
		"sha": d.SHA, "ref": d.Ref, "task": d.Task, "payload": payload,
		"original_environment": d.Environment, "environment": d.Environment,
		"description": orNull(d.Description),
		"creator":     s.botUser(),
		"created_at":  created, "updated_at": created,
		"statuses_url":           self + "/statuses",
		"repository_url":         repoAPI,
		"transient_environment":  d.TransientEnvironment,
		"production_environment": d.ProductionEnvironment,
	}
}

// deploymentStatusJSON renders st of d as GitHub does. s.mu must be held.
func (s *Server) deploymentStatusJSON(d *Deployment, st DeploymentStatus) map[string]any {
	repoAPI := fmt.Sprintf("%srepos/%s/%s", s.URL(), url.PathEscape(d.Owner), url.PathEscape(d.Repo))
	deployment := fmt.Sprintf("%s/deployments/%d", repoAPI, d.ID)
	created := st.Created.Format(time.RFC3339)
	out := map[string]any{
		"url": fmt.Sprintf("%s/statuses/%d", deployment, st.ID), "id": st.ID, "node_id": nodeID("DeploymentStatus", st.ID),
		"state": st.State, "creator": s.botUser(), "description": st.Description,
		"environment": st.Environment, "target_url": st.LogURL,
		"created_at": created, "updated_at": created,
		"deployment_url": deployment, "repository_url": repoAPI,
	}
	// Optional, format uri: left out when empty.
	if st.LogURL != "" {
		out["log_url"] = st.LogURL
	}
	if st.EnvironmentURL != "" {
		out["environment_url"] = st.EnvironmentURL
	}
	return out
}
