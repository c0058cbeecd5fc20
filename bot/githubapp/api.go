package githubapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
)

// GitHub's limits, in characters.
const (
	maxCommentChars                = 65536
	maxDeploymentStatusDescription = 140
)

// sleepOnRateLimit makes go-github wait (within ctx) rather than fail at
// once when an earlier answer said the hourly quota is used up. The
// installation transport handles rate-limited answers itself.
func sleepOnRateLimit(ctx context.Context) context.Context {
	return context.WithValue(ctx, github.SleepUntilPrimaryRateLimitResetWhenRateLimited, true)
}

// api returns the installation's client and the context to call it with:
// its requests carry a token for s.
func (a *App) api(ctx context.Context, installationID int64, s scope) (*github.Client, context.Context, error) {
	inst, err := a.installation(installationID)
	if err != nil {
		return nil, nil, err
	}
	return inst.client, withScope(sleepOnRateLimit(ctx), s), nil
}

// onRepo is the scope of p's token on repository repo (a name).
func onRepo(p purpose, repo string) scope { return scope{purpose: p, repo: Repository{Name: repo}} }

// apiError words err, the failure of the action described by what, so an
// operator can act on it; p is the purpose of the action's token, which
// names the App permission the action needs. The original error stays
// wrapped (errors.As finds *github.ErrorResponse, *RateLimitedError,
// context errors); a 404, and GitHub's refusal of a token for a repository
// the installation does not hold, also match bot.ErrNotFound.
func apiError(installationID int64, what string, p purpose, err error) error {
	var (
		rl      *RateLimitedError
		er      *github.ErrorResponse
		refused *tokenRefusedError
		tok     *ghinstallation.HTTPError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &rl):
		return fmt.Errorf("%s: %w", what, err)
	case errors.As(err, &refused) && refused.repositoryRefused():
		return fmt.Errorf("%s: %w: %w", what, &notFoundError{fmt.Sprintf(
			"not found: installation %d cannot see it (GitHub would not give a token for the repository, 422)", installationID)}, err)
	case errors.As(err, &refused) && refused.status == http.StatusUnprocessableEntity:
		return fmt.Errorf("%s: installation %d has not granted the App the %s permission (GitHub would not give a token with it, 422): give the App that permission and have the installation accept it: %w",
			what, installationID, p.needs(), err)
	case errors.As(err, &tok):
		hint := fmt.Sprintf("could not get a token for installation %d", installationID)
		if tok.Response != nil {
			switch tok.Response.StatusCode {
			case http.StatusUnauthorized:
				hint = "GitHub refused the App's credentials (401): check the App id and private key"
			case http.StatusForbidden, http.StatusNotFound:
				hint = fmt.Sprintf("GitHub would not give installation %d a token (%d): the App may have been uninstalled or suspended there", installationID, tok.Response.StatusCode)
			}
		}
		return fmt.Errorf("%s: %s: %w", what, hint, err)
	case errors.As(err, &er) && er.Response != nil:
		switch code := er.Response.StatusCode; {
		case code == http.StatusUnauthorized:
			return fmt.Errorf("%s: GitHub refused the installation token (401): %w", what, err)
		case code == http.StatusForbidden:
			return fmt.Errorf("%s: the App is not allowed to (403 %s): give it the %s permission and have installation %d accept it: %w",
				what, er.Message, p.needs(), installationID, err)
		case code == http.StatusNotFound:
			return fmt.Errorf("%s: %w: %w", what, &notFoundError{fmt.Sprintf(
				"not found (404): it does not exist or installation %d cannot see it", installationID)}, err)
		case code == http.StatusGone:
			return fmt.Errorf("%s: gone (410): the feature is disabled on the repository: %w", what, err)
		case code == http.StatusConflict:
			return fmt.Errorf("%s: conflict (409): %w", what, err)
		case code == http.StatusUnprocessableEntity:
			return fmt.Errorf("%s: GitHub refused the request as invalid (422): %w", what, err)
		case code >= 500:
			return fmt.Errorf("%s: GitHub failed (%d) and kept failing after retries; try again later: %w", what, code, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// truncate cuts s to at most limit characters, ending with suffix when cut.
func truncate(s string, limit int, suffix string) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	keep := limit - utf8.RuneCountInString(suffix)
	i := 0
	for n := 0; n < keep; n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + suffix
}

// CreateCheckRun creates a check run and returns its id. opts.Name and
// opts.HeadSHA are required.
func (a *App) CreateCheckRun(ctx context.Context, installationID int64, owner, repo string, opts github.CreateCheckRunOptions) (int64, error) {
	what := fmt.Sprintf("create check run %q on %s/%s at %s", opts.Name, owner, repo, shortRef(opts.HeadSHA))
	if opts.Name == "" || opts.HeadSHA == "" {
		return 0, fmt.Errorf("%s: a check run needs a name and a head sha", what)
	}
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeChecks, repo))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	cr, _, err := c.Checks.CreateCheckRun(ctx, owner, repo, opts)
	if err != nil {
		return 0, apiError(installationID, what, purposeChecks, err)
	}
	return cr.GetID(), nil
}

