package githubtest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Endpoints a person's token calls: who they are, which repositories of an
// installation they can see, and a repository with their permissions on
// it. Repositories are private in the stand-in: a user sees one when
// SetPermission gave them a role other than none.

func (s *Server) getAuthenticatedUser(req *request) response {
	tok, resp := s.userAuth(req.Request)
	if resp != nil {
		return *resp
	}
	id := userID(tok.login)
	u := s.simpleUser(tok.login, id, "User")
	for k, v := range map[string]any{
		"user_view_type": "private", "name": tok.login, "company": nil, "blog": "", "location": nil,
		"email": nil, "notification_email": nil, "hireable": nil, "bio": nil, "twitter_username": nil,
		"public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
		"created_at": "2011-01-25T18:44:36Z", "updated_at": "2011-01-25T18:44:36Z",
		"private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0,
		"collaborators": 0, "two_factor_authentication": true,
		"plan": map[string]any{"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
	} {
		u[k] = v
	}
	return response{status: http.StatusOK, body: u}
}

// role is login's role on rp ("" when none that reads), under the lock.
func (s *Server) roleLocked(rp *repository, login string) string {
	role := s.permissions[repoKey(rp.owner, rp.name)+"\x00"+strings.ToLower(login)]
	if !slices.Contains(readRoles, role) {
		return ""
	}
	return role
}

// sees reports whether a user's token sees rp, and with which role.
func (s *Server) seesLocked(tok *userToken, rp *repository) (string, bool) {
	role := s.roleLocked(rp, tok.login)
	if role == "" || (tok.repos != nil && !tok.repos[repoKey(rp.owner, rp.name)]) {
		return "", false
	}
	return role, true
}

// msgNotAppToken is GitHub's answer to a token that is not a GitHub App's
// user access token on the user's installation endpoints.
const msgNotAppToken = "You must authenticate with an access token authorized to a GitHub App in order to list installations"

// listUserInstallationRepos lists the repositories of an installation the
// user can see, with their permissions, ordered by id, a page at a time
// (per_page up to 100, a Link header to the next and last pages). An
// installation the user sees nothing of is 404, as on GitHub.
func (s *Server) listUserInstallationRepos(req *request) response {
	tok, resp := s.userAuth(req.Request)
	if resp != nil {
		return *resp
	}
	if tok.clientID == "" {
		return req.anywhere(errorResponse(http.StatusForbidden, msgNotAppToken, req.op.docURL))
	}
	instID, err := strconv.ParseInt(req.params["installation_id"], 10, 64)
	if err != nil {
		return req.notFound()
	}
	type seen struct {
		rp   *repository
		role string
	}
	var list []seen
	s.mu.Lock()
	for _, rp := range s.repos {
		if rp.installationID != instID {
			continue
		}
		if role, ok := s.seesLocked(tok, rp); ok {
			list = append(list, seen{rp, role})
		}
	}
	s.mu.Unlock()
	if len(list) == 0 {
		return req.notFound()
	}
	slices.SortFunc(list, func(a, b seen) int { return int(a.rp.id - b.rp.id) })
	q := req.URL.Query()
	perPage, page := 30, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 100)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	last := (len(list) + perPage - 1) / perPage
	repos := []any{}
	for i := (page - 1) * perPage; i < len(list) && i < page*perPage; i++ {
		repos = append(repos, s.repoJSON(list[i].rp, list[i].role))
	}
	h := http.Header{}
	if page < last {
		link := func(p int, rel string) string {
			v := url.Values{"per_page": {strconv.Itoa(perPage)}, "page": {strconv.Itoa(p)}}
			return fmt.Sprintf("<%suser/installations/%d/repositories?%s>; rel=%q", s.URL(), instID, v.Encode(), rel)
		}
		h.Set("Link", link(page+1, "next")+", "+link(last, "last"))
	}
	return response{status: http.StatusOK, header: h, body: map[string]any{
		"total_count": len(list), "repositories": repos,
	}}
}

// getRepo answers a repository to a user's token that sees it (with the
// user's permissions) or to an installation token covering it; 404
// otherwise, as GitHub hides private repositories.
func (s *Server) getRepo(req *request) response {
	owner, name := req.params["owner"], req.params["repo"]
	rp := s.repo(repoKey(owner, name))
	if _, value := credentials(req.Request); strings.HasPrefix(value, "ghs_") {
		if _, resp := s.installationAuth(req, owner, name, metadataRead); resp != nil {
			return *resp
		}
		return response{status: http.StatusOK, body: s.repoJSON(rp, "")}
	}
	tok, resp := s.userAuth(req.Request)
	if resp != nil {
		return *resp
	}
	if rp == nil {
		return req.notFound()
	}
	s.mu.Lock()
	role, ok := s.seesLocked(tok, rp)
	s.mu.Unlock()
	if !ok {
		return req.notFound()
	}
	return response{status: http.StatusOK, body: s.repoJSON(rp, role)}
}

// repoJSON is rp as GitHub's "full-repository" (a superset of
// "repository"), with the permissions of role unless role is "".
func (s *Server) repoJSON(rp *repository, role string) map[string]any {
	full := rp.owner + "/" + rp.name
	api := s.URL() + "repos/" + url.PathEscape(rp.owner) + "/" + url.PathEscape(rp.name)
	html := "https://github.com/" + full
	const at = "2011-01-26T19:01:12Z"
	m := map[string]any{
		"id": rp.id, "node_id": fmt.Sprintf("R_%d", rp.id), "name": rp.name, "full_name": full,
		"owner":   s.simpleUser(rp.owner, userID(rp.owner), "Organization"),
		"private": true, "visibility": "private", "html_url": html, "description": nil, "fork": false, "url": api,
		"homepage": nil, "language": nil, "license": nil, "mirror_url": nil, "default_branch": rp.defaultBranch,
		"clone_url": html + ".git", "git_url": "git://github.com/" + full + ".git", "ssh_url": "git@github.com:" + full + ".git",
		"svn_url": html, "archived": false, "disabled": false, "is_template": false, "topics": []string{},
		"has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false, "has_downloads": true, "has_discussions": false,
		"forks": 0, "forks_count": 0, "open_issues": 0, "open_issues_count": 0, "size": 0,
		"stargazers_count": 0, "watchers": 0, "watchers_count": 0, "network_count": 0, "subscribers_count": 0,
		"pushed_at": at, "created_at": at, "updated_at": at,
	}
	for name, path := range map[string]string{
		"archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}", "blobs_url": "/git/blobs{/sha}",
		"branches_url": "/branches{/branch}", "collaborators_url": "/collaborators{/collaborator}",
		"comments_url": "/comments{/number}", "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
		"contents_url": "/contents/{+path}", "contributors_url": "/contributors", "deployments_url": "/deployments",
		"downloads_url": "/downloads", "events_url": "/events", "forks_url": "/forks",
		"git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}",
		"hooks_url": "/hooks", "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
		"issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
		"languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
		"notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
		"releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
		"subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
		"teams_url": "/teams", "trees_url": "/git/trees{/sha}",
	} {
		m[name] = api + path
	}
	if role != "" {
		m["permissions"] = repoPermissions(role)
	}
	return m
}
