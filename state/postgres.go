package state

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/stagehand-dev/stagehand/bot"
)

// Postgres is a bot.Store in a PostgreSQL database, for several replicas
// sharing one state.
//
// Update runs fn in a READ COMMITTED transaction. What keeps a
// read-decide-write atomic there is the program's row lock: LockProgram
// takes it with SELECT ... FOR UPDATE, CreateExecution takes it before it
// numbers the execution, and every other method of an Update that reads or
// writes one program's state (its executions, steps, events, deployments,
// variables, pipelines, trigger records, GitHub refs) takes it first too,
// once per transaction. So the Updates that touch a program run one after
// the other, on every replica, from their first touch to their end, much as
// SQLite runs every Update one after the other; Updates of different
// programs run side by side. Only reads across programs (Programs,
// Executions without a ProgramID, ExecutionsToReport) and installations and
// deliveries take no program lock. Each statement after the lock reads what
// the previous holders committed.
//
// Update runs fn again, up to postgresAttempts times in all, when
// Postgres aborts the transaction for a deadlock or a serialization failure
// (SQLSTATE 40P01, 40001): fn must be safe to run again, setting its results
// afresh each time.
//
// View runs fn in a READ ONLY, REPEATABLE READ transaction: fn sees one
// snapshot of the database, its writes fail, and it takes no lock.
//
// fn must not call Update or View on the same store: the inner call may wait
// for a connection, or a lock, the outer one holds until ctx ends.
type Postgres struct {
	pool  *pgPool
	clock bot.Clock

	// The change feed (changes.go): this process's subscribers, and the
	// LISTEN connection that hears other processes' changes.
	changes    changeFeed
	channel    string // the schema's NOTIFY channel
	id         string // this store's NOTIFY payload
	listenOnce sync.Once
	listenCtx  context.Context
	stopListen context.CancelFunc
	listenDone chan struct{} // closed when listen returns; nil until it starts
}

var _ bot.Store = (*Postgres)(nil)

// postgresAttempts is how many times Update runs fn when Postgres aborts its
// transaction for a deadlock or a serialization failure.
const postgresAttempts = 5

// OpenPostgres connects to the database at url (a postgres:// URL or a
// key=value connection string, as pgx takes them; search_path and other
// settings may be given as parameters) and brings its schema up to date,
// under an advisory lock, so that replicas starting together migrate it
// once. The connection pool opens at most max(4, GOMAXPROCS) connections;
// a pool_max_conns parameter sets another limit. WithClock sets the clock
// for the times the store stamps itself.
func OpenPostgres(ctx context.Context, url string, opts ...Option) (*Postgres, error) {
	o := options{clock: bot.SystemClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	config, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx leaves any password out of its parse errors.
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	where := postgresTarget(config)
	maxConns := max(4, runtime.GOMAXPROCS(0))
	for key, value := range config.RuntimeParams {
		if !strings.HasPrefix(key, "pool_") {
			continue
		}
		if key != "pool_max_conns" {
			return nil, fmt.Errorf("open postgres %s: parameter %s is not supported (only pool_max_conns)", where, key)
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("open postgres %s: pool_max_conns=%q: want a positive number", where, value)
		}
		maxConns = n
		delete(config.RuntimeParams, key)
	}
	if config.RuntimeParams["application_name"] == "" {
		config.RuntimeParams["application_name"] = "stagehand"
	}
	// A cancelled context cancels the statement on the server too, so a
	// transaction waiting for a program's lock stops waiting (the default
	// only closes the socket, which a backend waiting for a lock does not
	// notice until it has the lock).
	config.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 5 * time.Second}
	}

	s := &Postgres{pool: newPgPool(config, maxConns), clock: o.clock, id: newStoreID()}
	s.listenCtx, s.stopListen = context.WithCancel(context.Background())
	c, err := s.pool.acquire(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	err = migratePostgres(ctx, c.conn, postgresMigrations, o.clock)
	if err == nil {
		var db, schema string
		if err = c.conn.QueryRow(ctx, `SELECT current_database(), current_schema()`).Scan(&db, &schema); err == nil {
			s.channel = pgChangesChannel(db, schema)
		}
	}
	s.pool.release(c)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	return s, nil
}

// postgresTarget names the database of config for errors: user@host:port/db,
// never the password.
func postgresTarget(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Update runs fn in a read-write transaction and commits it when fn returns
// nil. An error or a panic in fn rolls the transaction back; the error is
// returned as is and the panic goes on. fn runs again after a deadlock or
// serialization failure, up to postgresAttempts times in all.
func (s *Postgres) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	for attempt := 1; ; attempt++ {
		retry, err := s.run(ctx, false, fn)
		if err == nil || !retry || attempt == postgresAttempts || ctx.Err() != nil {
			return err
		}
		// Back off a little, at random, so the transactions that collided
		// do not collide again.
		backoff := time.Duration(rand.Int64N(int64(5*time.Millisecond) << attempt))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
	}
}