// UpdateCheckRun updates check run id. opts.Name is required: go-github
// always sends it, and an empty one would rename the check run.
func (a *App) UpdateCheckRun(ctx context.Context, installationID int64, owner, repo string, id int64, opts github.UpdateCheckRunOptions) error {
	what := fmt.Sprintf("update check run %d (%q) on %s/%s", id, opts.Name, owner, repo)
	if opts.Name == "" {
		return fmt.Errorf("%s: the update needs the check run's name (an empty one would rename it)", what)
	}
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeChecks, repo))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if opts.Actions != nil && len(opts.Actions) == 0 {
		// go-github drops an empty actions list (omitempty), but an empty
		// list is how buttons shown before are removed.
		return a.updateCheckRunClearingActions(ctx, c, installationID, owner, repo, id, opts, what)
	}
	if _, _, err := c.Checks.UpdateCheckRun(ctx, owner, repo, id, opts); err != nil {
		return apiError(installationID, what, purposeChecks, err)
	}
	return nil
}

// checkRunUpdate is UpdateCheckRunOptions with an actions list that is
// always sent.
type checkRunUpdate struct {
	github.UpdateCheckRunOptions
	Actions []*github.CheckRunAction `json:"actions"`
}

func (a *App) updateCheckRunClearingActions(ctx context.Context, c *github.Client, installationID int64, owner, repo string, id int64, opts github.UpdateCheckRunOptions, what string) error {
	body := checkRunUpdate{UpdateCheckRunOptions: opts, Actions: []*github.CheckRunAction{}}
	body.UpdateCheckRunOptions.Actions = nil
	req, err := c.NewRequest("PATCH", fmt.Sprintf("repos/%v/%v/check-runs/%v", owner, repo, id), body)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	if _, err := c.Do(ctx, req, nil); err != nil {
		return apiError(installationID, what, purposeChecks, err)
	}
	return nil
}

const truncatedComment = "\n\n… (cut: GitHub allows 65536 characters)"

// CreateComment comments on issue or pull request number issue and returns
// the comment's id. A body over GitHub's 65536 characters is cut to fit.
func (a *App) CreateComment(ctx context.Context, installationID int64, owner, repo string, issue int, body string) (int64, error) {
	what := fmt.Sprintf("comment on %s/%s#%d", owner, repo, issue)
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeComments, repo))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	body = truncate(body, maxCommentChars, truncatedComment)
	cm, _, err := c.Issues.CreateComment(ctx, owner, repo, issue, &github.IssueComment{Body: &body})
	if err != nil {
		return 0, apiError(installationID, what, purposeComments, err)
	}
	return cm.GetID(), nil
}

// EditComment replaces the body of one of the App's comments (cut to
// GitHub's 65536 characters).
func (a *App) EditComment(ctx context.Context, installationID int64, owner, repo string, commentID int64, body string) error {
	what := fmt.Sprintf("edit comment %d on %s/%s", commentID, owner, repo)
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeComments, repo))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	body = truncate(body, maxCommentChars, truncatedComment)
	if _, _, err := c.Issues.EditComment(ctx, owner, repo, commentID, &github.IssueComment{Body: &body}); err != nil {
		return apiError(installationID, what, purposeComments, err)
	}
	return nil
}

