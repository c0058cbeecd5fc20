package githubapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v62/github"
)

// GitHub's App manifest flow (docs.github.com, "Registering a GitHub App
// from a manifest"): a page POSTs a manifest to GitHub's new-App form
// (ManifestFormURL) with a state; GitHub shows the person a prefilled form
// and, on Create, sends the browser to the manifest's redirect_url with a
// code and the state; the code, good once and for one hour, is exchanged
// for the App's credentials (ConvertManifest).

// Manifest is the App `stagehand setup` asks GitHub to create.
type Manifest struct {
	Name               string            `json:"name"`
	URL                string            `json:"url"`
	Description        string            `json:"description"`
	HookAttributes     HookAttributes    `json:"hook_attributes"`
	RedirectURL        string            `json:"redirect_url"`
	CallbackURLs       []string          `json:"callback_urls"`
	Public             bool              `json:"public"`
	DefaultPermissions map[string]string `json:"default_permissions"`
	DefaultEvents      []string          `json:"default_events"`
	// RequestOAuthOnInstall stays false: Stagehand signs people in when
	// they open the dashboard, not when the App is installed.
	RequestOAuthOnInstall bool `json:"request_oauth_on_install"`
}

// HookAttributes is the App's webhook.
type HookAttributes struct {
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

// NewManifest is the manifest of a private App named name, served at
// publicURL (its webhook <publicURL>/webhooks, its sign-in callback
// <publicURL>/auth/callback), with exactly NeededPermissions and
// NeededEvents; GitHub sends the browser back to redirectURL.
func NewManifest(name, publicURL, redirectURL string) Manifest {
	base := strings.TrimSuffix(publicURL, "/")
	return Manifest{
		Name:               name,
		URL:                base,
		Description:        "Stage-only, prod-only and full-stack deployment pipelines (Stagehand).",
		HookAttributes:     HookAttributes{URL: base + "/webhooks", Active: true},
		RedirectURL:        redirectURL,
		CallbackURLs:       []string{base + "/auth/callback"},
		DefaultPermissions: NeededPermissionMap(),
		DefaultEvents:      append([]string(nil), NeededEvents...),
	}
}

// ManifestFormURL is GitHub's new-App form under webURL that a manifest is
// posted to: the person's own (settings/apps/new), or org's
// (organizations/ORG/settings/apps/new), with the state GitHub hands back.
func ManifestFormURL(webURL, org, state string) string {
	base := strings.TrimSuffix(webURL, "/")
	path := "/settings/apps/new"
	if org != "" {
		path = "/organizations/" + url.PathEscape(org) + "/settings/apps/new"
	}
	return base + path + "?" + url.Values{"state": {state}}.Encode()
}

// Created is what GitHub hands over for a new App: its ids and its secrets.
type Created struct {
	ID            int64
	Slug          string
	Name          string
	HTMLURL       string // https://github.com/apps/SLUG
	Owner         string
	ClientID      string
	ClientSecret  []byte
	WebhookSecret []byte
	PEM           []byte
}

// InstallURL is where the App is installed on repositories.
func (c *Created) InstallURL() string {
	return strings.TrimSuffix(c.HTMLURL, "/") + "/installations/new"
}

// ErrCodeRefused matches ConvertManifest's error when GitHub refuses the
// code: used already, expired (after one hour), or never issued.
var ErrCodeRefused = errors.New("GitHub refused the code")

// ConvertManifest exchanges a manifest flow's code for the new App's
// credentials (POST /app-manifests/{code}/conversions, unauthenticated) at
// apiURL (DefaultAPIURL when empty). hc may be nil.
func ConvertManifest(ctx context.Context, apiURL string, hc *http.Client, code string) (*Created, error) {
	base, err := parseAPIURL(apiURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	c := github.NewClient(hc)
	c.BaseURL = base
	c.UserAgent = "stagehand"
	cfg, _, err := c.Apps.CompleteAppManifest(ctx, url.PathEscape(code))
	if err != nil {
		var ge *github.ErrorResponse
		if errors.As(err, &ge) && ge.Response != nil && (ge.Response.StatusCode == http.StatusNotFound || ge.Response.StatusCode == http.StatusUnprocessableEntity) {
			return nil, fmt.Errorf("%w: %s (a code is good once and for one hour: open the setup page again and create the App anew; delete an App that was created but not converted on its settings page)", ErrCodeRefused, ge.Message)
		}
		return nil, fmt.Errorf("exchanging the code for the App's credentials: %w", err)
	}
	out := &Created{ID: cfg.GetID(), Slug: cfg.GetSlug(), Name: cfg.GetName(), HTMLURL: cfg.GetHTMLURL(), Owner: cfg.GetOwner().GetLogin(),
		ClientID: cfg.GetClientID(), ClientSecret: []byte(cfg.GetClientSecret()), WebhookSecret: []byte(cfg.GetWebhookSecret()), PEM: []byte(cfg.GetPEM())}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{{"id", out.ID > 0}, {"pem", len(out.PEM) > 0}, {"webhook_secret", len(out.WebhookSecret) > 0},
		{"client_id", out.ClientID != ""}, {"client_secret", len(out.ClientSecret) > 0}, {"html_url", out.HTMLURL != ""}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("GitHub created the App %q but its answer lacks %s: finish it by hand on its settings page (README, \"Install it as a GitHub App\")", out.Slug, strings.Join(missing, ", "))
	}
	return out, nil
}
