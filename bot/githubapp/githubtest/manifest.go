package githubtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// GitHub's App manifest flow (written from docs.github.com, "Registering a
// GitHub App from a manifest"), played with automatic approval:
//
//   - POST settings/apps/new?state=… (or organizations/ORG/settings/apps/new)
//     with a form field "manifest": GitHub shows the person signed in a
//     prefilled new-App form; the stand-in presses Create at once, registers
//     the App (its key pair, webhook secret, client id and secret, callback
//     URL) and sends the browser to the manifest's redirect_url with a code
//     and the state. Nobody signed in on its web pages: GitHub's sign-in page.
//   - POST app-manifests/{code}/conversions (in openapi-subset.json, so
//     schema-checked): the code, good once and for one hour, for the App's
//     id, slug, pem, webhook_secret, client_id and client_secret. A used or
//     expired code is refused with 422 and says which; an unknown one 404.
//   - GET app (outside the subset: written from the REST docs, "Get the
//     authenticated app"): the App, as its JWT says, with its permissions and
//     events.

// manifestCodeTTL is how long a manifest flow's code may be exchanged.
const manifestCodeTTL = time.Hour

// Messages of the conversion's refusals (the stand-in's words: GitHub's are
// not documented).
const (
	MsgManifestCodeUsed    = "This code has already been used to create the App's credentials"
	MsgManifestCodeExpired = "This code has expired: a code is good for one hour"
)

// appRecord is an App the stand-in knows: created by the manifest flow, or
// given by SetAppKey (with the defaults of Stagehand's App).
type appRecord struct {
	id          int64
	slug, name  string
	owner       string
	ownerType   string // "User" or "Organization"
	permissions map[string]string
	events      []string
	created     time.Time
}

// manifestCode is a code the manifest flow handed out.
type manifestCode struct {
	appID   int64
	expires time.Time
	used    bool
	// What the conversion answers (kept until the code is used).
	pem, webhookSecret, clientID, clientSecret string
}

// CreatedApp is what the stand-in knows of an App the manifest flow
// created, for tests: the manifest as posted and who owns it.
type CreatedApp struct {
	ID       int64
	Slug     string
	Owner    string
	Manifest map[string]any // the posted manifest, decoded
	State    string         // the state the form was posted with
}

// CreatedApps returns the Apps the manifest flow created, in order.
func (s *Server) CreatedApps() []CreatedApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.createdApps)
}

// ExpireManifestCodes makes every manifest code handed out so far older
// than an hour, as if the person took too long.
func (s *Server) ExpireManifestCodes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.manifestCodes {
		c.expires = s.now().Add(-time.Second)
	}
}

// SetAppSettings replaces what GET /app reports of App appID's permissions
// and events, as when its owner changes them on the settings page.
func (s *Server) SetAppSettings(appID int64, permissions map[string]string, events []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appRecordLocked(appID)
	a.permissions = maps.Clone(permissions)
	a.events = slices.Clone(events)
}

// appEvents are the events Stagehand's App subscribes to (README).
var appEvents = []string{"check_run", "check_suite", "issue_comment", "push", "repository"}

// appRecordLocked returns App id's record, made with Stagehand's defaults
// for an App given by SetAppKey. s.mu is held.
func (s *Server) appRecordLocked(id int64) *appRecord {
	if a := s.apps[id]; a != nil {
		return a
	}
	a := &appRecord{id: id, slug: "stagehand", name: "Stagehand", owner: "Codertocat", ownerType: "User",
		permissions: maps.Clone(appPermissions), events: slices.Clone(appEvents), created: s.now().UTC().Truncate(time.Second)}
	s.apps[id] = a
	return a
}

