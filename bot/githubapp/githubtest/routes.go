package githubtest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// handler answers one OpenAPI operation.
type handler func(s *Server, req *request) response

// routes maps an operation of openapi-subset.json ("METHOD /template") to its
// handler. Request bodies are validated against the operation before the
// handler runs and responses after it; to support another endpoint, add it
// here (TestRoutesAreInTheSpec checks the key exists in the document).
// Endpoints outside the document go in outsideSubsetRoutes (access.go).
var routes = map[string]handler{
	"POST /app/installations/{installation_id}/access_tokens": (*Server).createAccessToken,
	"GET /repos/{owner}/{repo}/installation":                  (*Server).getRepoInstallation,
	"GET /repos/{owner}/{repo}/contents/{path}":               (*Server).getContents,
	"GET /rate_limit": (*Server).getRateLimit,

	// The App's webhook deliveries, with the App JWT (hooks.go).
	"GET /app/hook/deliveries":                         (*Server).listHookDeliveries,
	"POST /app/hook/deliveries/{delivery_id}/attempts": (*Server).redeliverHookDelivery,

	"POST /repos/{owner}/{repo}/check-runs":                             (*Server).createCheckRun,
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}":             (*Server).updateCheckRun,
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs":                (*Server).listCheckRunsForRef,
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments":         (*Server).createComment,
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}":          (*Server).editComment,
	"POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions": (*Server).createCommentReaction,
	"GET /repos/{owner}/{repo}/deployments":                             (*Server).listDeployments,
	"POST /repos/{owner}/{repo}/deployments":                            (*Server).createDeployment,
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses":   (*Server).createDeploymentStatus,
	"GET /repos/{owner}/{repo}/collaborators/{username}/permission":     (*Server).getCollaboratorPermission,
	"GET /orgs/{org}/teams/{team_slug}/memberships/{username}":          (*Server).getTeamMembership,

	// With a user's token (users.go).
	"GET /user": (*Server).getAuthenticatedUser,
	"GET /user/installations/{installation_id}/repositories": (*Server).listUserInstallationRepos,
	"GET /repos/{owner}/{repo}":                              (*Server).getRepo,

	// The App manifest flow's conversion, unauthenticated (manifest.go).
	"POST /app-manifests/{code}/conversions": (*Server).convertManifest,
}

type installation struct {
	id          int64
	account     string
	accountID   int64
	created     time.Time
	permissions map[string]string // what the installation granted the App
}

func (s *Server) newInstallation(id int64, account string) *installation {
	s.nextID++
	return &installation{id: id, account: account, accountID: s.nextID, created: s.now().UTC().Truncate(time.Second),
		permissions: maps.Clone(appPermissions)}
}

type repository struct {
	id             int64
	owner, name    string
	installationID int64
	defaultBranch  string
	files          map[string]map[string][]byte // ref -> path -> content
}

func repoKey(owner, repo string) string { return strings.ToLower(owner + "/" + repo) }

// AddInstallation installs the App on account (a user or organisation
// login), granting it every permission the App asks for (appPermissions).
func (s *Server) AddInstallation(id int64, account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[id] = s.newInstallation(id, account)
}

// SetInstallationPermissions replaces what installation id granted the App,
// e.g. {"checks": "write", "metadata": "read"}: tokens asking for more are
// refused with GitHub's 422, and tokens asking for nothing in particular get
// exactly these. Tokens issued before keep theirs.
func (s *Server) SetInstallationPermissions(id int64, permissions map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.installations[id]
	if inst == nil {
		panic(fmt.Sprintf("githubtest: SetInstallationPermissions on installation %d before AddInstallation", id))
	}
	inst.permissions = maps.Clone(permissions)
}

// AddRepo adds owner/repo (default branch "main") to an installation, which
// is created with account owner if it does not exist yet.
func (s *Server) AddRepo(installationID int64, owner, repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.installations[installationID] == nil {
		s.installations[installationID] = s.newInstallation(installationID, owner)
	}
	key := repoKey(owner, repo)
	if rp := s.repos[key]; rp != nil {
		rp.installationID = installationID
		return
	}
	s.nextID++
	s.repos[key] = &repository{id: s.nextID, owner: owner, name: repo, installationID: installationID,
		defaultBranch: "main", files: map[string]map[string][]byte{}}
}

