package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

// exportAudit runs stagehand audit export with args and env and returns
// stdout.
func exportAudit(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	err := run(context.Background(), append([]string{"audit", "export"}, args...), func(k string) string { return env[k] }, out, errOut)
	if err != nil {
		t.Fatalf("stagehand audit export %v: %v\n%s", args, err, errOut)
	}
	return out.String()
}

// TestAuditExportEmptyDataDir: on a data directory without a database (or
// none at all) the export writes nothing (jsonl) or only the header (csv),
// exits 0 and creates nothing.
func TestAuditExportEmptyDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if got := exportAudit(t, nil, "--since", "2026-01-01", "--format", "jsonl", "--data-dir", dir); got != "" {
		t.Errorf("jsonl of an empty data dir: %q", got)
	}
	if got := exportAudit(t, map[string]string{"STAGEHAND_DATA_DIR": dir}, "--since", "2026-01-01", "--format", "csv"); got != auditCSVHeader+"\n" {
		t.Errorf("csv of an empty data dir: %q", got)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the export made the data dir: %v", err)
	}
}

const auditCSVHeader = "id,at,actor,action,outcome,program,execution,code,reason,detail,delivery"

// TestAuditExportRoundTrip: what the export writes, in both formats, parses
// back to the stored records, oldest first, within --since and --until;
// awkward words (commas, quotes, new lines, non-ASCII) survive.
func TestAuditExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := state.OpenSQLite(ctx, filepath.Join(dir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 123456789, time.UTC)
	var want []state.AuditExportRecord
	err = s.Update(ctx, func(tx bot.Tx) error {
		prog, err := tx.EnsureProgram(ctx, 7, bot.Repository{ID: 70, Owner: "acme", Name: "app", DefaultBranch: "main"})
		if err != nil {
			return err
		}
		ex, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: prog.ID, Pipeline: bot.StageOnly, Commit: strings.Repeat("a", 40), Branch: "main", State: bot.ExecutionQueued, CreatedAt: t0})
		if err != nil {
			return err
		}
		recs := []bot.AuditRecord{
			{At: t0.Add(-time.Hour), Actor: "early", Action: bot.AuditStart, ProgramID: prog.ID, Outcome: bot.AuditDone},
			{At: t0, Actor: "alice", Action: bot.AuditStart, ProgramID: prog.ID, ExecutionID: ex.ID, Outcome: bot.AuditDone, Reason: "started, \"quoted\"\nsecond line ✓", Detail: "stage-only", Delivery: "guid-1"},
			{At: t0.Add(time.Minute), Actor: "mallory", Action: "approve", ProgramID: prog.ID, ExecutionID: ex.ID, Outcome: bot.AuditRefused, Code: "not-approver", Reason: "@mallory is not one of the production approvers (bob)", Delivery: "guid-2"},
			{At: t0.Add(2 * time.Minute), Actor: "zed", Action: bot.AuditSignIn, Outcome: bot.AuditDone, Reason: "signed in"},
			{At: t0.Add(24 * time.Hour), Actor: "late", Action: bot.AuditCancel, ProgramID: prog.ID, Outcome: bot.AuditDone},
		}
		for i, r := range recs {
			id, err := tx.AddAudit(ctx, r)
			if err != nil {
				return err
			}
			if i == 0 || i == len(recs)-1 {
				continue // outside --since/--until
			}
			w := state.AuditExportRecord{ID: id, At: r.At.UTC().Format(time.RFC3339Nano), Actor: r.Actor, Action: string(r.Action), Outcome: string(r.Outcome),
				Code: r.Code, Reason: r.Reason, Detail: r.Detail, Delivery: r.Delivery}
			if r.ProgramID != 0 {
				w.Program = "acme/app"
			}
			if r.ExecutionID != 0 {
				w.Execution = ex.Number
			}
			want = append(want, w)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	window := []string{"--since", t0.Format(time.RFC3339Nano), "--until", "2026-12-02"}

	var fromJSON []state.AuditExportRecord
	dec := json.NewDecoder(strings.NewReader(exportAudit(t, nil, append(window, "--format", "jsonl", "--data-dir", dir)...)))
	dec.DisallowUnknownFields()
	for dec.More() {
		var r state.AuditExportRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		fromJSON = append(fromJSON, r)
	}
	if diff := cmp.Diff(want, fromJSON); diff != "" {
		t.Errorf("jsonl (-want +got):\n%s", diff)
	}

	rows, err := csv.NewReader(strings.NewReader(exportAudit(t, map[string]string{"STAGEHAND_DATA_DIR": dir}, append(window, "--format", "csv")...))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != auditCSVHeader {
		t.Fatalf("csv header: %v", rows)
	}
	var fromCSV []state.AuditExportRecord
	for _, row := range rows[1:] {
		id, _ := strconv.ParseInt(row[0], 10, 64)
		n, _ := strconv.Atoi(row[6])
		fromCSV = append(fromCSV, state.AuditExportRecord{ID: id, At: row[1], Actor: row[2], Action: row[3], Outcome: row[4], Program: row[5],
			Execution: n, Code: row[7], Reason: row[8], Detail: row[9], Delivery: row[10]})
	}
	if diff := cmp.Diff(want, fromCSV); diff != "" {
		t.Errorf("csv (-want +got):\n%s", diff)
	}
}

// TestAuditExportUsage: --help explains; a missing --since or an unknown
// format is a usage error (exit 2).
func TestAuditExportUsage(t *testing.T) {
	errOut := &bytes.Buffer{}
	if err := run(context.Background(), []string{"audit", "export", "--help"}, func(string) string { return "" }, &bytes.Buffer{}, errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--since", "--format", "--data-dir", "--database-url", "STAGEHAND_DATA_DIR", "never"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("--help does not say %q:\n%s", want, errOut)
		}
	}
	for _, args := range [][]string{{"--format", "csv"}, {"--since", "2026-01-01", "--format", "xml"}, {"--since", "yesterday"}} {
		err := run(context.Background(), append([]string{"audit", "export", "--data-dir", t.TempDir()}, args...), func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
		var exit exitError
		if !errors.As(err, &exit) || exit.code != 2 {
			t.Errorf("audit export %v: %v, want exit 2", args, err)
		}
	}
}
