package githubtest

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// GitRequest is one request to the git endpoint (ServeGit).
type GitRequest struct {
	Path   string // e.g. "/acme/app.git/info/refs"
	Token  string // the installation token it carried; "" for none
	Status int    // what the stand-in answered, 200 once git http-backend took over
}

// ServeGit serves the bare repositories under root (root/OWNER/REPO.git)
// over git's smart HTTP protocol, fetches only, as github.com serves them to
// an App, and returns the base URL to clone from (--github-git-url; with a
// trailing slash). The repositories must also be added with AddRepo. Like
// GitHub it takes an installation token as the password of HTTP Basic
// authentication (user "x-access-token") and serves a repository only to a
// token that covers it and may read its contents: no token or an unknown
// one gets 401, a token that does not see the repository 404, one without
// contents: read 403. It runs git http-backend, so git must be installed;
// it stops when the Server closes.
func (s *Server) ServeGit(root string) (string, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("githubtest: serving git: %w", err)
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Dir:  root,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull,
			// GitHub serves any reachable commit by its sha.
			"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=uploadpack.allowReachableSHA1InWant", "GIT_CONFIG_VALUE_0=true"},
		InheritEnv: []string{"PATH"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, tok, _ := r.BasicAuth()
		status, msg := s.gitAccess(r, tok)
		s.mu.Lock()
		s.gitRequests = append(s.gitRequests, GitRequest{Path: r.URL.Path, Token: tok, Status: status})
		s.mu.Unlock()
		if status != http.StatusOK {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			}
			http.Error(w, msg, status)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	s.mu.Lock()
	s.gitServers = append(s.gitServers, srv)
	s.mu.Unlock()
	return srv.URL + "/", nil
}

// gitAccess decides a git request carrying token tok, as GitHub does.
func (s *Server) gitAccess(r *http.Request, tok string) (status int, message string) {
	owner, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	repo, _, _ := strings.Cut(rest, "/")
	repo = strings.TrimSuffix(repo, ".git")
	if r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		return http.StatusForbidden, "the stand-in serves fetches only"
	}
	t := s.liveToken(tok)
	switch {
	case t == nil:
		return http.StatusUnauthorized, "Invalid username or token. Password authentication is not supported for Git operations."
	case !s.covers(t, owner, repo):
		return http.StatusNotFound, "Repository not found."
	case !t.may([]access{contentsRead}):
		return http.StatusForbidden, fmt.Sprintf("Permission to %s/%s.git denied to %s.", owner, repo, BotLogin)
	}
	return http.StatusOK, ""
}

// GitRequests returns the requests the git endpoints answered so far, in
// order.
func (s *Server) GitRequests() []GitRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.gitRequests)
}