// RepoID returns the id GitHub gave owner/repo (webhook payloads carry it
// as repository.id; token requests may name it in repository_ids). The
// repository must have been added with AddRepo.
func (s *Server) RepoID(owner, repo string) int64 {
	rp := s.repo(repoKey(owner, repo))
	if rp == nil {
		panic(fmt.Sprintf("githubtest: RepoID of %s/%s before AddRepo", owner, repo))
	}
	return rp.id
}

// SetRepoID gives owner/repo the id id, e.g. the repository.id of the
// webhook payloads a test sends, so that token requests naming it in
// repository_ids find it. The repository must have been added with AddRepo
// and id must name no other repository.
func (s *Server) SetRepoID(owner, repo string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[repoKey(owner, repo)]
	if rp == nil {
		panic(fmt.Sprintf("githubtest: SetRepoID on %s/%s before AddRepo", owner, repo))
	}
	for _, other := range s.repos {
		if other != rp && other.id == id {
			panic(fmt.Sprintf("githubtest: SetRepoID(%s/%s, %d): %s/%s has that id", owner, repo, id, other.owner, other.name))
		}
	}
	rp.id = id
}

// SetFile makes the contents API serve content at path for ref (a commit sha
// or a branch name; "main" is what requests without ref get). The repository
// must have been added with AddRepo.
func (s *Server) SetFile(owner, repo, ref, filePath string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[repoKey(owner, repo)]
	if rp == nil {
		panic(fmt.Sprintf("githubtest: SetFile on %s/%s before AddRepo", owner, repo))
	}
	if rp.files[ref] == nil {
		rp.files[ref] = map[string][]byte{}
	}
	rp.files[ref][strings.Trim(filePath, "/")] = append([]byte(nil), content...)
}

// TokenRequest is an installation-token request the stand-in answered, as
// the bot sent it. Empty fields were not sent: no Permissions asks for all
// the installation granted, no Repositories or RepositoryIDs for every
// repository of the installation.
type TokenRequest struct {
	Installation  int64
	Permissions   map[string]string
	Repositories  []string
	RepositoryIDs []int64
	Status        int // 201 when a token was issued
}

// TokenRequests returns the installation-token requests answered so far
// (those that passed the App's authentication), in order.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenRequest, len(s.tokenRequests))
	for i, r := range s.tokenRequests {
		r.Permissions = maps.Clone(r.Permissions)
		r.Repositories = slices.Clone(r.Repositories)
		r.RepositoryIDs = slices.Clone(r.RepositoryIDs)
		out[i] = r
	}
	return out
}

func (s *Server) createAccessToken(req *request) response {
	if _, resp := s.appAuth(req.Request); resp != nil {
		return *resp
	}
	id, _ := strconv.ParseInt(req.params["installation_id"], 10, 64)
	var body struct {
		Repositories  []string          `json:"repositories"`
		RepositoryIDs []int64           `json:"repository_ids"`
		Permissions   map[string]string `json:"permissions"`
	}
	if len(req.body) > 0 {
		_ = json.Unmarshal(req.body, &body) // already schema-checked
	}
	asked := TokenRequest{Installation: id, Permissions: body.Permissions,
		Repositories: body.Repositories, RepositoryIDs: body.RepositoryIDs}
	resp := s.issueToken(req, asked)
	asked.Status = resp.status
	s.mu.Lock()
	s.tokenRequests = append(s.tokenRequests, asked)
	s.mu.Unlock()
	return resp
}

// GitHub's 422 messages for token requests.
const (
	msgRepositoryNotAccessible = "There is at least one repository that does not exist or is not accessible to the parent installation."
	msgPermissionsNotGranted   = "The permissions requested are not granted to this installation."
)

