package state

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// When the attack tests' records were made: old, a day before the cutoff
// they record; recent, a day after it.
var (
	auditOld    = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	auditCutoff = auditOld.Add(24 * time.Hour)
	auditRecent = auditCutoff.Add(24 * time.Hour)
)

// addAttackAudits appends an old and a recent record to s.
func addAttackAudits(t *testing.T, s bot.Store) {
	t.Helper()
	err := s.Update(t.Context(), func(tx bot.Tx) error {
		for _, r := range []bot.AuditRecord{
			{At: auditOld, Actor: "old", Action: bot.AuditSignIn, Outcome: bot.AuditDone},
			{At: auditRecent, Actor: "recent", Action: bot.AuditSignIn, Outcome: bot.AuditDone},
		} {
			if _, err := tx.AddAudit(t.Context(), r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// auditActors lists the actors of s's records, oldest first.
func auditActors(t *testing.T, s bot.Store) []string {
	t.Helper()
	var actors []string
	err := s.View(t.Context(), func(tx bot.Tx) error {
		rs, err := tx.AuditRecords(t.Context(), bot.AuditFilter{Oldest: true})
		for _, r := range rs {
			actors = append(actors, r.Actor)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return actors
}

// testAuditAttacks runs statements straight against the database, as
// someone with its credentials but not its owner's rights would: UPDATE
// is always refused; DELETE is refused when no cutoff is recorded (the
// table's state outside the audit retention's transaction, before and
// after a PruneAudit), and for a record newer than a recorded cutoff.
// cutoff is the SQL literal of a time in the store's representation.
func testAuditAttacks(t *testing.T, s bot.Store, exec func(q string) error, cutoff func(time.Time) string) {
	addAttackAudits(t, s)
	refused := func(when, q string) {
		t.Helper()
		if err := exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %s: %v, want refused as append-only", when, q, err)
		}
	}
	attacks := []string{
		`UPDATE audit_records SET actor = 'mallory'`,
		`DELETE FROM audit_records`,
		`DELETE FROM audit_records WHERE actor = 'old'`,
	}
	for _, q := range attacks {
		refused("no cutoff recorded", q)
	}
	// A prune leaves no cutoff behind: a record older than its cutoff,
	// appended after it, cannot be deleted either.
	if err := s.Update(t.Context(), func(tx bot.Tx) error {
		if _, err := tx.PruneAudit(t.Context(), auditOld); err != nil {
			return err
		}
		_, err := tx.AddAudit(t.Context(), bot.AuditRecord{At: auditOld.Add(-time.Hour), Actor: "ancient", Action: bot.AuditSignIn, Outcome: bot.AuditDone})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range append(attacks, `DELETE FROM audit_records WHERE actor = 'ancient'`) {
		refused("after a PruneAudit", q)
	}
	if diff := cmp.Diff([]string{"old", "recent", "ancient"}, auditActors(t, s)); diff != "" {
		t.Fatalf("records after the refused statements (-want +got):\n%s", diff)
	}

	// With a cutoff recorded, the recent record still cannot go, nor can
	// any be changed; the old one can (what PruneAudit does).
	if err := exec(fmt.Sprintf(`INSERT INTO audit_prune_cutoff (id, cutoff) VALUES (1, %s)`, cutoff(auditCutoff))); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM audit_records`,
		`DELETE FROM audit_records WHERE actor = 'recent'`,
		`UPDATE audit_records SET actor = 'mallory' WHERE actor = 'old'`,
		`UPDATE audit_records SET at = ` + cutoff(auditOld) + ` WHERE actor = 'recent'`,
	} {
		refused("a cutoff recorded", q)
	}
	if err := exec(`DELETE FROM audit_records WHERE actor = 'old'`); err != nil {
		t.Errorf("a cutoff recorded: deleting a record older than it: %v", err)
	}
	if diff := cmp.Diff([]string{"recent", "ancient"}, auditActors(t, s)); diff != "" {
		t.Errorf("records at the end (-want +got):\n%s", diff)
	}
}

// TestAuditAttacksSQLite: the attacks on SQLite.
func TestAuditAttacksSQLite(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testAuditAttacks(t, s, func(q string) error {
		_, err := s.write.ExecContext(context.Background(), q)
		return err
	}, func(at time.Time) string { return fmt.Sprint(at.UnixNano()) })
}

// TestAuditAttacksPostgres: the same on PostgreSQL.
func TestAuditAttacksPostgres(t *testing.T) {
	url := newPostgresSchema(t)
	s := openTestPostgres(t, url)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	testAuditAttacks(t, s, func(q string) error {
		_, err := conn.Exec(t.Context(), q)
		return err
	}, func(at time.Time) string { return "'" + at.Format(time.RFC3339Nano) + "'::timestamptz" })
	// TRUNCATE fires no row trigger; a statement trigger refuses it.
	if _, err := conn.Exec(t.Context(), `TRUNCATE audit_records`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("TRUNCATE audit_records: %v, want refused as append-only", err)
	}
	if diff := cmp.Diff([]string{"recent", "ancient"}, auditActors(t, s)); diff != "" {
		t.Errorf("records after TRUNCATE (-want +got):\n%s", diff)
	}
}
