package state

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrationFiles embed.FS

// sqliteMigrations holds the SQLite schema changes, one file per version,
// named NNNN_what.sql. A released file never changes; a new change is a new
// file.
var sqliteMigrations = embeddedDir(sqliteMigrationFiles, "migrations/sqlite")

// embeddedDir is the directory dir of files, which embeds it.
func embeddedDir(files embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directory is embedded
	}
	return sub
}

const (
	createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)`
	selectMigrationVersions = `SELECT version FROM schema_migrations`
	insertMigration         = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`
	// SQLite changes a table's constraints only by building the table
	// again, which foreign key enforcement would stop (dropping the old
	// table deletes its rows first). Migrations run with it off, and
	// foreign_key_check must find nothing before they commit. The pragma
	// does nothing inside a transaction: it is set on the connection.
	disableForeignKeys = `PRAGMA foreign_keys = OFF`
	enableForeignKeys  = `PRAGMA foreign_keys = ON`
	checkForeignKeys   = `PRAGMA foreign_key_check`
)

// migration is one schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the *.sql files at the root of fsys, in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and an underscore, as in 0001_init.sql", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: version, name: name, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies, in version order and in one transaction, the migrations of
// fsys that schema_migrations does not list yet. It refuses a database that
// lists a version fsys does not have: a newer binary has changed it. The
// migrations run with foreign key enforcement off, and must leave no
// reference broken.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, clock bot.Clock) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, disableForeignKeys); err != nil {
		return fmt.Errorf("migrate: turn foreign keys off: %w", err)
	}
	err = migrateConn(ctx, conn, ms, clock)
	// The connection goes back to the pool: enforcement must be on again,
	// even when ctx has ended.
	if _, onErr := conn.ExecContext(context.WithoutCancel(ctx), enableForeignKeys); onErr != nil {
		return errors.Join(err, fmt.Errorf("migrate: turn foreign keys on again: %w", onErr))
	}
	return err
}

func migrateConn(ctx context.Context, conn *sql.Conn, ms []migration, clock bot.Clock) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin transaction: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("migrate: the database has schema version %d, which this build does not know; run a newer build", v)
		}
	}

	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, insertMigration, m.version, m.name, clock.Now().UTC().UnixNano()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.name, err)
		}
	}
	if err := requireForeignKeys(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, selectMigrationVersions)
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	return applied, nil
}

// requireForeignKeys fails when a row references a row that is not there.
func requireForeignKeys(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, checkForeignKeys)
	if err != nil {
		return fmt.Errorf("migrate: check foreign keys: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowID sql.NullInt64
		var fkID int
		if err := rows.Scan(&table, &rowID, &parent, &fkID); err != nil {
			return fmt.Errorf("migrate: check foreign keys: %w", err)
		}
		return fmt.Errorf("migrate: row %d of %s references a missing row of %s", rowID.Int64, table, parent)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: check foreign keys: %w", err)
	}
	return nil
}
