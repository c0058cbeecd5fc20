package githubtest

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/url"
	"strings"
)

// legacyPermission is the "permission" GitHub reports for each role: the
// legacy base roles, maintain mapped to write and triage to read. The role
// itself is in "role_name".
var legacyPermission = map[string]string{
	"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none",
}

// SetPermission gives user the role perm (admin, maintain, write, triage,
// read or none) on owner/repo, and makes user a known GitHub user. The
// collaborator-permission endpoint answers 404 for users never named here
// (or in AddTeamMember), "none" for known users without a role on the
// repository. It panics on another perm: that is a mistake in the test.
func (s *Server) SetPermission(owner, repo, user, perm string) {
	if _, ok := legacyPermission[perm]; !ok {
		panic(fmt.Sprintf("githubtest: SetPermission(%q): want admin, maintain, write, triage, read or none", perm))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(user)] = user
	s.permissions[repoKey(owner, repo)+"\x00"+strings.ToLower(user)] = perm
}

// AddTeamMember makes user an active member of team (its slug) in org, and a
// known GitHub user.
func (s *Server) AddTeamMember(org, team, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(user)] = user
	s.teamMembers[teamKey(org, team, user)] = true
}

func teamKey(org, team, user string) string {
	return strings.ToLower(org + "\x00" + team + "\x00" + user)
}

// userID gives a known user a stable made-up id.
func userID(login string) int64 {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(login)))
	return 100000 + int64(h.Sum32()%1000000)
}

func (s *Server) getCollaboratorPermission(req *request) response {
	owner, repo, username := req.params["owner"], req.params["repo"], req.params["username"]
	if _, resp := s.installationAuth(req, owner, repo, metadataRead); resp != nil {
		return *resp
	}
	s.mu.Lock()
	login, known := s.users[strings.ToLower(username)]
	perm, ok := s.permissions[repoKey(owner, repo)+"\x00"+strings.ToLower(username)]
	s.mu.Unlock()
	if !known {
		return errorResponse(http.StatusNotFound, username+" is not a user", req.op.docURL)
	}
	if !ok {
		perm = "none"
	}
	user := s.simpleUser(login, userID(login), "User")
	user["role_name"] = perm
	return response{status: http.StatusOK, body: map[string]any{
		"permission": legacyPermission[perm],
		"role_name":  perm,
		"user":       user,
	}}
}

// outsideSubsetRoutes are endpoints the stand-in serves although
// openapi-subset.json does not describe them, so nothing checks their
// requests or responses against GitHub's schemas: keep them few, small, and
// written from GitHub's documentation. When the subset grows to include one,
// move it to routes (TestOutsideSubsetRoutesAreNotInTheSpec fails until then).
// Today they are the web flow of the App's user authorization and the
// revocation of its tokens (oauth.go), and the App manifest flow's web
// pages and GET /app (manifest.go).
var outsideSubsetRoutes = func() map[string]handler {
	m := maps.Clone(oauthRoutes)
	maps.Copy(m, manifestRoutes)
	return m
}()

// outsideSubsetOps are outsideSubsetRoutes as operations, for matching.
var outsideSubsetOps = func() []*operation {
	var ops []*operation
	for key := range outsideSubsetRoutes {
		method, template, _ := strings.Cut(key, " ")
		o := &operation{key: key, method: method, template: template, outsideSubset: true,
			segs: strings.Split(strings.TrimPrefix(template, "/"), "/"), multi: map[string]bool{},
			docURL: "https://docs.github.com/rest"}
		for _, seg := range o.segs {
			if !isParam(seg) {
				o.literals++
			}
		}
		ops = append(ops, o)
	}
	return ops
}()

func matchOutsideSubset(method, escapedPath string) (*operation, map[string]string) {
	segs := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	for _, op := range outsideSubsetOps {
		params := map[string]string{}
		if op.method == method && matchSegs(op, op.segs, segs, params) {
			return op, params
		}
	}
	return nil, nil
}

// getTeamMembership answers {"url", "role": "member", "state": "active"} for
// members added with AddTeamMember and GitHub's 404 otherwise. Only tokens of
// the installation on org itself, holding "members: read" (the App's
// "Members: read" organization permission), may look.
func (s *Server) getTeamMembership(req *request) response {
	org, team, username := req.params["org"], req.params["team_slug"], req.params["username"]
	tok, resp := s.tokenAuth(req.Request)
	if resp != nil {
		return *resp
	}
	if !tok.may([]access{membersRead}) {
		return req.forbidden([]access{membersRead})
	}
	s.mu.Lock()
	inst := s.installations[tok.installationID]
	member := s.teamMembers[teamKey(org, team, username)]
	s.mu.Unlock()
	if inst == nil || !strings.EqualFold(inst.account, org) || !member {
		// GitHub sends its usual error body, although its description
		// documents this 404 without one.
		resp := errorResponse(http.StatusNotFound, "Not Found", req.op.docURL)
		resp.unchecked = true
		return resp
	}
	return response{status: http.StatusOK, body: map[string]any{
		"url":   fmt.Sprintf("%sorgs/%s/teams/%s/memberships/%s", s.URL(), url.PathEscape(org), url.PathEscape(team), url.PathEscape(username)),
		"role":  "member",
		"state": "active",
	}}
}