// issueToken makes the token asked for: narrowed to the repositories named
// (by name, owned by the installation's account, or by id) and to the
// permissions named, which must be among those the installation granted.
// Like GitHub, it adds metadata: read to every token.
func (s *Server) issueToken(req *request, asked TokenRequest) response {
	s.mu.Lock()
	inst := s.installations[asked.Installation]
	var granted map[string]string
	if inst != nil {
		granted = maps.Clone(inst.permissions)
	}
	s.mu.Unlock()
	if inst == nil {
		return req.notFound()
	}
	var scope map[string]bool
	if len(asked.Repositories)+len(asked.RepositoryIDs) > 0 {
		scope = map[string]bool{}
		var found []*repository
		for _, name := range asked.Repositories {
			found = append(found, s.repo(repoKey(inst.account, name)))
		}
		for _, rid := range asked.RepositoryIDs {
			found = append(found, s.repoByID(rid))
		}
		for _, rp := range found {
			if rp == nil || rp.installationID != inst.id {
				return errorResponse(http.StatusUnprocessableEntity, msgRepositoryNotAccessible, req.op.docURL)
			}
			scope[repoKey(rp.owner, rp.name)] = true
		}
	}
	perms := granted
	if len(asked.Permissions) > 0 {
		perms = map[string]string{}
		for name, level := range asked.Permissions {
			if !grants(granted, access{name, level}) {
				return errorResponse(http.StatusUnprocessableEntity, msgPermissionsNotGranted, req.op.docURL)
			}
			perms[name] = level
		}
	}
	if perms["metadata"] == "" {
		perms["metadata"] = "read"
	}
	value, tok := s.newToken(inst.id, scope, perms)
	selection := "all"
	if scope != nil {
		selection = "selected"
	}
	return response{status: http.StatusCreated, body: map[string]any{
		"token":                value,
		"expires_at":           tok.expires.UTC().Format(time.RFC3339),
		"permissions":          perms,
		"repository_selection": selection,
	}}
}

func (s *Server) repoByID(id int64) *repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rp := range s.repos {
		if rp.id == id {
			return rp
		}
	}
	return nil
}

func (s *Server) repo(key string) *repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[key]
}

// appPermissions are the permissions Stagehand's App asks for (README,
// "Install it as a GitHub App"), "members" being the organization one.
var appPermissions = map[string]string{
	"checks": "write", "contents": "read", "deployments": "write",
	"issues": "write", "metadata": "read", "pull_requests": "write",
	"members": "read",
}

func (s *Server) getRepoInstallation(req *request) response {
	appID, resp := s.appAuth(req.Request)
	if resp != nil {
		return *resp
	}
	rp := s.repo(repoKey(req.params["owner"], req.params["repo"]))
	if rp == nil {
		return req.notFound()
	}
	s.mu.Lock()
	inst := *s.installations[rp.installationID]
	s.mu.Unlock()
	base := s.URL()
	created := inst.created.Format(time.RFC3339)
	return response{status: http.StatusOK, body: map[string]any{
		"id":                   inst.id,
		"account":              s.simpleUser(inst.account, inst.accountID, "Organization"),
		"repository_selection": "selected",
		"access_tokens_url":    fmt.Sprintf("%sapp/installations/%d/access_tokens", base, inst.id),
		"repositories_url":     base + "installation/repositories",
		"html_url":             fmt.Sprintf("https://github.com/organizations/%s/settings/installations/%d", url.PathEscape(inst.account), inst.id),
		"app_id":               appID,
		"app_slug":             "stagehand",
		"target_id":            inst.accountID,
		"target_type":          "Organization",
		"permissions":          appPermissions,
		"events":               []string{"check_run", "check_suite", "issue_comment", "pull_request", "push"},
		"created_at":           created,
		"updated_at":           created,
		"single_file_name":     nil,
		"suspended_by":         nil,
		"suspended_at":         nil,
	}}
}

func (s *Server) simpleUser(login string, id int64, typ string) map[string]any {
	api := s.URL() + "users/" + url.PathEscape(login)
	return map[string]any{
		"login": login, "id": id, "node_id": base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("04:%s%d", typ, id))),
		"avatar_url":          fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id),
		"gravatar_id":         "",
		"url":                 api,
		"html_url":            "https://github.com/" + url.PathEscape(login),
		"followers_url":       api + "/followers",
		"following_url":       api + "/following{/other_user}",
		"gists_url":           api + "/gists{/gist_id}",
		"starred_url":         api + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/subscriptions",
		"organizations_url":   api + "/orgs",
		"repos_url":           api + "/repos",
		"events_url":          api + "/events{/privacy}",
		"received_events_url": api + "/received_events",
		"type":                typ,
		"site_admin":          false,
	}
}

