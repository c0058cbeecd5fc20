package state

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state/storetest"
)

func openTestSQLite(t *testing.T, path string, opts ...Option) *SQLite {
	t.Helper()
	s, err := OpenSQLite(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bot.Store {
		return openTestSQLite(t, filepath.Join(t.TempDir(), "state.db"))
	})
}

// TestSQLiteTwoHandles runs the suite against two handles on one file, used
// in turn, as two processes would: the locking that keeps read-decide-write
// atomic must be SQLite's, not the handle's connection pool.
func TestSQLiteTwoHandles(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bot.Store {
		path := filepath.Join(t.TempDir(), "state.db")
		return &alternating{stores: [2]*SQLite{openTestSQLite(t, path), openTestSQLite(t, path)}}
	})
}

// alternating is a bot.Store that sends each transaction to the next of its
// stores.
type alternating struct {
	stores [2]*SQLite
	n      atomic.Uint64
}

func (a *alternating) next() *SQLite { return a.stores[a.n.Add(1)%2] }

func (a *alternating) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	return a.next().Update(ctx, fn)
}

func (a *alternating) View(ctx context.Context, fn func(tx bot.Tx) error) error {
	return a.next().View(ctx, fn)
}

func (a *alternating) Ping(ctx context.Context) error {
	return errors.Join(a.stores[0].Ping(ctx), a.stores[1].Ping(ctx))
}

func (a *alternating) Close() error { return nil } // openTestSQLite closes them

func TestSQLiteReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	clock := fixedClock{time.Date(2026, 11, 25, 8, 0, 0, 1, time.UTC)}

	s, err := OpenSQLite(ctx, path, WithClock(clock))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	var e bot.Execution
	err = s.Update(ctx, func(tx bot.Tx) error {
		p, err := tx.EnsureProgram(ctx, 1, bot.Repository{ID: 101, Owner: "octo", Name: "hello"})
		if err != nil {
			return err
		}
		e, err = tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionRunning})
		return err
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	before := appliedMigrations(t, s)
	if len(before) == 0 {
		t.Fatalf("schema_migrations is empty after the first open")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openTestSQLite(t, path, WithClock(fixedClock{clock.t.Add(time.Hour)}))
	var got bot.Execution
	err = s.View(ctx, func(tx bot.Tx) (err error) {
		got, err = tx.Execution(ctx, e.ID)
		return err
	})
	if err != nil {
		t.Fatalf("View after reopening: %v", err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("execution after reopening (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, appliedMigrations(t, s)); diff != "" {
		t.Errorf("schema_migrations after reopening (-before +after):\n%s", diff)
	}
}

// appliedMigrations lists schema_migrations as "version name applied_at".
func appliedMigrations(t *testing.T, s *SQLite) []string {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var version, appliedAt int64
		var name string
		if err := rows.Scan(&version, &name, &appliedAt); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		out = append(out, time.Unix(0, appliedAt).UTC().Format(time.RFC3339Nano)+" "+name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return out
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func TestSQLitePragmas(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "state.db"))
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"synchronous", "1"}, // NORMAL
	}
	for _, tc := range tests {
		for name, db := range map[string]queryRower{"write": s.write, "read": s.read} {
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("%s pool: PRAGMA %s: %v", name, tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("%s pool: PRAGMA %s = %q, want %q", name, tc.pragma, got, tc.want)
			}
		}
	}
	var queryOnly string
	if err := s.read.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&queryOnly); err != nil || queryOnly != "1" {
		t.Errorf("read pool: PRAGMA query_only = %q, %v; want 1", queryOnly, err)
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// TestSQLiteClock checks the times the store stamps itself, and that times
// keep their nanoseconds.
func TestSQLiteClock(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "state.db"), WithClock(fixedClock{now}))

	type stamped struct {
		Installation, Execution, TriggerRecord, Event, Delivery, Explicit time.Time
	}
	var got stamped
	explicit := time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.UTC)
	err := s.Update(ctx, func(tx bot.Tx) error {
		if err := tx.PutInstallation(ctx, bot.Installation{ID: 1, Account: "octo"}); err != nil {
			return err
		}
		p, err := tx.EnsureProgram(ctx, 1, bot.Repository{ID: 101, Owner: "octo", Name: "hello"})
		if err != nil {
			return err
		}
		e, err := tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, StartedAt: explicit})
		if err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, bot.Event{ExecutionID: e.ID, Actor: "mona", Kind: "triggered"}); err != nil {
			return err
		}
		if err := tx.AddTriggerRecord(ctx, bot.TriggerRecord{ProgramID: p.ID, Commit: "c1"}); err != nil {
			return err
		}
		_, err = tx.MarkDelivery(ctx, bot.Delivery{GUID: "guid-1", Event: "push"})
		return err
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	err = s.View(ctx, func(tx bot.Tx) error {
		inst, err := tx.Installation(ctx, 1)
		if err != nil {
			return err
		}
		got.Installation = inst.UpdatedAt
		e, err := tx.ExecutionByNumber(ctx, 1, 1)
		if err != nil {
			return err
		}
		got.Execution, got.Explicit = e.CreatedAt, e.StartedAt
		rs, err := tx.TriggerRecords(ctx, 1, "c1")
		if err != nil || len(rs) != 1 {
			return errors.Join(err, errors.New("want one trigger record"))
		}
		got.TriggerRecord = rs[0].CreatedAt
		evs, err := tx.Events(ctx, e.ID)
		if err != nil || len(evs) != 1 {
			return errors.Join(err, errors.New("want one event"))
		}
		got.Event = evs[0].At
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	var processedAt int64
	if err := s.read.QueryRowContext(ctx, `SELECT processed_at FROM processed_deliveries WHERE guid = 'guid-1'`).Scan(&processedAt); err != nil {
		t.Fatalf("read processed_at: %v", err)
	}
	got.Delivery = time.Unix(0, processedAt)

	want := stamped{Installation: now, Execution: now, TriggerRecord: now, Event: now, Delivery: now, Explicit: explicit}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	if got.Execution.Location() != time.UTC {
		t.Errorf("times come back in %s, want UTC", got.Execution.Location())
	}
}

func TestSQLiteTimeOutOfRange(t *testing.T) {
	ctx := t.Context()
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "state.db"))
	err := s.Update(ctx, func(tx bot.Tx) error {
		return tx.PutInstallation(ctx, bot.Installation{ID: 1, UpdatedAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})
	})
	if err == nil {
		t.Errorf("PutInstallation in the year 3000: no error")
	}
}

// TestSQLitePathEscaping opens a file whose name has the characters a SQLite
// URI gives a meaning to.
func TestSQLitePathEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.db")
	openTestSQLite(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenSQLiteRefusesMemory(t *testing.T) {
	for _, path := range []string{"", ":memory:"} {
		if s, err := OpenSQLite(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("OpenSQLite(%q): no error", path)
		}
	}
}

// TestSQLiteExecutionsToReportUsesIndex checks that the reporter's query
// reads the partial index rather than scanning every execution.
func TestSQLiteExecutionsToReportUsesIndex(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "state.db"))
	for _, query := range []string{selectExecutionsToReport, selectExecutionsToReport + " LIMIT 10"} {
		rows, err := s.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "executions_to_report") || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("plan of %q = %q, want the index executions_to_report and no sort", query, got)
		}
	}
}
