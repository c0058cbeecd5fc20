package state

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// AuditExportColumns are the columns (csv) and fields (jsonl) of
// ExportAudit, in order.
const AuditExportColumns = "id, at, actor, action, outcome, program, execution, code, reason, detail, delivery"

// AuditExportRecord is one record as ExportAudit writes it.
type AuditExportRecord struct {
	ID        int64  `json:"id"`
	At        string `json:"at"` // RFC 3339 with nanoseconds, UTC
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Outcome   string `json:"outcome"`
	Program   string `json:"program"`   // owner/repo; empty: none
	Execution int    `json:"execution"` // number; 0: none
	Code      string `json:"code"`
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
	Delivery  string `json:"delivery"`
}

// Row is the record's csv fields, in AuditExportColumns' order.
func (r AuditExportRecord) Row() []string {
	return []string{strconv.FormatInt(r.ID, 10), r.At, r.Actor, r.Action, r.Outcome, r.Program, strconv.Itoa(r.Execution), r.Code, r.Reason, r.Detail, r.Delivery}
}

// ExportAudit writes the audit records f selects to w, oldest first, a
// page at a time, as format "jsonl" (one JSON object a line) or "csv"
// (RFC 4180, a header line first). A nil store writes no records (csv: the
// header). It only reads.
func ExportAudit(ctx context.Context, s bot.Viewer, f bot.AuditFilter, format string, w io.Writer) error {
	var write func(AuditExportRecord) error
	var flush func() error
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(strings.Split(AuditExportColumns, ", ")); err != nil {
			return err
		}
		write = func(r AuditExportRecord) error { return cw.Write(r.Row()) }
		flush = func() error { cw.Flush(); return cw.Error() }
	case "jsonl":
		enc := json.NewEncoder(w)
		write = func(r AuditExportRecord) error { return enc.Encode(r) }
		flush = func() error { return nil }
	default:
		return fmt.Errorf("export format %q: use jsonl or csv", format)
	}
	if s == nil {
		return flush()
	}
	f.Oldest, f.After, f.Limit = true, 0, 1000
	programs := map[int64]string{}
	numbers := map[int64]int{}
	for {
		var page []bot.AuditRecord
		err := s.View(ctx, func(tx bot.Tx) error {
			if len(programs) == 0 {
				ps, err := tx.Programs(ctx)
				if err != nil {
					return err
				}
				for _, p := range ps {
					programs[p.ID] = p.FullName()
				}
			}
			var err error
			if page, err = tx.AuditRecords(ctx, f); err != nil {
				return err
			}
			for _, r := range page {
				if _, ok := numbers[r.ExecutionID]; r.ExecutionID == 0 || ok {
					continue
				}
				ex, err := tx.Execution(ctx, r.ExecutionID)
				if err != nil && !errors.Is(err, bot.ErrNotFound) {
					return err
				}
				numbers[r.ExecutionID] = ex.Number
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading the audit trail: %w", err)
		}
		for _, r := range page {
			rec := AuditExportRecord{ID: r.ID, At: r.At.UTC().Format(time.RFC3339Nano), Actor: r.Actor, Action: string(r.Action),
				Outcome: string(r.Outcome), Program: programs[r.ProgramID], Execution: numbers[r.ExecutionID],
				Code: r.Code, Reason: r.Reason, Detail: r.Detail, Delivery: r.Delivery}
			if err := write(rec); err != nil {
				return err
			}
		}
		if len(page) < f.Limit {
			return flush()
		}
		f.After = page[len(page)-1].ID
	}
}
