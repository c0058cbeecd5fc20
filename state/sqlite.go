// Package state keeps bot values in a database: the embedded SQLite store
// here, and later a Postgres store for several replicas. Both pass the shared
// suite in state/storetest.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/stagehand-dev/stagehand/bot"
)

// SQLite is a bot.Store in one SQLite file, opened in WAL mode.
//
// It keeps two connection pools on the file. Updates go through a pool of one
// connection, so writers of this process queue in Go rather than poll SQLite's
// busy handler; each Update still starts with BEGIN IMMEDIATE, which takes the
// database's write lock before fn reads anything, so a read-decide-write in fn
// is atomic even against another process using the same file. Views go
// through a pool of read-only connections that run beside the writer, as WAL
// allows.
//
// fn must not call Update on the same store: the inner call would wait for
// the connection the outer one holds until ctx ends.
type SQLite struct {
	write   *sql.DB
	read    *sql.DB
	clock   bot.Clock
	changes changeFeed

	// deliveryRecord is selectDeliveryRecord prepared on the read pool
	// (database/sql keeps it prepared on each connection): the intake
	// asks it once per delivery.
	deliveryRecord *sql.Stmt
}

var _ bot.Store = (*SQLite)(nil)

// Option configures OpenSQLite.
type Option func(*options)

type options struct {
	clock bot.Clock
}

// WithClock sets the clock for the times the store fills in itself: the
// CreatedAt of an execution or trigger record, the At of an event, the
// UpdatedAt of an installation and the ProcessedAt of a delivery, when they
// are zero.
func WithClock(c bot.Clock) Option {
	return func(o *options) { o.clock = c }
}

// sqliteBusyTimeout is how long a statement waits for a lock another
// connection (or process) holds before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// OpenSQLite opens, or creates, the database file at path and brings its
// schema up to date. path is a file name, not a URI; ":memory:" does not
// work, because the two pools would see two databases.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	o := options{clock: bot.SystemClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open sqlite: need a file path, got %q", path)
	}

	write, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)

	readers := max(4, runtime.NumCPU())
	read, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)

	s := &SQLite{write: write, read: read, clock: o.clock}
	if err := migrate(ctx, write, sqliteMigrations, o.clock); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if s.deliveryRecord, err = read.PrepareContext(ctx, selectDeliveryRecord); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
}

// sqliteDSN is the modernc.org/sqlite data source name for path. The pragmas
// run on every new connection. On the write pool _txlock=immediate makes
// every transaction start with BEGIN IMMEDIATE; the read pool's connections
// get query_only instead, so a write in View fails rather than trying to
// upgrade its snapshot to a write lock.
func sqliteDSN(path string, readOnly bool) string {
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"foreign_keys(1)",
		"synchronous(NORMAL)",
	}
	q := url.Values{}
	if readOnly {
		pragmas = append(pragmas, "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// SQLite reads the part before '?' as a URI path: escape what would
	// end it or start an escape.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + q.Encode()
}

// Update runs fn in a read-write transaction and commits it when fn returns
// nil. An error or a panic in fn rolls the transaction back; the error is
// returned as is and the panic goes on.
func (s *SQLite) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	return s.run(ctx, s.write, false, fn)
}

// View runs fn in a read-only transaction: fn sees one snapshot of the
// database, and its writes fail.
func (s *SQLite) View(ctx context.Context, fn func(tx bot.Tx) error) error {
	return s.run(ctx, s.read, true, fn)
}

func (s *SQLite) run(ctx context.Context, db *sql.DB, readOnly bool, fn func(tx bot.Tx) error) (err error) {
	sqlTx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly})
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// fn panicked: release the connection and go on panicking.
			_ = sqlTx.Rollback()
		}
	}()

	t := &sqliteTx{tx: sqlTx, clock: s.clock}
	err = fn(checkedTx{t})
	done = true
	if err != nil || readOnly {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			if err == nil {
				return fmt.Errorf("end read transaction: %w", rbErr)
			}
			return errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if t.changed {
		s.changes.notify()
	}
	return nil
}

// Ping checks that both pools reach the database.
func (s *SQLite) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes both connection pools.
func (s *SQLite) Close() error {
	var stmt error
	if s.deliveryRecord != nil {
		stmt = s.deliveryRecord.Close()
	}
	return errors.Join(stmt, s.read.Close(), s.write.Close())
}

// DeliveryRecord is what the store knows about one delivery GUID, read
// without a transaction of its own: it is one statement, which SQLite
// reads from one snapshot, and the statement stays prepared. The intake
// asks it for every delivery (router.StoreDeliveryLog), where a View's
// BEGIN, prepare and COMMIT cost more than the lookup itself.
func (s *SQLite) DeliveryRecord(ctx context.Context, guid string) (bot.DeliveryRecord, error) {
	return scanDeliveryRecord(s.deliveryRecord.QueryRowContext(ctx, guid), guid)
}
