package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state/storetest"
)

// postgresURLEnv names the database the Postgres tests use, as in
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Each test works in
// a schema of its own, which it creates and drops.
const postgresURLEnv = "STAGEHAND_TEST_POSTGRES_URL"

func postgresTestURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(postgresURLEnv)
	if u == "" {
		t.Skip(postgresURLEnv + " not set; set it to a PostgreSQL URL (postgres://user@host:port/db?sslmode=disable) to run the Postgres store's tests")
	}
	return u
}

// newPostgresSchema creates a schema with a unique name and returns the
// test database's URL with search_path set to it. The schema is dropped
// when the test ends, after the stores opened on it later are closed.
func newPostgresSchema(t *testing.T) string {
	t.Helper()
	base := postgresTestURL(t)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "stagehand_test_" + hex.EncodeToString(b[:])
	quoted := pgx.Identifier{schema}.Sanitize()

	admin := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin(t.Context(), "CREATE SCHEMA "+quoted); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// t.Context() is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, "DROP SCHEMA "+quoted+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, base, schema)
}

// withSearchPath adds search_path=schema to a postgres:// URL or a
// key=value connection string.
func withSearchPath(t *testing.T, base, schema string) string {
	t.Helper()
	if !strings.Contains(base, "://") {
		return base + " search_path=" + schema
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", postgresURLEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openTestPostgres(t *testing.T, url string, opts ...Option) *Postgres {
	t.Helper()
	s, err := OpenPostgres(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestPostgres(t *testing.T) {
	postgresTestURL(t)
	storetest.Run(t, func(t *testing.T) bot.Store {
		return openTestPostgres(t, newPostgresSchema(t))
	})
}

// TestPostgresTwoHandles runs the suite against two stores on one schema,
// used in turn, as two replicas would: what keeps read-decide-write atomic
// must be Postgres's locks, not a store's connection pool.
func TestPostgresTwoHandles(t *testing.T) {
	postgresTestURL(t)
	storetest.Run(t, func(t *testing.T) bot.Store {
		url := newPostgresSchema(t)
		return &alternatingStore{stores: [2]bot.Store{openTestPostgres(t, url), openTestPostgres(t, url)}}
	})
}

// alternatingStore is a bot.Store that sends each transaction to the next
// of its stores.
type alternatingStore struct {
	stores [2]bot.Store
	n      atomic.Uint64
}

func (a *alternatingStore) next() bot.Store { return a.stores[a.n.Add(1)%2] }

func (a *alternatingStore) Update(ctx context.Context, fn func(tx bot.Tx) error) error {
	return a.next().Update(ctx, fn)
}

func (a *alternatingStore) View(ctx context.Context, fn func(tx bot.Tx) error) error {
	return a.next().View(ctx, fn)
}

func (a *alternatingStore) Ping(ctx context.Context) error {
	return errors.Join(a.stores[0].Ping(ctx), a.stores[1].Ping(ctx))
}

func (a *alternatingStore) Close() error { return nil } // openTestPostgres closes them

func pgNewProgram(t *testing.T, s bot.Store, owner, repo string) bot.Program {
	t.Helper()
	var p bot.Program
	err := s.Update(t.Context(), func(tx bot.Tx) (err error) {
		p, err = tx.EnsureProgram(t.Context(), 1, bot.Repository{Owner: owner, Name: repo})
		return err
	})
	if err != nil {
		t.Fatalf("EnsureProgram: %v", err)
	}
	return p
}

// TestPostgresCrossConnectionExclusion has 8 goroutines on two stores (two
// replicas) each start an execution, after LockProgram, only when none is
// active, and finish it in a later Update on the other store. Never may two
// be active, and each execution must have seen the one before it finished.
func TestPostgresCrossConnectionExclusion(t *testing.T) {
	url := newPostgresSchema(t)
	stores := [2]*Postgres{openTestPostgres(t, url), openTestPostgres(t, url)}
	ctx := t.Context()
	p := pgNewProgram(t, stores[0], "octo", "hello")
	const workers, rounds = 8, 15
	all := bot.ExecutionFilter{ProgramID: p.ID, Pipeline: bot.StageOnly}
	active := all
	active.States = bot.ActiveStates

	var writers, watchers sync.WaitGroup
	var stop atomic.Bool
	for i := range 2 {
		watchers.Go(func() {
			for !stop.Load() {
				err := stores[i].View(ctx, func(tx bot.Tx) error {
					es, err := tx.Executions(ctx, active)
					if len(es) > 1 {
						t.Errorf("a View saw %d active executions", len(es))
					}
					return err
				})
				if err != nil {
					t.Errorf("View: %v", err)
					return
				}
			}
		})
	}
	for w := range workers {
		writers.Go(func() {
			for r := range rounds {
				s, other := stores[(w+r)%2], stores[(w+r+1)%2]
				var started bot.Execution
				err := s.Update(ctx, func(tx bot.Tx) error {
					started = bot.Execution{}
					if err := tx.LockProgram(ctx, p.ID); err != nil {
						return err
					}
					running, err := tx.Executions(ctx, active)
					if err != nil || len(running) > 0 {
						return err
					}
					newest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Pipeline: bot.StageOnly, Limit: 1})
					if err != nil {
						return err
					}
					msg := "first"
					if len(newest) > 0 {
						msg = fmt.Sprintf("after #%d %s", newest[0].Number, newest[0].State)
					}
					started, err = tx.CreateExecution(ctx, bot.Execution{
						ProgramID: p.ID, Pipeline: bot.StageOnly, State: bot.ExecutionRunning,
						Message: msg, TriggeredBy: fmt.Sprintf("worker-%d", w),
					})
					if err != nil {
						return err
					}
					// Still one, seen from inside.
					running, err = tx.Executions(ctx, active)
					if err == nil && len(running) != 1 {
						t.Errorf("worker %d: %d active executions after creating one", w, len(running))
					}
					return err
				})
				if err != nil {
					t.Errorf("worker %d round %d: start: %v", w, r, err)
					continue
				}
				if started.ID == 0 {
					continue
				}
				err = other.Update(ctx, func(tx bot.Tx) error {
					if err := tx.LockProgram(ctx, p.ID); err != nil {
						return err
					}
					e, err := tx.Execution(ctx, started.ID)
					if err != nil {
						return err
					}
					e.State = bot.ExecutionSucceeded
					return tx.UpdateExecution(ctx, e)
				})
				if err != nil {
					t.Errorf("worker %d round %d: finish %s: %v", w, r, started, err)
				}
			}
		})
	}
	writers.Wait()
	stop.Store(true)
	watchers.Wait()

	var es []bot.Execution
	err := stores[0].View(ctx, func(tx bot.Tx) (err error) {
		es, err = tx.Executions(ctx, all)
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if len(es) == 0 {
		t.Fatalf("no execution was started")
	}
	var got, want []string
	for i := len(es) - 1; i >= 0; i-- { // oldest first
		e := es[i]
		got = append(got, fmt.Sprintf("#%d %s: %s", e.Number, e.State, e.Message))
		msg := "first"
		if e.Number > 1 {
			msg = fmt.Sprintf("after #%d %s", e.Number-1, bot.ExecutionSucceeded)
		}
		want = append(want, fmt.Sprintf("#%d %s: %s", len(want)+1, bot.ExecutionSucceeded, msg))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("executions, oldest first (-want +got):\n%s", diff)
	}
	t.Logf("%d workers × %d rounds on two stores started %d executions", workers, rounds, len(es))
}

// TestPostgresLockProgramWaits checks that LockProgram on one store waits
// for the transaction that holds the lock on another, and then reads what
// it committed; a View does not wait.
func TestPostgresLockProgramWaits(t *testing.T) {
	url := newPostgresSchema(t)
	a, b := openTestPostgres(t, url), openTestPostgres(t, url)
	ctx := t.Context()
	p := pgNewProgram(t, a, "octo", "hello")

	locked, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // a failing test must not keep the lock
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Update(ctx, func(tx bot.Tx) error {
			if err := tx.LockProgram(ctx, p.ID); err != nil {
				return err
			}
			if err := tx.SetVariable(ctx, p.ID, bot.Stage, "N", "1"); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked

	var seen string
	bDone := make(chan error, 1)
	go func() {
		bDone <- b.Update(ctx, func(tx bot.Tx) error {
			if err := tx.LockProgram(ctx, p.ID); err != nil {
				return err
			}
			vars, err := tx.Variables(ctx, p.ID, bot.Stage)
			seen = vars["N"]
			return err
		})
	}()

	// A View neither waits nor sees the uncommitted write.
	err := b.View(ctx, func(tx bot.Tx) error {
		if err := tx.LockProgram(ctx, p.ID); err != nil {
			return err
		}
		vars, err := tx.Variables(ctx, p.ID, bot.Stage)
		if len(vars) != 0 {
			t.Errorf("View saw %v before the commit", vars)
		}
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}

	select {
	case err := <-bDone:
		t.Fatalf("LockProgram on the other store did not wait for the lock: Update = %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	releaseOnce()
	if err := <-aDone; err != nil {
		t.Fatalf("the Update holding the lock: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("the Update waiting for the lock: %v", err)
	}
	if seen != "1" {
		t.Errorf("after waiting for the lock, N = %q, want the committed 1", seen)
	}
}

// TestPostgresLockProgramCancel checks that an Update waiting for a
// program's lock gives up when its context ends, with the context's error,
// and leaves the store usable.
func TestPostgresLockProgramCancel(t *testing.T) {
	url := newPostgresSchema(t)
	s := openTestPostgres(t, url)
	ctx := t.Context()
	p := pgNewProgram(t, s, "octo", "hello")

	locked, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // a failing test must not keep the lock
	holder := make(chan error, 1)
	go func() {
		holder <- s.Update(ctx, func(tx bot.Tx) error {
			if err := tx.LockProgram(ctx, p.ID); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	waitCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := s.Update(waitCtx, func(tx bot.Tx) error { return tx.LockProgram(waitCtx, p.ID) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update waiting for the lock past its deadline = %v, want context.DeadlineExceeded", err)
	}
	releaseOnce()
	if err := <-holder; err != nil {
		t.Fatalf("the Update holding the lock: %v", err)
	}
	err = s.Update(ctx, func(tx bot.Tx) error { return tx.LockProgram(ctx, p.ID) })
	if err != nil {
		t.Errorf("Update after the cancelled one: %v", err)
	}
}

// TestPostgresRetriesDeadlock has two Updates lock two programs in opposite
// orders: Postgres aborts one for the deadlock, and Update runs its fn again.
func TestPostgresRetriesDeadlock(t *testing.T) {
	url := newPostgresSchema(t)
	a, b := openTestPostgres(t, url), openTestPostgres(t, url)
	ctx := t.Context()
	p1 := pgNewProgram(t, a, "octo", "one")
	p2 := pgNewProgram(t, a, "octo", "two")

	var calls [2]atomic.Int32
	var both sync.WaitGroup
	both.Add(2)
	run := func(i int, s *Postgres, first, second int64) error {
		return s.Update(ctx, func(tx bot.Tx) error {
			n := calls[i].Add(1)
			if err := tx.LockProgram(ctx, first); err != nil {
				return err
			}
			if n == 1 {
				// Both hold their first lock before either takes its second.
				both.Done()
				both.Wait()
			}
			if err := tx.LockProgram(ctx, second); err != nil {
				return err
			}
			return tx.SetVariable(ctx, first, bot.Stage, fmt.Sprintf("T%d", i), "done")
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run(0, a, p1.ID, p2.ID) }()
	go func() { errs <- run(1, b, p2.ID, p1.ID) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	// One of the two is run again after the deadlock. Its new attempt
	// waits for the other's locks and may then fail once more on a
	// serialization conflict with what the other committed (a timing
	// matter under load, retried like the deadlock), so more than 3 runs
	// are fine; fewer would mean the deadlock was not retried.
	if got := calls[0].Load() + calls[1].Load(); got < 3 || got > 6 {
		t.Errorf("fn ran %d + %d times, want 3 to 6 in all: at least one run again after the deadlock", calls[0].Load(), calls[1].Load())
	}
	err := a.View(ctx, func(tx bot.Tx) error {
		for i, p := range []int64{p1.ID, p2.ID} {
			vars, err := tx.Variables(ctx, p, bot.Stage)
			if err != nil {
				return err
			}
			if vars[fmt.Sprintf("T%d", i)] != "done" {
				t.Errorf("program %d: variables %v, want T%d=done", p, vars, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresConcurrentMigrations opens three stores at once on a fresh
// schema, as replicas starting together do: each migration runs once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	url := newPostgresSchema(t)
	ctx := t.Context()
	const n = 3
	stores := make([]*Postgres, n)
	errs := make([]error, n)
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start.Wait()
			stores[i], errs[i] = OpenPostgres(ctx, url)
		})
	}
	start.Done()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("OpenPostgres %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	if diff := cmp.Diff(migrationNames(t, postgresMigrations), pgQueryStrings(t, stores[0], `SELECT name FROM schema_migrations ORDER BY version`)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	// Every store works on the schema.
	for i, s := range stores {
		pgNewProgram(t, s, "octo", fmt.Sprintf("repo-%d", i))
	}
}

// pgQueryStrings runs a query of one text column on one of s's connections.
func pgQueryStrings(t *testing.T, s *Postgres, query string, args ...any) []string {
	t.Helper()
	c, err := s.pool.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer s.pool.release(c)
	rows, err := c.conn.Query(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func TestPostgresMigrate(t *testing.T) {
	url := newPostgresSchema(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	clock := fixedClock{time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}

	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	v1 := file("CREATE TABLE a (x INTEGER);")
	v2 := file("CREATE TABLE b (x INTEGER);\nINSERT INTO a VALUES (1);")
	broken := file("CREATE TABLE c (x INTEGER);\nTHIS IS NOT SQL;")

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
		{"a newer database", fstest.MapFS{"0001_a.sql": v1},
			"schema version 2", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
		{"a name without a version", fstest.MapFS{"0001_a.sql": v1, "0002_b.sql": v2, "init.sql": v1},
			"init.sql", state{[]string{"0001_a.sql", "0002_b.sql"}, []string{"a", "b"}, 1}},
	}
	strs := func(query string) []string {
		t.Helper()
		rows, err := conn.Query(ctx, query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return out
	}
	for _, st := range steps {
		err := migratePostgres(ctx, conn, st.fsys, clock)
		switch {
		case st.wantErr == "" && err != nil:
			t.Errorf("%s: migrate: %v", st.name, err)
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Errorf("%s: migrate = %v, want an error about %q", st.name, err, st.wantErr)
		}
		var got state
		got.Versions = strs(`SELECT name FROM schema_migrations ORDER BY version`)
		got.Tables = strs(`SELECT table_name::text FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' ORDER BY table_name`)
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM a`).Scan(&got.RowsOfA); err != nil {
			t.Fatalf("%s: count a: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: database (-want +got):\n%s", st.name, diff)
		}
	}
	var appliedAt time.Time
	if err := conn.QueryRow(ctx, `SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&appliedAt); err != nil {
		t.Fatal(err)
	}
	if !appliedAt.Equal(clock.t) {
		t.Errorf("applied_at = %s, want the clock's %s", appliedAt, clock.t)
	}
}

func TestPostgresEmbeddedMigrations(t *testing.T) {
	ms, err := loadMigrations(postgresMigrations)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("embedded Postgres migrations = %d, want them to start at 0001", len(ms))
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d: no gaps", m.name, m.version, i+1)
		}
	}
}

// TestPostgresReopen checks that a store opened again on a schema finds
// its data and applies no migration twice, and that a schema a newer build
// migrated is refused.
func TestPostgresReopen(t *testing.T) {
	url := newPostgresSchema(t)
	ctx := t.Context()
	clock := fixedClock{time.Date(2026, 11, 25, 8, 0, 0, 1000, time.UTC)}

	s, err := OpenPostgres(ctx, url, WithClock(clock))
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
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
	const migrations = `SELECT version || ' ' || name || ' ' || applied_at FROM schema_migrations ORDER BY version`
	before := pgQueryStrings(t, s, migrations)
	if len(before) == 0 {
		t.Fatalf("schema_migrations is empty after the first open")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Update(ctx, func(tx bot.Tx) error { return nil }); err == nil {
		t.Errorf("Update after Close: no error")
	}

	s = openTestPostgres(t, url, WithClock(fixedClock{clock.t.Add(time.Hour)}))
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
	if diff := cmp.Diff(before, pgQueryStrings(t, s, migrations)); diff != "" {
		t.Errorf("schema_migrations after reopening (-before +after):\n%s", diff)
	}

	pgQueryStrings(t, s, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', now()) RETURNING name`)
	if s2, err := OpenPostgres(ctx, url); err == nil {
		s2.Close()
		t.Errorf("OpenPostgres of a schema at version 9999: no error")
	} else if !strings.Contains(err.Error(), "schema version 9999") {
		t.Errorf("OpenPostgres of a schema at version 9999 = %v, want an error about the version", err)
	}
}

// TestPostgresClock checks the times the store stamps itself: the clock's,
// to the microsecond, in UTC; and that a returned execution equals the one
// read back.
func TestPostgresClock(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))
	s := openTestPostgres(t, newPostgresSchema(t), WithClock(fixedClock{now}))

	type stamped struct {
		Installation, Execution, TriggerRecord, Event, Delivery, Explicit time.Time
	}
	var got stamped
	var created bot.Execution
	explicit := time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.UTC)
	err := s.Update(ctx, func(tx bot.Tx) error {
		if err := tx.PutInstallation(ctx, bot.Installation{ID: 1, Account: "octo"}); err != nil {
			return err
		}
		p, err := tx.EnsureProgram(ctx, 1, bot.Repository{ID: 101, Owner: "octo", Name: "hello"})
		if err != nil {
			return err
		}
		created, err = tx.CreateExecution(ctx, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, StartedAt: explicit})
		if err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, bot.Event{ExecutionID: created.ID, Actor: "mona", Kind: "triggered"}); err != nil {
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
	var readBack bot.Execution
	err = s.View(ctx, func(tx bot.Tx) error {
		inst, err := tx.Installation(ctx, 1)
		if err != nil {
			return err
		}
		got.Installation = inst.UpdatedAt
		readBack, err = tx.Execution(ctx, created.ID)
		if err != nil {
			return err
		}
		got.Execution, got.Explicit = readBack.CreatedAt, readBack.StartedAt
		rs, err := tx.TriggerRecords(ctx, created.ProgramID, "c1")
		if err != nil || len(rs) != 1 {
			return errors.Join(err, errors.New("want one trigger record"))
		}
		got.TriggerRecord = rs[0].CreatedAt
		evs, err := tx.Events(ctx, created.ID)
		if err != nil || len(evs) != 1 {
			return errors.Join(err, errors.New("want one event"))
		}
		got.Event = evs[0].At
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	processed := pgQueryStrings(t, s, `SELECT to_char(processed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM processed_deliveries WHERE guid = 'guid-1'`)
	if len(processed) == 1 {
		got.Delivery, err = time.Parse(time.RFC3339Nano, processed[0])
		if err != nil {
			t.Fatal(err)
		}
	}

	stamp := now.Truncate(time.Microsecond)
	want := stamped{Installation: stamp, Execution: stamp, TriggerRecord: stamp, Event: stamp, Delivery: stamp,
		Explicit: explicit.Truncate(time.Microsecond)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	if got.Execution.Location() != time.UTC {
		t.Errorf("times come back in %s, want UTC", got.Execution.Location())
	}
	created.Version++ // the event
	if diff := cmp.Diff(created, readBack); diff != "" {
		t.Errorf("CreateExecution returned what does not read back (-returned +read):\n%s", diff)
	}
}

// TestPostgresExecutionsToReportUsesIndex checks that the reporter's query
// can read the partial index, in order, rather than sort every execution.
func TestPostgresExecutionsToReportUsesIndex(t *testing.T) {
	s := openTestPostgres(t, newPostgresSchema(t))
	ctx := t.Context()
	c, err := s.pool.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.pool.release(c)
	for _, query := range []string{pgSelectExecutionsToReport, pgSelectExecutionsToReport + " LIMIT 10"} {
		err := pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
			// An empty table is read whole: make the planner show what it
			// would do with a big one, where reading the index in order
			// beats collecting the rows and sorting them.
			if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+query)
			if err != nil {
				return err
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			got := strings.Join(plan, "\n")
			if !strings.Contains(got, "executions_to_report") || strings.Contains(got, "Sort") {
				t.Errorf("plan of %q:\n%s\nwant the index executions_to_report and no sort", query, got)
			}
			return errors.New("roll back")
		})
		if err != nil && err.Error() != "roll back" {
			t.Fatal(err)
		}
	}
}

func TestOpenPostgresBadConfig(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://user:secret@localhost:notaport/db", "open postgres"},
		{"postgres://user:secret@localhost/db?pool_max_conns=0", "pool_max_conns"},
		{"postgres://user:secret@localhost/db?pool_min_conns=2", "pool_min_conns"},
	} {
		s, err := OpenPostgres(t.Context(), tc.url)
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q): no error", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenPostgres(%q) = %v, want an error about %s", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("OpenPostgres(%q) = %v, which shows the password", tc.url, err)
		}
	}
}
