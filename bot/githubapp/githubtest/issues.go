package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// BotLogin is the login GitHub gives the App's bot user: comments, reactions
// and deployments the bot creates carry it.
const BotLogin = "stagehand[bot]"

const botUserID = 41898282

// maxCommentChars is GitHub's limit on a comment body, in characters.
const maxCommentChars = 65536

// Comment is the stand-in's state of one issue or pull-request comment.
type Comment struct {
	ID          int64
	Owner, Repo string
	Issue       int
	User        string // BotLogin for comments the bot created
	Body        string // current body
	// Bodies holds every body the comment had, the first one first.
	Bodies  []string
	Created time.Time
	Updated time.Time
}

type reaction struct {
	id      int64
	content string
	user    string
}

// AddComment makes the stand-in hold a comment written by user (as if a
// person had posted it), so the bot can react to or answer it. It returns
// the comment id, for the issue_comment webhook payload.
func (s *Server) AddComment(owner, repo string, issue int, user, body string) int64 {
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[repoKey(owner, repo)]
	if rp == nil {
		panic(fmt.Sprintf("githubtest: AddComment on %s/%s before AddRepo", owner, repo))
	}
	s.nextID++
	c := &Comment{ID: s.nextID, Owner: rp.owner, Repo: rp.name, Issue: issue, User: user, Body: body,
		Bodies: []string{body}, Created: now, Updated: now}
	s.comments[c.ID] = c
	s.commentOrder = append(s.commentOrder, c.ID)
	return c.ID
}

// Comments returns the comments on issue (or pull request) number issue of
// owner/repo in order of creation, bot's and AddComment's alike.
func (s *Server) Comments(owner, repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, id := range s.commentOrder {
		c := s.comments[id]
		if c.Issue == issue && repoKey(c.Owner, c.Repo) == repoKey(owner, repo) {
			cc := *c
			cc.Bodies = slices.Clone(c.Bodies)
			out = append(out, cc)
		}
	}
	return out
}

// Reactions returns the contents ("eyes", "+1", ...) of the reactions on a
// comment, in order. GitHub keeps one reaction per user and content, so
// reacting twice the same way shows once.
func (s *Server) Reactions(commentID int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reactions[commentID] {
		out = append(out, r.content)
	}
	return out
}

func (s *Server) createComment(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, issuesWrite, pullsWrite); resp != nil {
		return *resp
	}
	issue, err := strconv.Atoi(req.params["issue_number"])
	if err != nil || issue <= 0 {
		return req.notFound()
	}
	var b struct{ Body string }
	_ = json.Unmarshal(req.body, &b) // schema-checked
	if utf8.RuneCountInString(b.Body) > maxCommentChars {
		return s.refuse(req, fmt.Sprintf("Validation Failed: body is too long (maximum is %d characters)", maxCommentChars))
	}
	now := s.now().UTC().Truncate(time.Second)
	rp := s.repo(repoKey(owner, repo))
	s.mu.Lock()
	s.nextID++
	c := &Comment{ID: s.nextID, Owner: rp.owner, Repo: rp.name, Issue: issue, User: BotLogin, Body: b.Body,
		Bodies: []string{b.Body}, Created: now, Updated: now}
	s.comments[c.ID] = c
	s.commentOrder = append(s.commentOrder, c.ID)
	body := s.commentJSON(c)
	s.mu.Unlock()
	return response{status: http.StatusCreated, header: http.Header{"Location": {body["url"].(string)}}, body: body}
}

func (s *Server) editComment(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, issuesWrite, pullsWrite); resp != nil {
		return *resp
	}
	id, _ := strconv.ParseInt(req.params["comment_id"], 10, 64)
	var b struct{ Body string }
	_ = json.Unmarshal(req.body, &b)
	if utf8.RuneCountInString(b.Body) > maxCommentChars {
		return s.refuse(req, fmt.Sprintf("Validation Failed: body is too long (maximum is %d characters)", maxCommentChars))
	}
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.comments[id]
	if c == nil || repoKey(c.Owner, c.Repo) != repoKey(owner, repo) {
		return req.notFound()
	}
	if c.User != BotLogin {
		// An App may edit only its own comments. GitHub answers this 403 on
		// any endpoint without documenting it: not schema-checked, like 401.
		resp := errorResponse(http.StatusForbidden, msgNotAccessible, req.op.docURL)
		resp.unchecked = true
		return resp
	}
	c.Body, c.Updated = b.Body, now
	c.Bodies = append(c.Bodies, b.Body)
	return response{status: http.StatusOK, body: s.commentJSON(c)}
}

func (s *Server) createCommentReaction(req *request) response {
	owner, repo := req.params["owner"], req.params["repo"]
	if _, resp := s.installationAuth(req, owner, repo, issuesWrite, pullsWrite); resp != nil {
		return *resp
	}
	id, _ := strconv.ParseInt(req.params["comment_id"], 10, 64)
	var b struct{ Content string }
	_ = json.Unmarshal(req.body, &b)
	now := s.now().UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.comments[id]
	if c == nil || repoKey(c.Owner, c.Repo) != repoKey(owner, repo) {
		return req.notFound()
	}
	status := http.StatusCreated
	idx := slices.IndexFunc(s.reactions[id], func(r reaction) bool { return r.content == b.Content && r.user == BotLogin })
	if idx >= 0 {
		status = http.StatusOK // "you already added the reaction type to this issue comment"
	} else {
		s.nextID++
		s.reactions[id] = append(s.reactions[id], reaction{id: s.nextID, content: b.Content, user: BotLogin})
		idx = len(s.reactions[id]) - 1
	}
	r := s.reactions[id][idx]
	return response{status: status, body: map[string]any{
		"id":         r.id,
		"node_id":    nodeID("Reaction", r.id),
		"user":       s.botUser(),
		"content":    b.Content,
		"created_at": now.Format(time.RFC3339),
	}}
}

// commentJSON renders c as GitHub does. s.mu must be held.
func (s *Server) commentJSON(c *Comment) map[string]any {
	repoAPI := fmt.Sprintf("%srepos/%s/%s", s.URL(), url.PathEscape(c.Owner), url.PathEscape(c.Repo))
	user := s.botUser()
	if c.User != BotLogin {
		user = s.simpleUser(c.User, userID(c.User), "User")
	}
	return map[string]any{
		"id":         c.ID,
		"node_id":    nodeID("IssueComment", c.ID),
		"url":        fmt.Sprintf("%s/issues/comments/%d", repoAPI, c.ID),
		"html_url":   fmt.Sprintf("https://github.com/%s/%s/issues/%d#issuecomment-%d", c.Owner, c.Repo, c.Issue, c.ID),
		"issue_url":  fmt.Sprintf("%s/issues/%d", repoAPI, c.Issue),
		"body":       c.Body,
		"user":       user,
		"created_at": c.Created.Format(time.RFC3339),
		"updated_at": c.Updated.Format(time.RFC3339),
	}
}

// botUser is the App's bot account as GitHub shows it.
func (s *Server) botUser() map[string]any {
	u := s.simpleUser(BotLogin, botUserID, "Bot")
	u["html_url"] = "https://github.com/apps/stagehand"
	return u
}

func base64URL(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