// View runs fn in a read-only transaction: fn sees one snapshot of the
// database, and its writes fail.
func (s *Postgres) View(ctx context.Context, fn func(tx bot.Tx) error) error {
	_, err := s.run(ctx, true, fn)
	return err
}

// run runs fn in one transaction. retry reports that Postgres aborted the
// transaction for a deadlock or serialization failure, so that running fn
// again may succeed.
func (s *Postgres) run(ctx context.Context, readOnly bool, fn func(tx bot.Tx) error) (retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("begin transaction: %w", err)
	}
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("begin transaction: %w", err)
	}
	defer s.pool.release(c) // after the rollback or commit below

	txOptions := pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
	if readOnly {
		txOptions = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	pgTx, err := c.conn.BeginTx(ctx, txOptions)
	if err != nil {
		return false, fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// fn panicked: end the transaction, so the connection goes back
			// to the pool clean, and go on panicking.
			_ = rollback(ctx, pgTx)
		}
	}()

	t := &postgresTx{tx: pgTx, clock: s.clock, readOnly: readOnly}
	err = fn(checkedTx{t})
	done = true
	if err == nil && !readOnly && t.retryErr != nil {
		// fn went on after a deadlock (its error dropped): the transaction
		// is aborted and cannot commit.
		err = fmt.Errorf("transaction aborted: %w", t.retryErr)
	}
	if err != nil || readOnly {
		if rbErr := rollback(ctx, pgTx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			if err == nil {
				return false, fmt.Errorf("end read transaction: %w", rbErr)
			}
			err = errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err != nil && (t.retryErr != nil || isRetryable(err)), err
	}
	if t.changed {
		if err := s.notifyChanges(ctx, pgTx); err != nil {
			_ = rollback(ctx, pgTx)
			return isRetryable(err), err
		}
	}
	if err := pgTx.Commit(ctx); err != nil {
		return isRetryable(err), fmt.Errorf("commit: %w", err)
	}
	if t.changed {
		s.changes.notify()
	}
	return false, nil
}

// rollback ends tx. It does not give up when ctx is cancelled: the
// connection goes back to the pool only once its transaction is over.
func rollback(ctx context.Context, tx pgx.Tx) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return tx.Rollback(ctx)
}

// SQLSTATEs Postgres uses for what the store handles itself.
const (
	sqlstateSerializationFailure = "40001"
	sqlstateDeadlockDetected     = "40P01"
	sqlstateQueryCanceled        = "57014"
)

// isRetryable reports whether err is a deadlock or a serialization failure:
// Postgres aborted the transaction, and running it again may succeed.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) &&
		(pgErr.Code == sqlstateSerializationFailure || pgErr.Code == sqlstateDeadlockDetected)
}

// Ping checks that the store reaches the database.
func (s *Postgres) Ping(ctx context.Context) error {
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	defer s.pool.release(c)
	if err := c.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes the idle connections (those in use close when their
// transactions end) and the LISTEN connection. The store is not usable
// afterwards.
func (s *Postgres) Close() error {
	s.stopListen()
	s.listenOnce.Do(func() {}) // no listener starts after this
	if s.listenDone != nil {
		<-s.listenDone
	}
	s.pool.close()
	return nil
}

//go:embed migrations/postgres/*.sql
var postgresMigrationFiles embed.FS

// postgresMigrations holds the Postgres schema changes, one file per
// version, named NNNN_what.sql, as the SQLite ones. A released file never
// changes; a new change is a new file.
var postgresMigrations = embeddedDir(postgresMigrationFiles, "migrations/postgres")

const (
	// lockPostgresMigrations serialises the migrations of one schema: a
	// replica that waited finds the versions the first one applied. The key
	// is two int4: this store's and the schema's.
	lockPostgresMigrations = `SELECT pg_advisory_xact_lock(hashtext('stagehand schema_migrations'),
    hashtext(COALESCE(current_schema(), '')))`
	createPostgresMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER     PRIMARY KEY,
    name       TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)`
	insertPostgresMigration = `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`
)

// migratePostgres applies, in version order and in one transaction, the
// migrations of fsys that schema_migrations does not list yet. It holds an
// advisory lock for the schema from the start of the transaction to its end,
// so concurrent calls apply each migration once. It refuses a database that
// lists a version fsys does not have: a newer binary has changed it.
func migratePostgres(ctx context.Context, conn *pgx.Conn, fsys fs.FS, clock bot.Clock) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("migrate: begin transaction: %w", err)
	}
	defer rollback(ctx, tx) // after a commit it does nothing

	if _, err := tx.Exec(ctx, lockPostgresMigrations); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, createPostgresMigrationsTable); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, selectMigrationVersions)
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.version] = true
	}
	for _, v := range versions {
		if !known[v] {
			return fmt.Errorf("migrate: the database has schema version %d, which this build does not know; run a newer build", v)
		}
	}

	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		// Without arguments pgx sends the file as one simple query: it may
		// hold several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, insertPostgresMigration, m.version, m.name, clock.Now().UTC()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