func (s *Server) getContents(req *request) response {
	owner, name, filePath := req.params["owner"], req.params["repo"], strings.Trim(req.params["path"], "/")
	if _, resp := s.installationAuth(req, owner, name, contentsRead); resp != nil {
		return *resp
	}
	s.mu.Lock()
	rp := s.repos[repoKey(owner, name)]
	ref := req.URL.Query().Get("ref")
	if ref == "" {
		ref = rp.defaultBranch
	}
	files, known := rp.files[ref]
	content, isFile := files[filePath]
	var children []string
	childFiles := map[string][]byte{} // copied under the lock: SetFile may run concurrently
	if !isFile {
		seen := map[string]bool{}
		for p, data := range files {
			if rest, ok := strings.CutPrefix(p, filePath+"/"); ok {
				child, deeper, _ := strings.Cut(rest, "/")
				if deeper == "" {
					childFiles[child] = data
				}
				if !seen[child] {
					seen[child] = true
					children = append(children, child)
				}
			}
		}
	}
	s.mu.Unlock()
	switch {
	case !known:
		return errorResponse(http.StatusNotFound, "No commit found for the ref "+ref, req.op.docURL)
	case isFile:
		entry := s.contentEntry(rp, ref, filePath, content, true)
		entry["content"] = wrapBase64(content)
		entry["encoding"] = "base64"
		return response{status: http.StatusOK, body: entry}
	case len(children) > 0:
		sort.Strings(children)
		list := make([]map[string]any, 0, len(children))
		for _, c := range children {
			data, ok := childFiles[c]
			list = append(list, s.contentEntry(rp, ref, path.Join(filePath, c), data, ok))
		}
		return response{status: http.StatusOK, body: list}
	default:
		return req.notFound()
	}
}

// contentEntry is one content item as GitHub describes it, without content.
func (s *Server) contentEntry(rp *repository, ref, p string, data []byte, isFile bool) map[string]any {
	escaped := (&url.URL{Path: p}).EscapedPath()
	repoAPI := fmt.Sprintf("%srepos/%s/%s", s.URL(), url.PathEscape(rp.owner), url.PathEscape(rp.name))
	typ, kind, sha := "file", "blob", gitBlobSHA(data)
	var download any = fmt.Sprintf("https://raw.githubusercontent.com/%s/%s/%s/%s", rp.owner, rp.name, url.PathEscape(ref), escaped)
	if !isFile {
		typ, kind, sha, download = "dir", "tree", gitBlobSHA([]byte("tree "+p)), nil
	}
	self := fmt.Sprintf("%s/contents/%s?ref=%s", repoAPI, escaped, url.QueryEscape(ref))
	git := fmt.Sprintf("%s/git/%ss/%s", repoAPI, kind, sha)
	html := fmt.Sprintf("https://github.com/%s/%s/%s/%s/%s", rp.owner, rp.name, kind, url.PathEscape(ref), escaped)
	return map[string]any{
		"type": typ, "size": len(data), "name": path.Base(p), "path": p, "sha": sha,
		"url": self, "git_url": git, "html_url": html, "download_url": download,
		"_links": map[string]any{"self": self, "git": git, "html": html},
	}
}

// gitBlobSHA is the object id git gives content stored as a blob.
func gitBlobSHA(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// wrapBase64 encodes like GitHub does: base64 with a newline every 60 characters.
func wrapBase64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteByte('\n')
		enc = enc[60:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.String()
}

func (s *Server) getRateLimit(req *request) response {
	if req.Header.Get("Authorization") != "" {
		if _, resp := s.tokenAuth(req.Request); resp != nil {
			return *resp
		}
	}
	reset := s.now().Add(time.Hour).Unix()
	bucket := func(limit int) map[string]any {
		return map[string]any{"limit": limit, "remaining": limit, "reset": reset, "used": 0}
	}
	return response{status: http.StatusOK, body: map[string]any{
		"resources": map[string]any{
			"core": bucket(5000), "search": bucket(30), "graphql": bucket(5000),
			"integration_manifest": bucket(5000), "code_search": bucket(10),
		},
		"rate": bucket(5000),
	}}
}
