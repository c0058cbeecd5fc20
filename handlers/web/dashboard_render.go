package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

//go:embed templates
var dashboardFS embed.FS

// dashboardPages are the page templates; each is parsed with the layout
// and the shared partials.
var dashboardPages = []string{"programs", "program", "environments", "history", "execution", "error", "signin", "audit", "restore"}

var (
	dashboardTemplates = parseDashboardTemplates()
	styleCSS           = mustRead("templates/style.css")
	styleVersion       = contentHash(styleCSS)
)

func mustRead(name string) []byte {
	b, err := dashboardFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

func contentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func parseDashboardTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"sha":          bot.ShortSHA,
		"digest":       bot.ShortDigest,
		"dur":          formatDuration,
		"when":         formatTime,
		"iso":          func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"day":          func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"bytes":        formatBytes,
		"mode":         func(m uint32) string { return fmt.Sprintf("%04o", m) },
		"progPath":     bot.ProgramPath,
		"envPath":      environmentsPath,
		"historyPath":  historyPath,
		"auditPath":    auditPath,
		"execPath":     bot.ExecutionPath,
		"event":        eventText,
		"styleVersion": func() string { return styleVersion },
		"executionList": func(p bot.Program, es []bot.Execution) executionListData {
			return executionListData{Program: p, Executions: es}
		},
		"deploymentOf": func(p bot.Program, d *bot.Deployment) deploymentData {
			return deploymentData{Program: p, Deployment: d}
		},
	}
	out := map[string]*template.Template{}
	for _, page := range dashboardPages {
		t := template.New(page).Funcs(funcs)
		template.Must(t.ParseFS(dashboardFS, "templates/layout.html", "templates/partials.html", "templates/"+page+".html"))
		out[page] = t
	}
	return out
}

// executionListData and deploymentData are the arguments of the
// "executions" and "deployment" partials.
type executionListData struct {
	Program    bot.Program
	Executions []bot.Execution
}

type deploymentData struct {
	Program    bot.Program
	Deployment *bot.Deployment
}

// pageData is what the layout renders around a page's Body.
type pageData struct {
	Title   string
	Program *bot.Program // the program the page is about, for the navigation
	Refresh bool         // reload every 5 seconds (an active execution)
	Body    any
	// Acts: the pages carry buttons that act (the playground's); the
	// footer does not call the dashboard read-only then. Set by render.
	Acts bool
	// Restores: production's history offers its approvers Restore
	// buttons. Set by render.
	Restores bool
	// Viewer is who is signed in ("" for nobody, or a public dashboard),
	// shown with a button to sign out. Set by renderPage.
	Viewer string
}

// errorBody is the error page's Body.
type errorBody struct {
	Status  int
	Text    string
	Message string
}

// render executes a page of the dashboard.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, data pageData) {
	data.Acts, data.Restores = d.Extra != nil, d.Restores != nil
	renderPage(w, r, d.logger(), status, page, data)
}

// renderPage executes a page into a buffer first, so a template failure is
// a clean 500 rather than half a page.
func renderPage(w http.ResponseWriter, r *http.Request, logger *slog.Logger, status int, page string, data pageData) {
	var buf bytes.Buffer
	if v := viewerFrom(r.Context()); v != nil && !v.bearer {
		data.Viewer = v.login
	}
	if err := dashboardTemplates[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		logger.ErrorContext(r.Context(), "rendering a dashboard page", "page", page, bot.LogError, err)
		http.Error(w, "Stagehand could not render this page; the error is in the server's log.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage renders err as an HTML page with its status.
func (d *Dashboard) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := d.statusOf(r, err)
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	d.render(w, r, status, "error", pageData{Title: text, Body: errorBody{Status: status, Text: text, Message: msg}})
}

func serveStyle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+styleVersion+`"`)
	if r.URL.Query().Get("v") == styleVersion {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, "style.css", time.Time{}, bytes.NewReader(styleCSS))
}

// formatDuration is a duration for people: 0s, 850ms, 42s, 3m05s, 2h03m.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatBytes is a size for people: 512 B, 1.5 KiB, 3.0 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// eventText says what an event was, without its time: "promoted by alice".
func eventText(ev bot.Event) string {
	actor := ev.Actor
	if actor == "" {
		actor = "someone"
	}
	switch ev.Kind {
	case bot.EventApprovedRollback:
		return "rollback approved by " + actor
	case bot.EventPromoteRequested:
		return "Promote Build clicked by " + actor
	case bot.EventPromoteDismissed:
		return "promotion dismissed by " + actor
	case bot.EventRefused:
		return "request by " + actor + " refused"
	case bot.EventPolicyOverride:
		return "break-glass override of the deploy windows and freezes by " + actor
	}
	return string(ev.Kind) + " by " + actor
}
