package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// addOneAudit appends one record to s.
func addOneAudit(t *testing.T, s bot.Store) {
	t.Helper()
	err := s.Update(t.Context(), func(tx bot.Tx) error {
		_, err := tx.AddAudit(t.Context(), bot.AuditRecord{Actor: "alice", Action: bot.AuditSignIn, Outcome: bot.AuditDone})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuditAppendOnlySQLite: the table refuses UPDATE and DELETE, whoever
// asks.
func TestAuditAppendOnlySQLite(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addOneAudit(t, s)
	for _, q := range []string{`UPDATE audit_records SET actor = 'mallory'`, `DELETE FROM audit_records`} {
		if _, err := s.write.ExecContext(context.Background(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
}

// TestAuditAppendOnlyPostgres: the same on PostgreSQL.
func TestAuditAppendOnlyPostgres(t *testing.T) {
	url := newPostgresSchema(t)
	s := openTestPostgres(t, url)
	addOneAudit(t, s)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{`UPDATE audit_records SET actor = 'mallory'`, `DELETE FROM audit_records`} {
		if _, err := conn.Exec(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
}
