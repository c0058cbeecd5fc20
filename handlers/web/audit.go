package web

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The audit trail on the dashboard (…/audit, per program) and in the API
// (GET /api/v1/audit). A viewer sees the records of the programs they may
// read, and (in the API, without ?program=) their own sign-ins, newest
// first, a page at a time; the cursor is opaque.

// Limits of the audit listings.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// APIAuditRecord is one record of the audit trail.
type APIAuditRecord struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"` // done or refused
	Program string    `json:"program,omitempty"`
	// Execution is the execution's number (0: none).
	Execution int    `json:"execution,omitempty"`
	Code      string `json:"code,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Delivery  string `json:"delivery,omitempty"`
	HTMLPath  string `json:"html_path,omitempty"`
}

// APIAudit is a page of the audit trail; NextCursor, when set, asks for
// the next (older) page.
type APIAudit struct {
	Records    []APIAuditRecord `json:"records"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// auditPage is a page of records with what the views show of them.
type auditPage struct {
	Program *bot.Program // the page's program, or nil (the API across programs)
	Records []auditRow
	Next    string // the cursor of the next page ("": none)
	Query   string // the page's filters, to carry to the next page
}

// auditRow is a record with its program and execution number.
type auditRow struct {
	bot.AuditRecord
	Program bot.Program
	Number  int
}

// encodeAuditCursor and decodeAuditCursor make the position in a listing opaque.
func encodeAuditCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a" + strconv.FormatInt(id, 10)))
}

func decodeAuditCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	id, perr := int64(0), errors.New("bad cursor")
	if err == nil && strings.HasPrefix(string(b), "a") {
		id, perr = strconv.ParseInt(string(b[1:]), 10, 64)
	}
	if perr != nil || id <= 0 {
		return 0, badRequest("cursor %q is not one Stagehand gave: use next_cursor of the page before", s)
	}
	return id, nil
}

// queryTime reads the time of parameter name: RFC 3339, or a date
// (midnight UTC), as stagehand audit export reads its --since and --until.
func queryTime(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, badRequest("%s %q is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a date (2026-12-01)", name, s)
}

// auditFilter reads ?execution=, ?actor=, ?action=, ?since=, ?until=,
// ?cursor= and ?limit= (the program is the caller's).
func auditFilter(r *http.Request) (bot.AuditFilter, int, error) {
	q := r.URL.Query()
	f := bot.AuditFilter{Actor: q.Get("actor"), Action: bot.AuditAction(q.Get("action")), Limit: defaultAuditLimit}
	number := 0
	if s := q.Get("execution"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return f, 0, badRequest("execution %q is not an execution number", s)
		}
		number = n
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(t.name); s != "" {
			v, err := queryTime(t.name, s)
			if err != nil {
				return f, 0, err
			}
			*t.dst = v
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, 0, badRequest("until must come after since")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			return f, 0, badRequest("limit %q: use a number from 1 to %d", s, maxAuditLimit)
		}
		f.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		id, err := decodeAuditCursor(s)
		if err != nil {
			return f, 0, err
		}
		f.After = id
	}
	return f, number, nil
}

// auditOf reads a page of the audit trail: of program p when it is not
// nil (the caller checked the viewer may read it), else of every program
// the viewer may read.
func (d *Dashboard) auditOf(r *http.Request, p *bot.Program) (auditPage, error) {
	ctx := r.Context()
	f, number, err := auditFilter(r)
	if err != nil {
		return auditPage{}, err
	}
	progs := map[int64]bot.Program{}
	if p != nil {
		progs[p.ID] = *p
	} else {
		if number != 0 {
			return auditPage{}, badRequest("execution needs program (owner/repo)")
		}
		readable, err := d.readablePrograms(ctx)
		if err != nil {
			return auditPage{}, err
		}
		for _, rp := range readable {
			progs[rp.ID] = rp
		}
	}
	if v := viewerFrom(ctx); v != nil && p == nil {
		f.OwnBy = v.login // and their own sign-ins, which are of no program
	}
	f.ProgramIDs = make([]int64, 0, len(progs))
	for id := range progs {
		f.ProgramIDs = append(f.ProgramIDs, id)
	}
	limit := f.Limit
	f.Limit++ // one more says whether there is a next page
	page := auditPage{Program: p}
	err = d.view(ctx, func(tx readTx) error {
		if number != 0 {
			ex, err := tx.ExecutionByNumber(ctx, p.ID, number)
			if errors.Is(err, bot.ErrNotFound) {
				return notFound("%s has no execution #%d", p.FullName(), number)
			}
			if err != nil {
				return err
			}
			f.ExecutionID = ex.ID
		}
		rs, err := tx.AuditRecords(ctx, f)
		if err != nil {
			return err
		}
		if len(rs) > limit {
			rs = rs[:limit]
			page.Next = encodeAuditCursor(rs[limit-1].ID)
		}
		numbers := map[int64]int{}
		for _, rec := range rs {
			row := auditRow{AuditRecord: rec, Program: progs[rec.ProgramID]}
			if rec.ExecutionID != 0 {
				n, ok := numbers[rec.ExecutionID]
				if !ok {
					ex, err := tx.Execution(ctx, rec.ExecutionID)
					if err != nil && !errors.Is(err, bot.ErrNotFound) {
						return err
					}
					n, numbers[rec.ExecutionID] = ex.Number, ex.Number
				}
				row.Number = n
			}
			page.Records = append(page.Records, row)
		}
		return nil
	})
	q := r.URL.Query()
	q.Del("cursor")
	page.Query = q.Encode()
	return page, err
}

// apiAudit is GET /api/v1/audit[?program=owner/repo&execution=N&actor=&action=&since=&until=&cursor=&limit=].
func (d *Dashboard) apiAudit(w http.ResponseWriter, r *http.Request) {
	var p *bot.Program
	if name := r.URL.Query().Get("program"); name != "" {
		owner, repo, ok := strings.Cut(name, "/")
		if !ok || owner == "" || repo == "" {
			d.apiError(w, r, badRequest("program %q: use owner/repo", name))
			return
		}
		prog, _, err := d.program(r.Context(), owner, repo)
		if err != nil {
			d.apiError(w, r, err)
			return
		}
		p = &prog
	}
	page, err := d.auditOf(r, p)
	if err != nil {
		d.apiError(w, r, err)
		return
	}
	out := APIAudit{Records: make([]APIAuditRecord, 0, len(page.Records)), NextCursor: page.Next}
	for _, row := range page.Records {
		rec := APIAuditRecord{ID: row.ID, At: row.At.UTC(), Actor: row.Actor, Action: string(row.Action), Outcome: string(row.Outcome),
			Execution: row.Number, Code: row.Code, Reason: row.Reason, Detail: row.Detail, Delivery: row.Delivery}
		if row.ProgramID != 0 {
			rec.Program = row.Program.FullName()
			if row.Number != 0 {
				rec.HTMLPath = bot.ExecutionPath(row.Program, row.Number)
			}
		}
		out.Records = append(out.Records, rec)
	}
	writeJSON(w, http.StatusOK, out)
}

// serveAudit is a program's audit page, newest first.
func (d *Dashboard) serveAudit(w http.ResponseWriter, r *http.Request) {
	p, _, err := d.program(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	page, err := d.auditOf(r, &p)
	if err != nil {
		d.errorPage(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "audit", pageData{Title: "Audit trail of " + p.FullName(), Program: &p, Body: page})
}

// auditPath is a program's audit page.
func auditPath(p bot.Program) string { return bot.ProgramPath(p) + "/audit" }
