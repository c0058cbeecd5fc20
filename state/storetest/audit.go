package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testAudit checks the audit trail: records come back whole (times in any
// zone the same instant), newest first or oldest first, filtered by
// program, execution, actor, action and time, paged with After, and a
// rolled-back transaction leaves none.
func testAudit(t *testing.T, s bot.Store) {
	ctx := t.Context()
	in := []bot.AuditRecord{
		{At: t0, Actor: "alice", Action: bot.AuditStart, ProgramID: 1, ExecutionID: 10, Outcome: bot.AuditDone, Reason: "started", Delivery: "guid-1"},
		{At: t0.Add(time.Minute).In(cet), Actor: "Bob", Action: bot.AuditApprove, ProgramID: 1, ExecutionID: 10, Outcome: bot.AuditDone, Detail: "1 of 2 approvals"},
		{At: t0.Add(2 * time.Minute), Actor: "mallory", Action: "approve", ProgramID: 2, Outcome: bot.AuditRefused, Code: "not-approver", Reason: "no", Delivery: "guid-3"},
		{At: t0.Add(3 * time.Minute), Actor: "alice", Action: bot.AuditSignIn, Outcome: bot.AuditDone},
	}
	var want []bot.AuditRecord
	update(t, s, func(tx bot.Tx) error {
		want = want[:0]
		for _, r := range in {
			id, err := tx.AddAudit(ctx, r)
			if err != nil {
				return err
			}
			r.ID, r.At = id, r.At.UTC()
			want = append(want, r)
		}
		return nil
	})
	for i := 1; i < len(want); i++ {
		if want[i].ID <= want[i-1].ID {
			t.Fatalf("AddAudit ids %d then %d, want increasing", want[i-1].ID, want[i].ID)
		}
	}
	list := func(f bot.AuditFilter) []bot.AuditRecord {
		t.Helper()
		var got []bot.AuditRecord
		view(t, s, func(tx bot.Tx) (err error) {
			got, err = tx.AuditRecords(ctx, f)
			return err
		})
		return got
	}
	pick := func(idx ...int) []bot.AuditRecord {
		var out []bot.AuditRecord
		for _, i := range idx {
			out = append(out, want[i])
		}
		return out
	}
	tests := []struct {
		name string
		f    bot.AuditFilter
		want []bot.AuditRecord
	}{
		{"all, newest first", bot.AuditFilter{}, pick(3, 2, 1, 0)},
		{"oldest first", bot.AuditFilter{Oldest: true}, pick(0, 1, 2, 3)},
		{"program", bot.AuditFilter{ProgramIDs: []int64{1}}, pick(1, 0)},
		{"programs, none given", bot.AuditFilter{ProgramIDs: []int64{}}, nil},
		{"programs and none", bot.AuditFilter{ProgramIDs: []int64{2, 0}}, pick(3, 2)},
		{"programs and one's own", bot.AuditFilter{ProgramIDs: []int64{2}, OwnBy: "ALICE"}, pick(3, 2)},
		{"no programs but one's own", bot.AuditFilter{ProgramIDs: []int64{}, OwnBy: "alice"}, pick(3)},
		{"one's own of no program only", bot.AuditFilter{ProgramIDs: []int64{}, OwnBy: "bob"}, nil},
		{"execution", bot.AuditFilter{ExecutionID: 10}, pick(1, 0)},
		{"actor, any case", bot.AuditFilter{Actor: "bob"}, pick(1)},
		{"action", bot.AuditFilter{Action: bot.AuditApprove}, pick(2, 1)},
		{"since", bot.AuditFilter{Since: t0.Add(time.Minute)}, pick(3, 2, 1)},
		{"until", bot.AuditFilter{Until: t0.Add(time.Minute).In(cet)}, pick(0)},
		{"page 1", bot.AuditFilter{Limit: 2}, pick(3, 2)},
		{"page 2", bot.AuditFilter{Limit: 2, After: want[2].ID}, pick(1, 0)},
		{"oldest, page 2", bot.AuditFilter{Oldest: true, Limit: 3, After: want[2].ID}, pick(3)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.f), equateEmpty); diff != "" {
			t.Errorf("%s: AuditRecords(%+v) (-want +got):\n%s", tt.name, tt.f, diff)
		}
	}

	// A record of a transaction that rolls back is gone with it.
	errRollback := errors.New("roll back")
	err := s.Update(ctx, func(tx bot.Tx) error {
		if _, err := tx.AddAudit(ctx, bot.AuditRecord{Action: bot.AuditCancel, Outcome: bot.AuditDone}); err != nil {
			return err
		}
		return errRollback
	})
	if err == nil {
		t.Fatal("Update returned nil, want the rollback error")
	}
	if got := list(bot.AuditFilter{Action: bot.AuditCancel}); len(got) != 0 {
		t.Errorf("after a rollback: %+v, want no record", got)
	}
	// A zero time is the store's now; a record without an outcome is refused.
	update(t, s, func(tx bot.Tx) error {
		_, err := tx.AddAudit(ctx, bot.AuditRecord{Action: bot.AuditSignIn, Outcome: bot.AuditDone, Actor: "zed"})
		return err
	})
	if got := list(bot.AuditFilter{Actor: "zed"}); len(got) != 1 || got[0].At.IsZero() {
		t.Errorf("a record without a time: %+v, want one stamped", got)
	}
	err = s.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.AddAudit(ctx, bot.AuditRecord{Action: bot.AuditSignIn})
		return err
	})
	if err == nil {
		t.Error("AddAudit without an outcome: nil error")
	}
}

