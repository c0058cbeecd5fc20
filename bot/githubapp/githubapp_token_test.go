package githubapp

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

func newTestApp(t *testing.T) (*App, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(77, &key.PublicKey)
	gh.AddRepo(5, "acme", "app")
	gh.AddRepo(5, "acme", "site")
	gh.SetFile("acme", "app", "main", ".github/stagehand.yml", []byte("version: 1\n"))
	app, err := New(Options{AppID: 77, PrivateKeyPEM: pemBytes, APIURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return app, gh
}

// A token is cached per (installation, purpose, repository): asking again
// for the same one sends nothing, another repository or purpose gets its own.
func TestTokenIsCachedPerScope(t *testing.T) {
	app, gh := newTestApp(t)
	ctx := context.Background()
	first, err := app.Token(ctx, 5, Repository{Name: "app"})
	if err != nil || first == "" {
		t.Fatalf("Token = %q, %v", first, err)
	}
	second, err := app.Token(ctx, 5, Repository{Name: "app"})
	if err != nil || second != first {
		t.Errorf("second Token = %q, %v; want the cached %q", second, err, first)
	}
	other, err := app.Token(ctx, 5, Repository{Name: "site"})
	if err != nil || other == first {
		t.Errorf("Token for acme/site = %q, %v; want a token of its own", other, err)
	}
	for range 2 {
		if _, err := app.FetchFile(ctx, 5, "acme", "app", ".github/stagehand.yml", ""); err != nil {
			t.Fatal(err)
		}
	}
	read := map[string]string{"contents": "read"}
	want := []githubtest.TokenRequest{
		{Installation: 5, Permissions: read, Repositories: []string{"app"}, Status: 201},  // checkout, acme/app
		{Installation: 5, Permissions: read, Repositories: []string{"site"}, Status: 201}, // checkout, acme/site
		{Installation: 5, Permissions: read, Repositories: []string{"app"}, Status: 201},  // contents API, acme/app
	}
	if diff := cmp.Diff(want, gh.TokenRequests()); diff != "" {
		t.Errorf("token requests (-want +got):\n%s", diff)
	}
	if n := len(app.installations); n != 1 {
		t.Errorf("%d installation clients, want 1 shared by every purpose", n)
	}
	gh.AssertNoErrors(t)
}

// The installation client never sends a request without a token scope:
// there is no token with every permission to fall back on.
func TestRequestWithoutScopeIsRefused(t *testing.T) {
	app, gh := newTestApp(t)
	inst, err := app.installation(5)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = inst.client.Repositories.GetContents(context.Background(), "acme", "app", ".github/stagehand.yml", nil)
	if !errors.Is(err, errNoScope) {
		t.Errorf("error %v, want errNoScope", err)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Errorf("sent %d requests, want none", n)
	}
}
