package githubapp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// What Stagehand needs of its GitHub App: the one list that the App
// manifest of `stagehand setup` asks for, that the permissions check of
// `serve` and `stagehand doctor` compares the App with, and that README's
// "Install it as a GitHub App" lists (a test in cmd/stagehand keeps README
// in step; one in this package keeps the token purposes of tokens.go within
// it; one in handlers/webhook keeps the events in step with the handlers).

// Permission is one App permission as GitHub's manifest and GET /app name it
// ("checks", "write"), with the words of the App's settings page.
type Permission struct {
	Name  string // as in the manifest's default_permissions: "pull_requests"
	Level string // "read" or "write"
	Label string // as on the settings page: "Pull requests"
	Org   bool   // an organization permission (the rest are repository permissions)
}

// String is the permission as the settings page shows it: "Checks: write".
func (p Permission) String() string {
	s := p.Label + ": " + p.Level
	if p.Org {
		s = "organization " + s
	}
	return s
}

// NeededPermissions are the permissions Stagehand's App needs: each serves
// one token purpose of tokens.go (the comments need both issues and pull
// requests: GitHub checks the one of the conversation commented on).
var NeededPermissions = []Permission{
	{Name: "checks", Level: "write", Label: "Checks"},
	{Name: "contents", Level: "read", Label: "Contents"},
	{Name: "deployments", Level: "write", Label: "Deployments"},
	{Name: "issues", Level: "write", Label: "Issues"},
	{Name: "metadata", Level: "read", Label: "Metadata"},
	{Name: "pull_requests", Level: "write", Label: "Pull requests"},
	{Name: "members", Level: "read", Label: "Members", Org: true},
}

// NeededEvents are the webhook events the App subscribes to: those its
// handlers use (handlers/webhook) that GitHub sends only to Apps subscribed.
var NeededEvents = []string{"check_run", "check_suite", "issue_comment", "push", "repository"}

// AlwaysSentEvents are the events GitHub sends every App without a
// subscription (they cannot be subscribed to in a manifest).
var AlwaysSentEvents = []string{"installation", "installation_repositories", "ping"}

// NeededPermissionMap is NeededPermissions as the manifest's
// default_permissions.
func NeededPermissionMap() map[string]string {
	m := map[string]string{}
	for _, p := range NeededPermissions {
		m[p.Name] = p.Level
	}
	return m
}

// levels orders permission levels.
var levels = map[string]int{"read": 1, "write": 2, "admin": 3}

// AppSettings is what GitHub says of the App itself (GET /app).
type AppSettings struct {
	ID          int64             `json:"id"`
	Slug        string            `json:"slug"`
	Name        string            `json:"name"`
	HTMLURL     string            `json:"html_url"`
	Permissions map[string]string `json:"permissions"`
	Events      []string          `json:"events"`
	Owner       struct {
		Login string `json:"login"`
		Type  string `json:"type"` // "User" or "Organization"
	} `json:"owner"`
}

// Shortfall is one thing the App lacks, in words an operator can act on.
type Shortfall struct {
	What string // "permission Checks: write" or "event check_suite"
	Has  string // what the App has instead: "read", "none", "not subscribed"
}

func (s Shortfall) String() string { return fmt.Sprintf("%s (the App has %s)", s.What, s.Has) }

// Missing compares the App with what Stagehand needs: the permissions it
// lacks or holds below the level needed, then the events it is not
// subscribed to, in the order of NeededPermissions and NeededEvents.
func (s AppSettings) Missing() []Shortfall {
	var out []Shortfall
	for _, p := range NeededPermissions {
		has := s.Permissions[p.Name]
		if levels[has] >= levels[p.Level] {
			continue
		}
		if has == "" {
			has = "none"
		}
		out = append(out, Shortfall{What: "permission " + p.String(), Has: has})
	}
	for _, e := range NeededEvents {
		if !slices.Contains(s.Events, e) {
			out = append(out, Shortfall{What: "event " + e, Has: "not subscribed"})
		}
	}
	return out
}

// SettingsURL is the App's permissions and events page under webURL
// (GitHub's web pages: https://github.com/ or https://HOST/), where a
// missing permission or event is added.
func (s AppSettings) SettingsURL(webURL string) string {
	base := strings.TrimSuffix(webURL, "/")
	if s.Owner.Type == "Organization" {
		return fmt.Sprintf("%s/organizations/%s/settings/apps/%s/permissions", base, url.PathEscape(s.Owner.Login), url.PathEscape(s.Slug))
	}
	return fmt.Sprintf("%s/settings/apps/%s/permissions", base, url.PathEscape(s.Slug))
}

// Settings asks GitHub for the App itself (GET /app, as the App).
func (a *App) Settings(ctx context.Context) (*AppSettings, error) {
	req, err := a.app.NewRequest(http.MethodGet, "app", nil)
	if err != nil {
		return nil, err
	}
	var s AppSettings
	if _, err := a.app.Do(ctx, req, &s); err != nil {
		return nil, fmt.Errorf("asking GitHub for the App (GET /app): %w", err)
	}
	return &s, nil
}
