package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// changeFeed tells a store's subscribers that an execution changed: after
// the commit of an Update that created, updated or bumped an execution
// (its Version moved). A subscriber's channel holds one signal: changes
// that come while one waits are folded into it, since a subscriber reads
// what changed from the store, not from the signal.
type changeFeed struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// subscribe returns a channel that receives after each change, until ctx
// ends.
func (f *changeFeed) subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan struct{}]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	})
	return ch
}

// notify signals every subscriber without waiting for any.
func (f *changeFeed) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default: // one is waiting already
		}
	}
}

// ExecutionChanges returns a channel that receives after every committed
// Update of this store that changed an execution, until ctx ends. Several
// changes may arrive as one signal.
func (s *SQLite) ExecutionChanges(ctx context.Context) <-chan struct{} {
	return s.changes.subscribe(ctx)
}

// ExecutionChanges returns a channel that receives after every committed
// Update that changed an execution, this process's at once and other
// processes' on the same database and schema through PostgreSQL's
// LISTEN/NOTIFY, until ctx ends. An Update that changed an execution
// sends NOTIFY in its own transaction, which PostgreSQL delivers only if
// and once it commits. While the listening connection is down (it is
// opened again after a second) other processes' changes are not heard;
// each (re)connection signals once, for what it may have missed.
func (s *Postgres) ExecutionChanges(ctx context.Context) <-chan struct{} {
	ch := s.changes.subscribe(ctx)
	s.listenOnce.Do(func() {
		s.listenDone = make(chan struct{})
		go func() {
			defer close(s.listenDone)
			s.listen()
		}()
	})
	return ch
}

// pgChangesPrefix starts the name of the NOTIFY channel of a database's
// schema (channels are per database, not per schema).
const pgChangesPrefix = "stagehand_changes_"

// pgChangesChannel names the NOTIFY channel of database db's schema: a
// hash, so that any schema name fits PostgreSQL's 63-byte identifiers.
func pgChangesChannel(db, schema string) string {
	sum := sha256.Sum256([]byte(db + "\x00" + schema))
	return pgChangesPrefix + hex.EncodeToString(sum[:8])
}

// notifyChanges runs in an Update that changed an execution, before its
// commit: NOTIFY on the schema's channel, with this store's id as payload
// so its own listener skips what the in-memory feed already said.
func (s *Postgres) notifyChanges(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, s.id); err != nil {
		return fmt.Errorf("notify the other replicas of the change: %w", err)
	}
	return nil
}

// newStoreID names one Postgres store (one process's) in its NOTIFYs.
func newStoreID() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// listen holds a connection that LISTENs on the schema's channel until the
// store is closed, reconnecting after a second when it fails.
func (s *Postgres) listen() {
	ctx := s.listenCtx
	for ctx.Err() == nil {
		_ = s.listenConn(ctx) // the safety net covers what is missed; see ExecutionChanges
		s.changes.notify()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// listenConn opens a connection, LISTENs, signals once (what committed
// before the LISTEN was not heard) and then signals each notification of
// another store until the connection fails or ctx ends.
func (s *Postgres) listenConn(ctx context.Context) error {
	config := s.pool.config.Copy()
	// Closing the store ends the wait at once (the pool's handler first
	// asks the server to cancel, which a wait does not need).
	config.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), pgCloseTimeout)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	s.changes.notify()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != s.id {
			s.changes.notify()
		}
	}
}
