package githubapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// postManifest posts m to the stand-in's new-App form as a browser would
// and returns where GitHub sends the browser back.
func postManifest(t *testing.T, gh *githubtest.Server, org, state string, m githubapp.Manifest) *url.URL {
	t.Helper()
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(githubapp.ManifestFormURL(gh.URL(), org, state), url.Values{"manifest": {string(body)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the new-App form answered %s, want a redirect", resp.Status)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// TestManifestFlow: the manifest posted to the stand-in's form comes back
// as a code and the state at the redirect URL; the code converts once into
// credentials that authenticate as the new App, whose GET /app shows
// exactly what Stagehand needs; a used and an expired code are refused
// with the reason.
func TestManifestFlow(t *testing.T) {
	ctx := context.Background()
	for _, org := range []string{"", "acme"} {
		t.Run("owner "+org, func(t *testing.T) {
			gh := githubtest.New(t)
			gh.AddUser("alice")
			gh.SignInOnWeb("alice")
			m := githubapp.NewManifest("Stagehand acme", "https://stagehand.example.com/", "http://127.0.0.1:9/setup/done")
			back := postManifest(t, gh, org, "st4te", m)
			if got := back.Scheme + "://" + back.Host + back.Path; got != m.RedirectURL || back.Query().Get("state") != "st4te" {
				t.Fatalf("sent back to %s, want %s with the state", back, m.RedirectURL)
			}
			created, err := githubapp.ConvertManifest(ctx, gh.URL(), nil, back.Query().Get("code"))
			if err != nil {
				t.Fatal(err)
			}
			wantOwner := "alice"
			if org != "" {
				wantOwner = org
			}
			if created.Slug != "stagehand-acme" || created.Owner != wantOwner || created.InstallURL() != gh.URL()+"apps/stagehand-acme/installations/new" {
				t.Errorf("created %+v", created)
			}
			app, err := githubapp.New(githubapp.Options{AppID: created.ID, PrivateKeyPEM: created.PEM, APIURL: gh.URL()})
			if err != nil {
				t.Fatal(err)
			}
			settings, err := app.Settings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(githubapp.NeededPermissionMap(), settings.Permissions); diff != "" {
				t.Errorf("permissions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(githubapp.NeededEvents, settings.Events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if missing := settings.Missing(); len(missing) > 0 {
				t.Errorf("missing %v", missing)
			}
			wantSettings := gh.URL() + "settings/apps/stagehand-acme/permissions"
			if org != "" {
				wantSettings = gh.URL() + "organizations/acme/settings/apps/stagehand-acme/permissions"
			}
			if got := settings.SettingsURL(gh.URL()); got != wantSettings {
				t.Errorf("settings URL %s, want %s", got, wantSettings)
			}

			_, err = githubapp.ConvertManifest(ctx, gh.URL(), nil, back.Query().Get("code"))
			if !errors.Is(err, githubapp.ErrCodeRefused) || !strings.Contains(err.Error(), githubtest.MsgManifestCodeUsed) {
				t.Errorf("a used code: %v", err)
			}
			m.Name = "Stagehand late"
			late := postManifest(t, gh, org, "st4te", m)
			gh.ExpireManifestCodes()
			_, err = githubapp.ConvertManifest(ctx, gh.URL(), nil, late.Query().Get("code"))
			if !errors.Is(err, githubapp.ErrCodeRefused) || !strings.Contains(err.Error(), githubtest.MsgManifestCodeExpired) {
				t.Errorf("an expired code: %v", err)
			}
			_, err = githubapp.ConvertManifest(ctx, gh.URL(), nil, "never-issued")
			if !errors.Is(err, githubapp.ErrCodeRefused) {
				t.Errorf("an unknown code: %v", err)
			}
			gh.AssertNoErrors(t)
		})
	}
}

// TestSettingsMissing: a permission below the level needed, one absent and
// an event not subscribed are each named, with what the App has.
func TestSettingsMissing(t *testing.T) {
	s := githubapp.AppSettings{Permissions: githubapp.NeededPermissionMap(), Events: githubapp.NeededEvents}
	s.Permissions["checks"] = "read"
	delete(s.Permissions, "members")
	s.Events = []string{"check_run", "issue_comment", "push", "repository"}
	var got []string
	for _, m := range s.Missing() {
		got = append(got, m.String())
	}
	want := []string{
		"permission Checks: write (the App has read)",
		"permission organization Members: read (the App has none)",
		"event check_suite (the App has not subscribed)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
}

// TestNeedsCoverTokenPurposes: every permission a token purpose asks for
// (tokens.go) is among NeededPermissions at that level or above, and every
// needed permission serves a purpose: the manifest asks for no more.
func TestNeedsCoverTokenPurposes(t *testing.T) {
	asked := githubapp.PurposePermissions()
	needed := githubapp.NeededPermissionMap()
	if diff := cmp.Diff(needed, asked); diff != "" {
		t.Errorf("needed permissions (-NeededPermissions +asked by the token purposes):\n%s", diff)
	}
}
