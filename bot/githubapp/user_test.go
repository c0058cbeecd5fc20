package githubapp_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

const (
	clientID     = "Iv23liTestClient"
	clientSecret = "test-client-secret"
	callback     = "http://stagehand.test/auth/callback"
)

// userSetup starts a stand-in where alice may write acme/app and may not
// read acme/secret, and a UserAuth pointed at it.
func userSetup(t *testing.T, secret string) (*githubapp.UserAuth, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New(t)
	gh.SetOAuthApp(clientID, clientSecret, callback)
	gh.AddInstallation(1, "acme")
	gh.AddRepo(1, "acme", "app")
	gh.AddRepo(1, "acme", "secret")
	gh.AddInstallation(2, "other")
	gh.AddRepo(2, "other", "lib")
	gh.SetPermission("acme", "app", "alice", "write")
	gh.SetPermission("acme", "secret", "alice", "none")
	gh.SetPermission("acme", "app", "bob", "triage")
	gh.SignInOnWeb("alice")
	ua, err := githubapp.NewUserAuth(githubapp.UserAuthOptions{ClientID: clientID, ClientSecret: secret,
		WebURL: gh.URL(), APIURL: gh.URL(), RedirectURL: callback})
	if err != nil {
		t.Fatal(err)
	}
	return ua, gh
}

// authorize follows GitHub's authorize page as a browser would, up to the
// redirect to the callback, and returns the code and state it carries.
func authorize(t *testing.T, ua *githubapp.UserAuth, state, verifier string) (code, gotState string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(ua.AuthCodeURL(state, verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("authorize page: %s to %q, want a redirect to %s", resp.Status, resp.Header.Get("Location"), callback)
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func TestUserAuthSignInAndAccess(t *testing.T) {
	ua, gh := userSetup(t, clientSecret)
	ctx := t.Context()

	verifier := githubapp.NewVerifier()
	code, state := authorize(t, ua, "state-1", verifier)
	if state != "state-1" || code == "" {
		t.Fatalf("callback with code %q state %q, want a code and state-1", code, state)
	}
	tok, err := ua.Exchange(ctx, code, verifier)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") || !strings.HasPrefix(tok.RefreshToken, "ghr_") ||
		tok.ExpiresIn != 8*time.Hour || tok.RefreshExpiresIn != 15897600*time.Second {
		t.Errorf("tokens %+v, want ghu_ for 8h and ghr_ for six months", tok)
	}
	// A code works once.
	if _, err := ua.Exchange(ctx, code, verifier); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("Exchange of the same code again: %v, want ErrTokenRefused", err)
	}

	user, err := ua.User(ctx, tok.AccessToken)
	if err != nil || user.Login != "alice" || user.ID == 0 {
		t.Errorf("User = %+v, %v; want alice with an id", user, err)
	}
	repos, err := ua.InstallationRepos(ctx, tok.AccessToken, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []githubapp.RepoAccess{{ID: gh.RepoID("acme", "app"), Owner: "acme", Name: "app", Write: true}}
	if diff := cmp.Diff(want, repos); diff != "" {
		t.Errorf("InstallationRepos(1) (-want +got):\n%s", diff)
	}
	if repos, err := ua.InstallationRepos(ctx, tok.AccessToken, 2); err != nil || len(repos) != 0 {
		t.Errorf("InstallationRepos(2), where alice reads nothing: %v, %v; want none", repos, err)
	}
	if got, ok, err := ua.Repo(ctx, tok.AccessToken, "acme", "app"); err != nil || !ok || !got.Write {
		t.Errorf("Repo(acme/app) = %+v, %v, %v; want readable and writable", got, ok, err)
	}
	if _, ok, err := ua.Repo(ctx, tok.AccessToken, "acme", "secret"); err != nil || ok {
		t.Errorf("Repo(acme/secret) = %v, %v; want not readable", ok, err)
	}

	// A refresh token works once, and the new access token works.
	fresh, err := ua.Refresh(ctx, tok.RefreshToken)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("Refresh = %+v, %v; want new tokens", fresh, err)
	}
	if _, err := ua.Refresh(ctx, tok.RefreshToken); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("Refresh with a used refresh token: %v, want ErrTokenRefused", err)
	}
	if user, err := ua.User(ctx, fresh.AccessToken); err != nil || user.Login != "alice" {
		t.Errorf("User with the refreshed token = %+v, %v", user, err)
	}

	// Revoked: GitHub no longer takes it; revoking again is not an error.
	for range 2 {
		if err := ua.Revoke(ctx, fresh.AccessToken); err != nil {
			t.Errorf("Revoke: %v", err)
		}
	}
	if gh.UserTokenLive(fresh.AccessToken) {
		t.Error("the stand-in still takes the revoked token")
	}
	if _, err := ua.User(ctx, fresh.AccessToken); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("User with the revoked token: %v, want ErrTokenRefused", err)
	}
	if _, err := ua.Refresh(ctx, fresh.RefreshToken); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("Refresh with the revoked token's refresh token: %v, want ErrTokenRefused", err)
	}
	gh.AssertNoErrors(t)
}