// newAppForm answers the new-App form a manifest is posted to.
func (s *Server) newAppForm(req *request) response {
	form, err := url.ParseQuery(string(req.body)) // serveHTTP has read the body
	if err != nil {
		return webPage(http.StatusBadRequest, "Bad request", "The form cannot be read: "+err.Error())
	}
	state := req.URL.Query().Get("state")
	var m struct {
		Name           string `json:"name"`
		URL            string `json:"url"`
		HookAttributes struct {
			URL string `json:"url"`
		} `json:"hook_attributes"`
		RedirectURL        string            `json:"redirect_url"`
		CallbackURLs       []string          `json:"callback_urls"`
		DefaultPermissions map[string]string `json:"default_permissions"`
		DefaultEvents      []string          `json:"default_events"`
	}
	raw := form.Get("manifest")
	var decoded map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil || json.Unmarshal([]byte(raw), &decoded) != nil {
		return webPage(http.StatusUnprocessableEntity, "Invalid GitHub App manifest", "The manifest is not JSON.")
	}
	switch {
	case m.URL == "":
		return webPage(http.StatusUnprocessableEntity, "Invalid GitHub App manifest", "url is required.")
	case m.RedirectURL == "":
		// GitHub would show the created App's page; the flow then has no way back.
		return webPage(http.StatusUnprocessableEntity, "Invalid GitHub App manifest", "redirect_url is required for the manifest flow.")
	}
	back, err := url.Parse(m.RedirectURL)
	if err != nil || back.Host == "" {
		return webPage(http.StatusUnprocessableEntity, "Invalid GitHub App manifest", "redirect_url is not an absolute URL.")
	}
	org, owner, ownerType := req.params["org"], "", "User"
	s.mu.Lock()
	owner = s.webUser
	s.mu.Unlock()
	if owner == "" {
		return webPage(http.StatusOK, "Sign in to GitHub", "to continue to register a new GitHub App.")
	}
	if org != "" {
		owner, ownerType = org, "Organization"
	}
	name := m.Name
	if name == "" {
		name = owner + "-app"
	}
	slug := strings.ToLower(strings.Join(strings.FieldsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}), "-"))
	pemBytes, key := GenerateAppKey(nil)
	s.mu.Lock()
	for _, a := range s.apps {
		if a.slug == slug {
			s.mu.Unlock()
			return webPage(http.StatusUnprocessableEntity, "Name is already in use", "A GitHub App named "+name+" exists already: choose another name.")
		}
	}
	s.nextID++
	id := s.nextID
	s.appKeys[id] = &key.PublicKey
	s.apps[id] = &appRecord{id: id, slug: slug, name: name, owner: owner, ownerType: ownerType,
		permissions: maps.Clone(m.DefaultPermissions), events: slices.Clone(m.DefaultEvents), created: s.now().UTC().Truncate(time.Second)}
	code := &manifestCode{appID: id, expires: s.now().Add(manifestCodeTTL), pem: string(pemBytes),
		webhookSecret: randomChars(40), clientID: "Iv23li" + randomChars(14), clientSecret: strings.ToLower(randomChars(40))}
	value := strings.ToLower(randomChars(20))
	s.manifestCodes[value] = code
	s.createdApps = append(s.createdApps, CreatedApp{ID: id, Slug: slug, Owner: owner, Manifest: decoded, State: state})
	s.mu.Unlock()
	if len(m.CallbackURLs) > 0 {
		s.SetOAuthApp(code.clientID, code.clientSecret, m.CallbackURLs[0])
	}
	return redirect(back, url.Values{"code": {value}, "state": {state}})
}

// convertManifest exchanges a code for the new App's credentials.
func (s *Server) convertManifest(req *request) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := s.manifestCodes[req.params["code"]]
	switch {
	case code == nil:
		return errorResponse(http.StatusNotFound, "Not Found", req.op.docURL)
	case code.used:
		return errorResponse(http.StatusUnprocessableEntity, MsgManifestCodeUsed, req.op.docURL)
	case !s.now().Before(code.expires):
		return errorResponse(http.StatusUnprocessableEntity, MsgManifestCodeExpired, req.op.docURL)
	}
	code.used = true
	body := s.appBodyLocked(s.apps[code.appID])
	body["client_id"] = code.clientID
	body["client_secret"] = code.clientSecret
	body["webhook_secret"] = code.webhookSecret
	body["pem"] = code.pem
	code.pem, code.clientSecret, code.webhookSecret = "", "", "" // handed out once
	return response{status: http.StatusCreated, body: body}
}

// getApp answers GET /app for the App whose JWT signs the request.
func (s *Server) getApp(req *request) response {
	appID, resp := s.appAuth(req.Request)
	if resp != nil {
		return *resp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return response{status: http.StatusOK, body: s.appBodyLocked(s.appRecordLocked(appID))}
}

// appBodyLocked is an App as GitHub describes it (the "integration"
// schema). s.mu is held.
func (s *Server) appBodyLocked(a *appRecord) map[string]any {
	created := a.created.Format(time.RFC3339)
	web := strings.TrimSuffix(s.URL(), "/")
	return map[string]any{
		"id": a.id, "slug": a.slug, "node_id": fmt.Sprintf("A_kwDO%d", a.id),
		"owner":        s.simpleUser(a.owner, userID(a.owner), a.ownerType),
		"name":         a.name,
		"description":  "",
		"external_url": web,
		"html_url":     web + "/apps/" + url.PathEscape(a.slug),
		"created_at":   created, "updated_at": created,
		"permissions": maps.Clone(a.permissions),
		"events":      slices.Clone(a.events),
	}
}

// manifestRoutes are the manifest flow's web pages and GET /app, for
// outsideSubsetRoutes.
var manifestRoutes = map[string]handler{
	"POST /settings/apps/new":                     (*Server).newAppForm,
	"POST /organizations/{org}/settings/apps/new": (*Server).newAppForm,
	"GET /app": (*Server).getApp,
	// Where setup sends the person to install the new App.
	"GET /apps/{slug}/installations/new": func(s *Server, req *request) response {
		return webPage(http.StatusOK, "Install "+req.params["slug"], "The stand-in has no repositories to choose from: its tests and the playground add installations themselves.")
	},
}
