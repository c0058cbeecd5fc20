package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/state"
)

// freshSchema makes a schema of its own for a test on the server of
// STAGEHAND_TEST_POSTGRES_URL and returns a URL that uses it.
func freshSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv("STAGEHAND_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("STAGEHAND_TEST_POSTGRES_URL not set; .ci/run sets it to the PostgreSQL server of the machine")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v", base, err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("serve_test_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// TestServeOnPostgres runs the server with --database-url: a push is
// recorded in PostgreSQL, and stagehand audit export reads its records
// from there.
func TestServeOnPostgres(t *testing.T) {
	url := freshSchema(t)
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(h.args(), "--database-url", url), func(string) string { return "" }, io.Discard, io.Discard)
	}()
	h.waitReady(t)
	if code := h.send(t, "push", "pg-1", githubtest.Payload("push/branch-created.json")); code != 202 {
		t.Fatalf("push answered %d", code)
	}
	store, err := state.OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, 20*time.Second, "the push to be recorded in PostgreSQL", func() bool {
		var n int
		_ = store.View(context.Background(), func(tx bot.Tx) error {
			es, err := tx.Executions(context.Background(), bot.ExecutionFilter{})
			n = len(es)
			return err
		})
		return n == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// stagehand audit export reads the same database, by flag or by
	// variable: the push's decisions are there.
	byFlag := exportAudit(t, nil, "--since", "2000-01-01", "--format", "jsonl", "--database-url", url)
	byEnv := exportAudit(t, map[string]string{"STAGEHAND_DATABASE_URL": url}, "--since", "2000-01-01", "--format", "jsonl")
	if !strings.Contains(byFlag, `"action":"trigger"`) || !strings.Contains(byFlag, `"delivery":"pg-1"`) || byEnv != byFlag {
		t.Errorf("audit export from PostgreSQL:\n--database-url: %s\nSTAGEHAND_DATABASE_URL: %s\nwant the push's trigger records in both", byFlag, byEnv)
	}
}