// reactionContents are the reactions GitHub knows.
var reactionContents = []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}

// React adds a reaction (content: +1, -1, laugh, confused, heart, hooray,
// rocket or eyes) to an issue or pull-request comment. Reacting again the
// same way is not an error.
func (a *App) React(ctx context.Context, installationID int64, owner, repo string, commentID int64, content string) error {
	what := fmt.Sprintf("react %q to comment %d on %s/%s", content, commentID, owner, repo)
	if !slices.Contains(reactionContents, content) {
		return fmt.Errorf("%s: GitHub knows only the reactions %s", what, strings.Join(reactionContents, ", "))
	}
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeComments, repo))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, _, err := c.Reactions.CreateIssueCommentReaction(ctx, owner, repo, commentID, content); err != nil {
		return apiError(installationID, what, purposeComments, err)
	}
	return nil
}

// CreateDeployment creates a GitHub deployment of ref to environment and
// returns its id. It always sends auto_merge false (GitHub would otherwise
// merge the default branch into ref), required_contexts [] (GitHub would
// otherwise refuse until every status check passed), transient_environment
// false, and production_environment true only for "production". payload
// (nil for none) is stored with the deployment as a JSON object.
func (a *App) CreateDeployment(ctx context.Context, installationID int64, owner, repo, ref, environment, description string, payload map[string]any) (int64, error) {
	what := fmt.Sprintf("create a %s deployment of %s on %s/%s", environment, shortRef(ref), owner, repo)
	if ref == "" || environment == "" {
		return 0, fmt.Errorf("%s: a deployment needs a ref and an environment", what)
	}
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeDeployments, repo))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	req := &github.DeploymentRequest{
		Ref:                   github.String(ref),
		Environment:           github.String(environment),
		AutoMerge:             github.Bool(false),
		RequiredContexts:      &[]string{},
		TransientEnvironment:  github.Bool(false),
		ProductionEnvironment: github.Bool(environment == "production"),
	}
	if description != "" {
		req.Description = github.String(description)
	}
	if payload != nil { // a nil map would be sent as null, which GitHub refuses
		req.Payload = payload
	}
	d, _, err := c.Repositories.CreateDeployment(ctx, owner, repo, req)
	if err != nil {
		return 0, apiError(installationID, what, purposeDeployments, err)
	}
	return d.GetID(), nil
}

// DeploymentIDs returns the ids of the deployments of commit sha to
// environment on owner/repo whose payload names the execution (its
// pipeline and number, as CreateDeployment's callers send them), oldest
// first. The reporter asks before creating a deployment again after a
// create whose answer it never got, so a lost answer does not leave a
// second deployment behind.
func (a *App) DeploymentIDs(ctx context.Context, installationID int64, owner, repo, sha, environment, pipeline string, execution int) ([]int64, error) {
	what := fmt.Sprintf("list the %s deployments of %s on %s/%s", environment, shortRef(sha), owner, repo)
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeDeployments, repo))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	opts := &github.DeploymentsListOptions{SHA: sha, Environment: environment, ListOptions: github.ListOptions{PerPage: 100}}
	var ids []int64
	for {
		list, resp, err := c.Repositories.ListDeployments(ctx, owner, repo, opts)
		if err != nil {
			return nil, apiError(installationID, what, purposeDeployments, err)
		}
		for _, d := range list {
			var p struct {
				Execution int    `json:"execution"`
				Pipeline  string `json:"pipeline"`
			}
			if json.Unmarshal(d.Payload, &p) == nil && p.Execution == execution && p.Pipeline == pipeline {
				ids = append(ids, d.GetID())
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	slices.Sort(ids)
	return ids, nil
}

// deploymentStates are the states GitHub accepts for a deployment status.
var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// CreateDeploymentStatus adds a status to deployment id: state is error,
// failure, inactive, in_progress, queued, pending or success; environmentURL
// and logURL may be empty; description is cut to GitHub's 140 characters.
func (a *App) CreateDeploymentStatus(ctx context.Context, installationID int64, owner, repo string, id int64, state, environmentURL, logURL, description string) error {
	what := fmt.Sprintf("set deployment %d on %s/%s to %s", id, owner, repo, state)
	if !slices.Contains(deploymentStates, state) {
		return fmt.Errorf("%s: GitHub knows only the states %s", what, strings.Join(deploymentStates, ", "))
	}
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeDeployments, repo))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req := &github.DeploymentStatusRequest{State: github.String(state)}
	if environmentURL != "" {
		req.EnvironmentURL = github.String(environmentURL)
	}
	if logURL != "" {
		req.LogURL = github.String(logURL)
	}
	if description != "" {
		req.Description = github.String(truncate(description, maxDeploymentStatusDescription, "…"))
	}
	if _, _, err := c.Repositories.CreateDeploymentStatus(ctx, owner, repo, id, req); err != nil {
		return apiError(installationID, what, purposeDeployments, err)
	}
	return nil
}

