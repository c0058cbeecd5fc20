package githubapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/go-github/v62/github"
	"golang.org/x/oauth2"
)

// DefaultWebURL is GitHub.com's web pages, where its OAuth endpoints are.
const DefaultWebURL = "https://github.com/"

// UserAuthOptions configure the App's user authorization: GitHub's web
// flow that signs a person in to the dashboard and gives Stagehand a user
// access token to ask GitHub what that person may read.
type UserAuthOptions struct {
	// ClientID and ClientSecret are the App's, from its settings page.
	ClientID, ClientSecret string
	// WebURL holds GitHub's login/oauth/authorize and
	// login/oauth/access_token: DefaultWebURL when empty, https://HOST/ for
	// GitHub Enterprise Server, or a test server's URL.
	WebURL string
	// APIURL is the REST base, as in Options.
	APIURL string
	// RedirectURL is where GitHub sends the browser back: the dashboard's
	// <public-url>/auth/callback, registered as the App's callback URL.
	RedirectURL string
	// HTTPClient is an optional base client for every request.
	HTTPClient *http.Client
}

// UserAuth is the App's user authorization. It is safe for concurrent use.
type UserAuth struct {
	oauth   oauth2.Config
	baseURL *url.URL
	client  *http.Client
}

// NewUserAuth checks the options.
func NewUserAuth(opts UserAuthOptions) (*UserAuth, error) {
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("github user authorization: the App's client id and client secret are both needed (the App's settings page, General)")
	}
	web, err := parseAPIURL(cmp.Or(opts.WebURL, DefaultWebURL))
	if err != nil {
		return nil, fmt.Errorf("github web url: %w", err)
	}
	api, err := parseAPIURL(opts.APIURL)
	if err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &UserAuth{
		oauth: oauth2.Config{
			ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, RedirectURL: opts.RedirectURL,
			Endpoint: oauth2.Endpoint{
				AuthURL:   web.String() + "login/oauth/authorize",
				TokenURL:  web.String() + "login/oauth/access_token",
				AuthStyle: oauth2.AuthStyleInParams, // as GitHub documents: client_id and client_secret in the form
			},
		},
		baseURL: api,
		client:  client,
	}, nil
}

// NewVerifier makes a PKCE code verifier (RFC 7636: 32 random bytes).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// AuthCodeURL is GitHub's authorize page for one sign-in: state comes back
// with the browser, and the code it brings is good only with verifier.
func (u *UserAuth) AuthCodeURL(state, verifier string) string {
	return u.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
}

// UserToken is what GitHub hands out for a person: a user access token
// and the refresh token that renews it.
type UserToken struct {
	AccessToken  string
	RefreshToken string // "" when the App's tokens do not expire
	// ExpiresIn and RefreshExpiresIn are the tokens' lifetimes as GitHub
	// gave them (eight hours and six months by default); 0 when they do
	// not expire.
	ExpiresIn, RefreshExpiresIn time.Duration
}

// ErrTokenRefused is matched (errors.Is) when GitHub refuses a user's
// token or refresh token: expired, revoked, or the person took back the
// App's authorization. The person has to sign in again.
var ErrTokenRefused = errors.New("github refused the user's token")

// Exchange trades the code GitHub's authorize page gave the browser for the
// person's tokens; verifier is the one AuthCodeURL was made with. GitHub
// accepts a code once, within ten minutes.
func (u *UserAuth) Exchange(ctx context.Context, code, verifier string) (UserToken, error) {
	tok, err := u.oauth.Exchange(u.context(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return UserToken{}, tokenError("exchanging the sign-in code", err)
	}
	return userToken(tok), nil
}

// Refresh trades a refresh token (good once) for new tokens.
func (u *UserAuth) Refresh(ctx context.Context, refreshToken string) (UserToken, error) {
	// An empty access token is never valid: the token source refreshes.
	tok, err := u.oauth.TokenSource(u.context(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return UserToken{}, tokenError("refreshing the user's GitHub token", err)
	}
	return userToken(tok), nil
}

func (u *UserAuth) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, u.client)
}