// testPruneAudit checks the audit retention's delete: PruneAudit removes
// the records older than its cutoff (At < before) and returns how many,
// leaves the others and what is appended after, and refuses no cutoff.
func testPruneAudit(t *testing.T, s bot.Store) {
	ctx := t.Context()
	var want []bot.AuditRecord
	update(t, s, func(tx bot.Tx) error {
		want = want[:0]
		for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour).In(cet), t0.Add(3 * time.Hour)} {
			r := bot.AuditRecord{At: at, Actor: "alice", Action: bot.AuditApprove, ProgramID: int64(i + 1), Outcome: bot.AuditDone}
			id, err := tx.AddAudit(ctx, r)
			if err != nil {
				return err
			}
			r.ID, r.At = id, at.UTC()
			want = append(want, r)
		}
		return nil
	})
	prune := func(before time.Time) int {
		t.Helper()
		var n int
		update(t, s, func(tx bot.Tx) (err error) {
			n, err = tx.PruneAudit(ctx, before)
			return err
		})
		return n
	}
	list := func() []bot.AuditRecord {
		t.Helper()
		var got []bot.AuditRecord
		view(t, s, func(tx bot.Tx) (err error) {
			got, err = tx.AuditRecords(ctx, bot.AuditFilter{Oldest: true})
			return err
		})
		return got
	}
	tests := []struct {
		name   string
		before time.Time
		want   int
		left   []bot.AuditRecord
	}{
		{"before every record", t0, 0, want},
		{"the two oldest (the second's time is not before)", t0.Add(time.Hour).Add(time.Microsecond).In(cet), 2, want[2:]},
		{"again", t0.Add(time.Hour), 0, want[2:]},
		{"up to but not the newest", t0.Add(3 * time.Hour), 1, want[3:]},
	}
	for _, tt := range tests {
		if got := prune(tt.before); got != tt.want {
			t.Errorf("%s: PruneAudit(%s) = %d, want %d", tt.name, tt.before, got, tt.want)
		}
		if diff := cmp.Diff(tt.left, list(), equateEmpty); diff != "" {
			t.Errorf("%s: records left (-want +got):\n%s", tt.name, diff)
		}
	}
	// The store appends as before after a prune (its cutoff is not left
	// behind to matter), and a prune without a cutoff is refused.
	update(t, s, func(tx bot.Tx) error {
		_, err := tx.AddAudit(ctx, bot.AuditRecord{At: t0, Action: bot.AuditSignIn, Outcome: bot.AuditDone, Actor: "late"})
		return err
	})
	if got := list(); len(got) != 2 || got[1].Actor != "late" {
		t.Errorf("after the prunes and an append: %+v, want the newest record and the appended one", got)
	}
	if err := s.Update(ctx, func(tx bot.Tx) error { _, err := tx.PruneAudit(ctx, time.Time{}); return err }); err == nil {
		t.Error("PruneAudit without a cutoff: nil error")
	}
}
