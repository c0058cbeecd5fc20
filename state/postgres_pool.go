package state

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPool is the small connection pool of the Postgres store: at most max
// connections, opened as needed and kept while idle. (pgx's own pool,
// pgxpool, and its database/sql driver both need github.com/jackc/puddle/v2,
// which the module does not require.)
type pgPool struct {
	config *pgx.ConnConfig
	// slots holds one token per connection handed out or being opened; its
	// capacity is the most connections the pool opens.
	slots chan struct{}

	mu     sync.Mutex
	idle   []*pgPoolConn // most recently used last
	closed bool
}

// pgPoolConn is a connection of the pool.
type pgPoolConn struct {
	conn      *pgx.Conn
	opened    time.Time
	idleSince time.Time
}

const (
	// pgPingAfterIdle: a connection idle longer is pinged before use, so a
	// connection the server or the network dropped is replaced rather than
	// failing a transaction.
	pgPingAfterIdle = time.Second
	// pgMaxConnLifetime: an older connection is closed rather than reused,
	// so connections move to a new server behind the same address in time.
	pgMaxConnLifetime = time.Hour
	// pgCloseTimeout bounds closing one connection.
	pgCloseTimeout = 5 * time.Second
)

var errPoolClosed = errors.New("the store is closed")

func newPgPool(config *pgx.ConnConfig, maxConns int) *pgPool {
	return &pgPool{config: config, slots: make(chan struct{}, maxConns)}
}

// acquire returns an idle connection, or a new one, waiting while max are in
// use. The caller gives it back with release, with no transaction open.
func (p *pgPool) acquire(ctx context.Context) (*pgPoolConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, errPoolClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()

		if c.conn.IsClosed() || time.Since(c.opened) > pgMaxConnLifetime {
			closeConn(c)
			continue
		}
		if time.Since(c.idleSince) > pgPingAfterIdle {
			if err := c.conn.Ping(ctx); err != nil {
				closeConn(c)
				if ctxErr := ctx.Err(); ctxErr != nil {
					<-p.slots
					return nil, ctxErr
				}
				continue
			}
		}
		return c, nil
	}

	conn, err := pgx.ConnectConfig(ctx, p.config)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &pgPoolConn{conn: conn, opened: time.Now()}, nil
}

// release gives c back. A connection that is closed, busy or still in a
// transaction (its rollback failed) is closed instead of kept.
func (p *pgPool) release(c *pgPoolConn) {
	defer func() { <-p.slots }()
	pc := c.conn.PgConn()
	clean := !c.conn.IsClosed() && !pc.IsBusy() && pc.TxStatus() == 'I'
	p.mu.Lock()
	if clean && !p.closed {
		c.idleSince = time.Now()
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	closeConn(c)
}

// close closes the idle connections and makes acquire fail; connections in
// use are closed when they are released.
func (p *pgPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

func closeConn(c *pgPoolConn) {
	ctx, cancel := context.WithTimeout(context.Background(), pgCloseTimeout)
	defer cancel()
	_ = c.conn.Close(ctx)
}
