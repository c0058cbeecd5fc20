package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"html/template"

	"github.com/stagehand-dev/stagehand/bot"
)

// HTML handlers: the list of programs, a program, its environments, an
// execution and a step's log.

func (d *Dashboard) servePrograms(w http.ResponseWriter, r *http.Request) {
	progs, err := d.loadPrograms(r.Context())
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "programs", pageData{Title: "Programs", Body: programsPage{Programs: progs, SignedIn: !d.Public}})
}

// programOf reads the program page of r's {owner}/{repo}.
func (d *Dashboard) programOf(r *http.Request) (programView, error) {
	p, perm, err := d.program(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return programView{}, err
	}
	return d.loadProgram(r.Context(), p, perm)
}

// executionOf reads the execution page of r's {owner}/{repo}/…/{number}.
func (d *Dashboard) executionOf(r *http.Request) (executionView, error) {
	p, _, err := d.program(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return executionView{}, err
	}
	return d.loadExecution(r.Context(), p, r.PathValue("number"))
}

func (d *Dashboard) serveProgram(w http.ResponseWriter, r *http.Request) {
	v, err := d.programOf(r)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "program", pageData{Title: v.Program.FullName(), Program: &v.Program, Body: v})
}

func (d *Dashboard) serveEnvironments(w http.ResponseWriter, r *http.Request) {
	v, err := d.programOf(r)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "environments", pageData{Title: "Environments of " + v.Program.FullName(), Program: &v.Program, Body: v})
}

// programsPage is the program list's data.
type programsPage struct {
	Programs []programSummary
	SignedIn bool // the list holds what the viewer may read
}

// executionPage is the execution page's data.
type executionPage struct {
	executionView
	Extra template.HTML
}

func (d *Dashboard) serveExecution(w http.ResponseWriter, r *http.Request) {
	v, err := d.executionOf(r)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	page := executionPage{executionView: v}
	if d.Extra != nil {
		page.Extra = d.Extra(r, v.Program, v.Execution, v.ExecutionDetail.Steps)
	}
	d.render(w, r, http.StatusOK, "execution", pageData{
		Title:   fmt.Sprintf("%s %s", v.Program.FullName(), v.Execution),
		Program: &v.Program,
		Refresh: v.Execution.State.Active(),
		Body:    page,
	})
}

// serveLog sends a step's whole log as a download.
func (d *Dashboard) serveLog(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n, err := parseNumber(r.PathValue("number"))
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	prog, _, err := d.program(ctx, r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	var ex bot.Execution
	err = d.view(ctx, func(tx readTx) (err error) {
		ex, err = d.execution(ctx, tx, prog, n)
		return err
	})
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	step := bot.StepName(r.PathValue("step"))
	steps := bot.StepsOf(ex.Pipeline)
	if !slices.Contains(steps, step) {
		names := make([]string, len(steps))
		for i, s := range steps {
			names[i] = string(s)
		}
		d.errorPage(w, r, notFound("%s has no step %q; its steps are %s.", ex, step, strings.Join(names, ", ")))
		return
	}
	f, err := os.Open(d.logFile(ex, step))
	if errors.Is(err, os.ErrNotExist) {
		d.errorPage(w, r, notFound("%s has no log for %s: the step has not run a command.", ex, step))
		return
	}
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	name := fmt.Sprintf("%s-%s-%d-%s.log", prog.Owner, prog.Repo, ex.Number, step)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", mimeAttachment(name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// mimeAttachment is a Content-Disposition for a download of name.
func mimeAttachment(name string) string {
	safe := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '/' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, safe, url.PathEscape(name))
}

func (d *Dashboard) serveUnknownPage(w http.ResponseWriter, r *http.Request) {
	d.errorPage(w, r, notFound("There is no page at %s. Pages are /programs/OWNER/REPO, …/environments and …/executions/N.", r.URL.Path))
}
