package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/state"
)

// TestAuditRetention: the retention pass with --audit-retention 0 (the
// default) removes no audit record, however old; with 30d it removes the
// records older than 30 days only, in one pass, and appends Stagehand's
// record of how many it removed from before which time; a second pass
// removes nothing more and appends nothing.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ages := []time.Duration{400 * 24 * time.Hour, 31 * 24 * time.Hour, 30*24*time.Hour + time.Second, 29 * 24 * time.Hour, time.Hour}
	open := func(t *testing.T) bot.Store {
		store, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		err = store.Update(ctx, func(tx bot.Tx) error {
			for i, age := range ages {
				if _, err := tx.AddAudit(ctx, bot.AuditRecord{At: now.Add(-age), Actor: fmt.Sprintf("p%d", i), Action: bot.AuditApprove,
					ProgramID: 1, ExecutionID: int64(i + 1), Outcome: bot.AuditDone}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return store
	}
	records := func(t *testing.T, store bot.Store) []bot.AuditRecord {
		var rs []bot.AuditRecord
		if err := store.View(ctx, func(tx bot.Tx) (err error) {
			rs, err = tx.AuditRecords(ctx, bot.AuditFilter{Oldest: true})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	actors := func(rs []bot.AuditRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Actor)
		}
		return out
	}
	summary := bot.AuditRecord{At: now, Action: bot.AuditPrune, Outcome: bot.AuditDone,
		Reason: "audit retention removed 3 records from before 2026-11-05T12:00:00Z", Detail: "--audit-retention 30d"}
	tests := []struct {
		name      string
		auditAge  time.Duration
		retention time.Duration // --retention, which does not matter
		wantStats worker.RetentionStats
		want      []bot.AuditRecord // the records after the first pass, beside the actors
		wantLeft  []string
	}{
		{name: "0 keeps every record", auditAge: 0, retention: 30 * 24 * time.Hour, wantLeft: []string{"p0", "p1", "p2", "p3", "p4"}},
		{name: "30d", auditAge: 30 * 24 * time.Hour, retention: 30 * 24 * time.Hour, wantStats: worker.RetentionStats{Audit: 3},
			want: []bot.AuditRecord{summary}, wantLeft: []string{"p3", "p4", ""}},
		{name: "30d with --retention 0", auditAge: 30 * 24 * time.Hour, wantStats: worker.RetentionStats{Audit: 3},
			want: []bot.AuditRecord{summary}, wantLeft: []string{"p3", "p4", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := open(t)
			r := &worker.Retainer{Store: store, DataDir: t.TempDir(), Clock: fixedClock{now}, Logger: slog.New(slog.DiscardHandler),
				Policy: bot.Retention{Age: tt.retention}, AuditAge: tt.auditAge}
			st, err := r.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantStats, st); diff != "" {
				t.Errorf("pass (-want +got):\n%s", diff)
			}
			got := records(t, store)
			if diff := cmp.Diff(tt.wantLeft, actors(got)); diff != "" {
				t.Errorf("records left, by actor (-want +got):\n%s", diff)
			}
			var stagehands []bot.AuditRecord
			for _, rec := range got {
				if rec.Actor == "" {
					stagehands = append(stagehands, rec)
				}
			}
			if diff := cmp.Diff(tt.want, stagehands, cmpopts.IgnoreFields(bot.AuditRecord{}, "ID"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Stagehand's records (-want +got):\n%s", diff)
			}
			// A second pass finds nothing older left, and says nothing.
			st, err = r.RunOnce(ctx)
			if err != nil || st.Audit != 0 {
				t.Errorf("a second pass = %+v, %v; want no record removed", st, err)
			}
			if diff := cmp.Diff(tt.wantLeft, actors(records(t, store))); diff != "" {
				t.Errorf("records after a second pass, by actor (-want +got):\n%s", diff)
			}
		})
	}
}
