package state

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot"
)

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "m.db"), false))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // the checks below use migrate's connection
	t.Cleanup(func() { db.Close() })
	clock := fixedClock{time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}

	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	v1 := file("CREATE TABLE a (x INTEGER);")
	v2 := file("CREATE TABLE b (x INTEGER);\nINSERT INTO a VALUES (1);")
	broken := file("CREATE TABLE c (x INTEGER);\nTHIS IS NOT SQL;")
	// Migrations run with foreign key enforcement off; a reference left
	// broken must still stop them.
	dangling := file("CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p_id INTEGER REFERENCES p (id));\nINSERT INTO c VALUES (99);")

	// state is what the database holds after a step: its migrations, its
	// tables, and the rows of a (to see that 0002 ran once).
	type state struct {
		Versions []string
		Tables   []string
		RowsOfA  int
	}
	steps := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string
		want    state
	}{
		{"first", fstest.MapFS{"0001_a.sql": v1}, "", state{[]string{"0001_a.sql"}, []string{"a"}, 0}},
		{"again", fstest.MapFS{"0001_a.sql": v1}, "", state{[]string{"0001_a.sql"}, []string{"a"}, 0}},
		{"a new one", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2}, "", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"not re-applied", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2}, "", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"a broken one rolls back", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2, "0003_c.sql": broken},
			"apply 0003_c.sql", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"a broken reference rolls back", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2, "0003_c.sql": dangling},
			"row 1 of c references a missing row of p", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"a newer database", fstest.MapFS{"0001_a.sql": v1},
			"schema version 2", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"a name without a version", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2, "init.sql": v1},
			"init.sql", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"two files of one version", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2, "02_c.sql": v1},
			"same version 2", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
	}
	for _, st := range steps {
		err := migrate(ctx, db, st.fsys, clock)
		switch {
		case st.wantErr == "" && err != nil:
			t.Errorf("%s: migrate: %v", st.name, err)
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Errorf("%s: migrate = %v, want an error about %q", st.name, err, st.wantErr)
		}

		var got state
		got.Versions = queryStrings(t, db, `SELECT name FROM schema_migrations ORDER BY version`)
		got.Tables = queryStrings(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_migrations' ORDER BY name`)
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM a`).Scan(&got.RowsOfA); err != nil {
			t.Fatalf("%s: count a: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: database (-want +got):\n%s", st.name, diff)
		}
		// The connection goes back to the pool enforcing foreign keys.
		if diff := cmp.Diff([]string{"1"}, queryStrings(t, db, `PRAGMA foreign_keys`)); diff != "" {
			t.Errorf("%s: PRAGMA foreign_keys after migrate (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	ms, err := loadMigrations(sqliteMigrations)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d: versions go 1, 2, 3, ... without gaps", m.name, m.version, i+1)
		}
	}
}

func queryStrings(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// TestMigrateEngineKeepsRows opens a database written at schema version 1:
// 0002 and 0003 must keep its executions and steps, with the new fields
// zero; the old execution is not waiting for the reporter until it changes.
func TestMigrateEngineKeepsRows(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		t.Fatal(err)
	}
	initSQL, err := fs.ReadFile(sqliteMigrations, "0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	clock := fixedClock{time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	if err := migrate(ctx, db, fstest.MapFS{"0001_init.sql": {Data: initSQL}}, clock); err != nil {
		t.Fatalf("migrate to 0001: %v", err)
	}
	created := clock.t.Add(-time.Hour)
	for _, q := range []string{
		`INSERT INTO programs (id, installation_id, owner, repo) VALUES (1, 1, 'octo', 'hello')`,
		`INSERT INTO executions (id, program_id, number, pipeline, commit_sha, branch, state, message, cause,
    triggered_by, delivery_id, created_at)
VALUES (1, 1, 1, 'stage-only', 'c1', 'main', 'running', '', 'push', 'mona', 'd1', ` + strconv.FormatInt(created.UnixNano(), 10) + `)`,
		`INSERT INTO steps (execution_id, name, position, state, message) VALUES (1, 'build', 0, 'running', 'building')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestSQLite(t, path, WithClock(clock))
	var gotE bot.Execution
	var gotSteps []bot.Step
	err = s.View(ctx, func(tx bot.Tx) (err error) {
		if gotE, err = tx.Execution(ctx, 1); err != nil {
			return err
		}
		gotSteps, err = tx.Steps(ctx, 1)
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	wantE := bot.Execution{ID: 1, ProgramID: 1, Number: 1, Pipeline: bot.StageOnly, Commit: "c1", Branch: "main",
		State: bot.ExecutionRunning, Cause: bot.CausePush, TriggeredBy: "mona", DeliveryID: "d1", CreatedAt: created}
	if diff := cmp.Diff(wantE, gotE); diff != "" {
		t.Errorf("execution after 0002 (-want +got):\n%s", diff)
	}
	wantSteps := []bot.Step{{ExecutionID: 1, Name: bot.StepBuild, State: bot.StepRunning, Message: "building"}}
	if diff := cmp.Diff(wantSteps, gotSteps); diff != "" {
		t.Errorf("steps after 0002 (-want +got):\n%s", diff)
	}
	var changedAt int64
	if err := s.read.QueryRowContext(ctx, `SELECT changed_at FROM executions WHERE id = 1`).Scan(&changedAt); err != nil {
		t.Fatal(err)
	}
	if changedAt != created.UnixNano() {
		t.Errorf("changed_at after 0003 = %d, want created_at %d", changedAt, created.UnixNano())
	}
	toReport := func() []bot.Execution {
		t.Helper()
		var es []bot.Execution
		if err := s.View(ctx, func(tx bot.Tx) (err error) {
			es, err = tx.ExecutionsToReport(ctx, 0)
			return err
		}); err != nil {
			t.Fatalf("View: %v", err)
		}
		return es
	}
	if es := toReport(); len(es) != 0 {
		t.Errorf("ExecutionsToReport after 0003 = %+v, want none", es)
	}
	if err := s.Update(ctx, func(tx bot.Tx) error { return tx.Touch(ctx, 1) }); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	wantE.Version = 1
	if diff := cmp.Diff([]bot.Execution{wantE}, toReport()); diff != "" {
		t.Errorf("ExecutionsToReport after a touch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(migrationNames(t, sqliteMigrations), queryStrings(t, s.read, `SELECT name FROM schema_migrations ORDER BY version`)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
}

// migrationNames lists the migrations of fsys, in order.
func migrationNames(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	return names
}

// migrateUpTo brings a new database file at path to schema version last.
func migrateUpTo(t *testing.T, path string, last int, clock bot.Clock) {
	t.Helper()
	ms, err := loadMigrations(sqliteMigrations)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, m := range ms {
		if m.version <= last {
			fsys[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
		}
	}
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrate(t.Context(), db, fsys, clock); err != nil {
		t.Fatalf("migrate to %04d: %v", last, err)
	}
}

// TestMigrateRepositoryIdentity opens a database written at schema version
// 6: 0007 builds the programs table again, and must keep every program,
// with GitHub id 0 (unknown), and everything that references them (the
// pipelines are deleted with their program, so a careless rebuild would
// lose them). Afterwards foreign keys are enforced, names stay unique among
// the programs holding them, and a legacy program adopts its id.
func TestMigrateRepositoryIdentity(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	clock := fixedClock{time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	migrateUpTo(t, path, 6, clock)
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO programs (id, installation_id, owner, repo) VALUES (1, 7, 'octo', 'hello')`,
		`INSERT INTO programs (id, installation_id, owner, repo, removed) VALUES (2, 7, 'octo', 'gone', 1)`,
		`INSERT INTO pipelines (program_id, kind, branch, trigger_kind, approval, scheduled) VALUES (1, 'stage-only', 'main', 'on-git-changes', 0, 0)`,
		`INSERT INTO executions (id, program_id, number, pipeline, commit_sha, branch, state, message, cause,
    triggered_by, delivery_id, created_at) VALUES (1, 1, 1, 'stage-only', 'c1', 'main', 'succeeded', '', 'push', 'mona', 'd1', 1)`,
		`INSERT INTO variables (program_id, environment, name, value) VALUES (1, 'production', 'REGION', 'eu')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTestSQLite(t, path, WithClock(clock))
	type program struct {
		Program   bot.Program
		Pipelines []bot.Pipeline
		Commits   []string
		Variables map[string]string
	}
	read := func(id int64) program {
		t.Helper()
		var p program
		err := s.View(ctx, func(tx bot.Tx) (err error) {
			if p.Program, err = tx.Program(ctx, id); err != nil {
				return err
			}
			if p.Pipelines, err = tx.Pipelines(ctx, id); err != nil {
				return err
			}
			es, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: id})
			for _, e := range es {
				p.Commits = append(p.Commits, e.Commit)
			}
			if err != nil {
				return err
			}
			p.Variables, err = tx.Variables(ctx, id, bot.Production)
			return err
		})
		if err != nil {
			t.Fatalf("View: %v", err)
		}
		return p
	}
	hello := program{
		Program:   bot.Program{ID: 1, InstallationID: 7, Owner: "octo", Repo: "hello"},
		Pipelines: []bot.Pipeline{{ProgramID: 1, Kind: bot.StageOnly, PipelineConfig: bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerOnGitChanges}}},
		Commits:   []string{"c1"},
		Variables: map[string]string{"REGION": "eu"},
	}
	if diff := cmp.Diff(hello, read(1)); diff != "" {
		t.Errorf("program 1 after 0007 (-want +got):\n%s", diff)
	}
	gone := program{Program: bot.Program{ID: 2, InstallationID: 7, Owner: "octo", Repo: "gone", Removed: true}}
	if diff := cmp.Diff(gone, read(2), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("program 2 after 0007 (-want +got):\n%s", diff)
	}

	for _, q := range []string{
		`INSERT INTO variables (program_id, environment, name, value) VALUES (99, 'stage', 'K', 'v')`,
		`INSERT INTO programs (installation_id, owner, repo) VALUES (7, 'Octo', 'Hello')`,
	} {
		if _, err := s.write.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: no error, want a constraint to refuse it", q)
		}
	}

	err = s.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.EnsureProgram(ctx, 7, bot.Repository{ID: 101, Owner: "octo", Name: "hello", DefaultBranch: "main"})
		return err
	})
	if err != nil {
		t.Fatalf("EnsureProgram: %v", err)
	}
	hello.Program.GitHubID, hello.Program.DefaultBranch = 101, "main"
	if diff := cmp.Diff(hello, read(1)); diff != "" {
		t.Errorf("program 1 after adopting its id (-want +got):\n%s", diff)
	}
}