func TestUserAuthRefusals(t *testing.T) {
	ua, gh := userSetup(t, clientSecret)
	ctx := t.Context()

	// The code is good only with the verifier its challenge was made of.
	code, _ := authorize(t, ua, "s", githubapp.NewVerifier())
	if _, err := ua.Exchange(ctx, code, githubapp.NewVerifier()); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("Exchange with another verifier: %v, want ErrTokenRefused", err)
	}
	if _, err := ua.Exchange(ctx, "made-up-code", githubapp.NewVerifier()); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("Exchange of a made-up code: %v, want ErrTokenRefused", err)
	}

	// A wrong client secret says which flags to check.
	wrong, _ := githubapp.NewUserAuth(githubapp.UserAuthOptions{ClientID: clientID, ClientSecret: "old-secret",
		WebURL: gh.URL(), APIURL: gh.URL(), RedirectURL: callback})
	verifier := githubapp.NewVerifier()
	code, _ = authorize(t, wrong, "s", verifier)
	_, err := wrong.Exchange(ctx, code, verifier)
	if err == nil || errors.Is(err, githubapp.ErrTokenRefused) || !strings.Contains(err.Error(), "--github-client-secret-file") {
		t.Errorf("Exchange with a wrong client secret: %v, want an error naming --github-client-secret-file", err)
	}

	// A personal access token sees repositories but cannot list an
	// installation's (that needs the App's user access token).
	pat := gh.NewPersonalAccessToken("alice")
	if _, err := ua.InstallationRepos(ctx, pat, 1); err != nil {
		t.Errorf("InstallationRepos with a personal access token: %v, want none and no error", err)
	}
	if got, ok, err := ua.Repo(ctx, pat, "acme", "app"); err != nil || !ok || !got.Write {
		t.Errorf("Repo(acme/app) with alice's personal access token = %+v, %v, %v", got, ok, err)
	}
	narrowed := gh.NewPersonalAccessToken("alice", "acme/secret")
	if _, ok, err := ua.Repo(ctx, narrowed, "acme", "app"); err != nil || ok {
		t.Errorf("Repo(acme/app) with a token given only acme/secret = %v, %v; want not readable", ok, err)
	}
	if _, err := ua.User(ctx, "ghp_madeup"); !errors.Is(err, githubapp.ErrTokenRefused) {
		t.Errorf("User with a made-up token: %v, want ErrTokenRefused", err)
	}
	gh.AssertNoErrors(t)

	if _, err := githubapp.NewUserAuth(githubapp.UserAuthOptions{ClientID: clientID}); err == nil {
		t.Error("NewUserAuth without a client secret: no error")
	}
}

// TestUserAuthListsEveryPage: an installation with more repositories than
// a page holds is read to the end.
func TestUserAuthListsEveryPage(t *testing.T) {
	ua, gh := userSetup(t, clientSecret)
	for i := range 150 {
		name := fmt.Sprintf("r%03d", i)
		gh.AddRepo(1, "acme", name)
		gh.SetPermission("acme", name, "alice", "read")
	}
	verifier := githubapp.NewVerifier()
	code, _ := authorize(t, ua, "s", verifier)
	tok, err := ua.Exchange(t.Context(), code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := ua.InstallationRepos(t.Context(), tok.AccessToken, 1)
	if err != nil || len(repos) != 151 {
		t.Errorf("InstallationRepos: %d repositories, %v; want 151 (acme/app and 150 more)", len(repos), err)
	}
	pages := 0
	for _, c := range gh.Calls() {
		if c.Operation == "GET /user/installations/{installation_id}/repositories" {
			pages++
		}
	}
	if pages != 2 {
		t.Errorf("%d pages asked for, want 2 of 100", pages)
	}
	gh.AssertNoErrors(t)
}
