package main

import (
	"encoding/json"
	"html/template"
	"net/http"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// setupView is what the setup page shows.
type setupView struct {
	Title   string
	Problem string // a refusal or an error; the page says only that
	// The start page.
	Start        bool
	FormURL      string // GitHub's new-App form, with the state
	ManifestJSON string
	Manifest     githubapp.Manifest
	Owner        string
	Permissions  []githubapp.Permission
	Events       []string
	Flags        setupFlags
	// The end page.
	Done       bool
	InstallURL string
}

func (p *setupPage) startView() setupView {
	m, err := json.Marshal(p.manifest)
	if err != nil {
		panic("setup: the manifest does not encode: " + err.Error())
	}
	owner := "your own GitHub account"
	if p.flags.Org != "" {
		owner = "the organization " + p.flags.Org
	}
	return setupView{Title: "Create Stagehand's GitHub App", Start: true,
		FormURL: githubapp.ManifestFormURL(p.flags.WebURL, p.flags.Org, p.state), ManifestJSON: string(m), Manifest: p.manifest,
		Owner: owner, Permissions: githubapp.NeededPermissions, Events: githubapp.NeededEvents, Flags: p.flags}
}

var setupTemplate = template.Must(template.New("setup").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Stagehand setup</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .2rem}button{font-size:1.1rem;padding:.5rem 1rem}.problem{color:#a00}</style></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Problem}}<p class="problem" id="problem">{{.Problem}}</p>{{end}}
{{if .Start}}
<p>One click sends GitHub this App's description; GitHub shows it to you on a
prefilled form owned by {{.Owner}}, you press <b>Create</b>, and GitHub sends
you back here with a code that this setup exchanges for the App's credentials.</p>
<ul>
<li>Name: <code id="app-name">{{.Manifest.Name}}</code> (private: only its owner installs it). App names are unique on GitHub: if its form says this one is in use, change it there and press <b>Create</b> again (or run setup again with <code>--name</code>).</li>
<li>Webhook: <code id="webhook-url">{{.Manifest.HookAttributes.URL}}</code></li>
<li>Sign-in callback: <code id="callback-url">{{index .Manifest.CallbackURLs 0}}</code></li>
<li>Repository permissions:{{range .Permissions}}{{if not .Org}} <code>{{.Label}}: {{.Level}}</code>{{end}}{{end}};
organization permissions:{{range .Permissions}}{{if .Org}} <code>{{.Label}}: {{.Level}}</code>{{end}}{{end}}</li>
<li>Events:{{range .Events}} <code>{{.}}</code>{{end}}</li>
<li>Credentials: {{if .Flags.K8sSecret}}printed as the Kubernetes Secret <code>{{.Flags.K8sSecret}}</code> by the terminal that runs setup{{else}}stored in <code>{{.Flags.DataDir}}</code>, readable by you only{{end}}</li>
</ul>
<form method="post" action="{{.FormURL}}">
<input type="hidden" name="manifest" value="{{.ManifestJSON}}">
<button id="create" type="submit">Create the GitHub App on GitHub</button>
</form>
{{end}}
{{if .Done}}
<p id="done">GitHub created the App; {{if .Flags.K8sSecret}}its Kubernetes Secret is in the terminal that runs setup{{else}}its credentials are stored in <code>{{.Flags.DataDir}}</code>{{end}}.
The terminal shows how to start the server.</p>
<p><a id="install" href="{{.InstallURL}}">Install the App on your repositories</a></p>
{{end}}
</main></body></html>
`))

func renderSetupPage(w http.ResponseWriter, status int, v setupView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = setupTemplate.Execute(w, v)
}