// tokenError words a failure of GitHub's access_token endpoint.
func tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: GitHub did not answer: %w", what, err)
	}
	switch re.ErrorCode {
	case "bad_verification_code", "bad_refresh_token":
		return fmt.Errorf("%s: %w (%s: %s)", what, ErrTokenRefused, re.ErrorCode, re.ErrorDescription)
	case "incorrect_client_credentials":
		return fmt.Errorf("%s: GitHub refused the App's client id or client secret: check --github-client-id and --github-client-secret-file against the App's settings (a rotated secret?): %w", what, err)
	case "redirect_uri_mismatch":
		return fmt.Errorf("%s: GitHub refused the callback URL: register <public-url>/auth/callback as the App's callback URL: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// userToken reads what x/oauth2 parsed, form or JSON alike.
func userToken(tok *oauth2.Token) UserToken {
	seconds := func(key string) time.Duration {
		var n int
		switch v := tok.Extra(key).(type) {
		case string:
			n, _ = strconv.Atoi(v)
		case int64: // a form's number
			n = int(v)
		case float64: // a JSON number
			n = int(v)
		}
		return time.Duration(n) * time.Second
	}
	return UserToken{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		ExpiresIn: seconds("expires_in"), RefreshExpiresIn: seconds("refresh_token_expires_in")}
}

// Revoke makes GitHub forget a user access token (the App authenticates
// with its client id and secret). A token GitHub no longer knows is not an
// error: it is gone already.
func (u *UserAuth) Revoke(ctx context.Context, accessToken string) error {
	hc := *u.client
	hc.Transport = &github.BasicAuthTransport{Username: u.oauth.ClientID, Password: u.oauth.ClientSecret, Transport: u.client.Transport}
	_, err := u.api(&hc).Authorizations.Revoke(ctx, u.oauth.ClientID, accessToken)
	if code := statusOf(err); code == http.StatusUnprocessableEntity || code == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return userAPIError("revoking the user's GitHub token", err)
	}
	return nil
}

// api is a go-github client on hc at the REST base.
func (u *UserAuth) api(hc *http.Client) *github.Client {
	c := github.NewClient(hc)
	base := *u.baseURL
	c.BaseURL = &base
	c.UserAgent = "stagehand"
	return c
}

// as is a client that authenticates with a person's token.
func (u *UserAuth) as(token string) *github.Client {
	return u.api(u.client).WithAuthToken(token)
}

func statusOf(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// userAPIError words the failure of a call made with a person's token.
func userAPIError(what string, err error) error {
	switch code := statusOf(err); {
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%s: %w (401)", what, ErrTokenRefused)
	case code >= 500:
		return fmt.Errorf("%s: GitHub failed (%d); try again later: %w", what, code, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// User is a GitHub account.
type User struct {
	ID    int64
	Login string
}

// User is the person a token belongs to.
func (u *UserAuth) User(ctx context.Context, token string) (User, error) {
	gu, _, err := u.as(token).Users.Get(ctx, "")
	if err != nil {
		return User{}, userAPIError("asking GitHub who the token belongs to", err)
	}
	return User{ID: gu.GetID(), Login: gu.GetLogin()}, nil
}

// RepoAccess is a repository a person can read, and whether they can
// write to it (push).
type RepoAccess struct {
	ID          int64
	Owner, Name string
	Write       bool
}

func repoAccess(r *github.Repository) RepoAccess {
	perms := r.GetPermissions()
	return RepoAccess{ID: r.GetID(), Owner: r.GetOwner().GetLogin(), Name: r.GetName(),
		Write: perms["push"] || perms["maintain"] || perms["admin"]}
}

// maxRepoPages bounds one listing: 100 pages of 100 repositories.
const maxRepoPages = 100

// InstallationRepos lists the repositories of an installation the person
// can read (GET /user/installations/{id}/repositories, which needs a user
// access token of this App). An installation they see nothing of (GitHub's
// 404 or 403) is an empty list.
func (u *UserAuth) InstallationRepos(ctx context.Context, token string, installationID int64) ([]RepoAccess, error) {
	c := u.as(token)
	var out []RepoAccess
	opts := &github.ListOptions{PerPage: 100}
	for range maxRepoPages {
		list, resp, err := c.Apps.ListUserRepos(ctx, installationID, opts)
		if code := statusOf(err); code == http.StatusNotFound || code == http.StatusForbidden {
			return nil, nil
		}
		if err != nil {
			return nil, userAPIError(fmt.Sprintf("listing the repositories of installation %d the user can read", installationID), err)
		}
		for _, r := range list.Repositories {
			out = append(out, repoAccess(r))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
	return out, fmt.Errorf("listing the repositories of installation %d the user can read: more than %d pages", installationID, maxRepoPages)
}

// Repo is owner/repo as the token sees it; ok is false when the token
// cannot read it (GitHub's 404 or 403).
func (u *UserAuth) Repo(ctx context.Context, token, owner, repo string) (access RepoAccess, ok bool, err error) {
	r, _, err := u.as(token).Repositories.Get(ctx, owner, repo)
	if code := statusOf(err); code == http.StatusNotFound || code == http.StatusForbidden {
		return RepoAccess{}, false, nil
	}
	if err != nil {
		return RepoAccess{}, false, userAPIError("asking GitHub whether the token can read "+owner+"/"+repo, err)
	}
	return repoAccess(r), true, nil
}