// roles ranks GitHub's repository roles.
var roles = map[string]int{"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}

// Permission returns user's role on owner/repo: admin, maintain, write,
// triage, read or none ("none" when GitHub answers 404: no such user, or a
// repository the installation cannot see, for which GitHub gives no token
// either). For a custom role it returns the role's base permission (admin,
// write, read). Compare with HasPermission.
func (a *App) Permission(ctx context.Context, installationID int64, owner, repo, user string) (string, error) {
	what := fmt.Sprintf("check %s's permission on %s/%s", user, owner, repo)
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeCollaborators, repo))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	// go-github v62 does not decode role_name, which tells maintain from
	// write and triage from read.
	u := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(user))
	req, err := c.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	var out struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	resp, err := c.Do(ctx, req, &out)
	if err != nil {
		if unseen(resp, err) {
			return "none", nil
		}
		return "", apiError(installationID, what, purposeCollaborators, err)
	}
	if _, ok := roles[out.RoleName]; ok {
		return out.RoleName, nil
	}
	if _, ok := roles[out.Permission]; ok {
		return out.Permission, nil
	}
	return "", fmt.Errorf("%s: GitHub answered an unknown permission %q (role %q)", what, out.Permission, out.RoleName)
}

// HasPermission reports whether role (as Permission returns it) is want or
// higher, in GitHub's order none < read < triage < write < maintain < admin.
// Unknown roles have no permission.
func HasPermission(role, want string) bool {
	got, ok1 := roles[role]
	need, ok2 := roles[want]
	return ok1 && ok2 && got >= need
}

// IsTeamMember reports whether user is an active member of team (its slug)
// in org; a pending invitation is not membership. The App needs the
// organization permission "Members: read".
func (a *App) IsTeamMember(ctx context.Context, installationID int64, org, team, user string) (bool, error) {
	what := fmt.Sprintf("check whether %s is in team %s/%s", user, org, team)
	c, ctx, err := a.api(ctx, installationID, scope{purpose: purposeMembers})
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	m, resp, err := c.Teams.GetTeamMembershipBySlug(ctx, org, team, user)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return false, nil
		}
		return false, apiError(installationID, what, purposeMembers, err)
	}
	return m.GetState() == "active", nil
}

// CheckRunIDs returns the ids of the check runs named name on commit sha
// whose external_id is externalID, oldest first. The reporter asks before
// creating a check run again after a create whose answer it never got, so a
// lost answer does not leave a duplicate.
func (a *App) CheckRunIDs(ctx context.Context, installationID int64, owner, repo, sha, name, externalID string) ([]int64, error) {
	what := fmt.Sprintf("list check runs %q of %s on %s/%s", name, sha, owner, repo)
	c, ctx, err := a.api(ctx, installationID, onRepo(purposeChecks, repo))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	opts := &github.ListCheckRunsOptions{CheckName: github.String(name), Filter: github.String("all"), ListOptions: github.ListOptions{PerPage: 100}}
	var ids []int64
	for {
		res, resp, err := c.Checks.ListCheckRunsForRef(ctx, owner, repo, sha, opts)
		if err != nil {
			return nil, apiError(installationID, what, purposeChecks, err)
		}
		for _, cr := range res.CheckRuns {
			if cr.GetExternalID() == externalID {
				ids = append(ids, cr.GetID())
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	slices.Sort(ids)
	return ids, nil
}
