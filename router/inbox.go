package router

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/stagehand-dev/stagehand/bot"
)

// Inbox is the intake's group commit (embedded broker only). JetStream
// syncs each message on its own, so a delivery that waits for its own
// fsync waits for every delivery before it. The inbox instead writes the
// deliveries that arrive together in one SQLite transaction: one writer
// goroutine takes every delivery waiting, inserts them, commits (WAL mode,
// synchronous=FULL: the commit returns after the WAL is fsynced), and only
// then answers all of them. One fsync is shared by all the deliveries in
// flight, so the rate grows with the concurrency instead of being capped by
// the disk's fsyncs per second.
//
// A forwarder goroutine then moves the stored deliveries, oldest first, into
// the broker (the writer hands each committed batch over in memory, so
// the forwarder reads the inbox's file only at start and when it fell
// behind) (Forwarder.PublishBatch: on disk there when it returns; the
// message UUID, the delivery GUID, lets JetStream drop a copy) and only then
// deletes them from the inbox. After a crash or a power loss the next start
// forwards whatever the inbox still holds: a delivery is in the inbox, in
// the broker, or both, never in neither.
type Inbox struct {
	db      *sql.DB
	forward Forwarder
	log     *slog.Logger
	opts    InboxOptions

	puts chan *inboxPut
	trim chan struct{} // the forwarder moved more rows: delete them
	wake chan struct{} // rows were committed and not handed over: read them
	// fresh carries each committed batch from the writer to the forwarder,
	// seqs included, so that the forwarder need not read back what was
	// just written. A batch that does not fit (freshBytes over
	// maxFreshBytes: the broker is slow or down) is not handed over; the
	// writer sends on wake instead and the forwarder reads the file.
	fresh      chan []inboxRow
	freshBytes atomic.Int64
	stop       chan struct{} // closed by Close
	writerWG   sync.WaitGroup
	fwdWG      sync.WaitGroup
	closing    sync.Once
	// mu orders Publish and Close: after Close holds it, no delivery
	// enters puts, so the writer's last drain answers every one.
	mu     sync.RWMutex
	closed bool

	commits atomic.Int64 // commits made, for tests
	reads   atomic.Int64 // reads of the file by the forwarder, for tests

	forwarded atomic.Int64 // highest seq the broker holds
	pending   atomic.Int64 // rows committed and not yet forwarded (approximate)
}

// Forwarder is where the inbox moves deliveries: the broker.
type Forwarder interface {
	// PublishBatch stores msgs on topic and returns once they are
	// durable there; a message whose UUID the topic already holds is
	// dropped without an error.
	PublishBatch(topic string, msgs []*message.Message) error
}

// InboxOptions configure OpenInbox. Zero values are working defaults.
type InboxOptions struct {
	// Path is the SQLite file.
	Path string
	// NoSync skips the fsync of each commit (--nats-sync-interval > 0): a
	// process crash still loses nothing, a power loss may lose the last
	// commits.
	NoSync bool
	// MaxBatch bounds the deliveries of one commit, MaxBatchBytes their
	// bodies (a delivery larger than that is a commit of its own).
	// Defaults 512 and 16 MiB.
	MaxBatch      int
	MaxBatchBytes int
	// MaxPending bounds the deliveries stored and not yet forwarded (the
	// broker is down or full): beyond it Publish fails, and the intake
	// answers 503. Default workQueueMaxMsgs.
	MaxPending int64
	Logger     *slog.Logger

	// beforeCommit, when set (tests), runs before each commit with the
	// number of deliveries in it.
	beforeCommit func(deliveries int)
	// maxFreshBytes, when set (tests), replaces maxFreshBytes.
	maxFreshBytes int64
}

type inboxPut struct {
	topic string
	msg   *message.Message
	done  chan error
}

// inboxSchema is the inbox's one table; seq is the order of acceptance.
// AUTOINCREMENT keeps seq growing after the table was emptied: a plain
// rowid starts again at 1, below what the forwarder already read.
const inboxSchema = `CREATE TABLE IF NOT EXISTS inbox (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	topic    TEXT NOT NULL,
	uuid     TEXT NOT NULL,
	metadata BLOB NOT NULL,
	payload  BLOB NOT NULL
)`

// OpenInbox opens (or creates) the inbox at opts.Path and starts its
// writer and its forwarder, which forwards first what a previous run left.
func OpenInbox(ctx context.Context, opts InboxOptions, forward Forwarder) (*Inbox, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 16 << 20
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = workQueueMaxMsgs
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sync := "FULL"
	if opts.NoSync {
		sync = "NORMAL"
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(" + sync + ")", "journal_size_limit(67108864)"} {
		q.Add("_pragma", p)
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(opts.Path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening the intake inbox %s: %w", opts.Path, err)
	}
	// One connection writes, one reads for the forwarder.
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	var pending int64
	err = func() error {
		if _, err := db.ExecContext(ctx, inboxSchema); err != nil {
			return err
		}
		var mode string
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			return err
		}
		if !strings.EqualFold(mode, "wal") {
			return fmt.Errorf("journal mode is %q, want wal", mode)
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM inbox").Scan(&pending); err != nil {
			return err
		}
		// SQLite syncs the directory when it creates the WAL, not when it
		// creates the database file: sync it here, so that a power loss
		// cannot take the file's name away.
		return syncDir(filepath.Dir(opts.Path))
	}()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening the intake inbox %s: %w: check that the data directory is writable and the file is not damaged", opts.Path, err)
	}
	ib := &Inbox{
		db: db, forward: forward, log: opts.Logger.With("component", "inbox"), opts: opts,
		puts: make(chan *inboxPut, 4*opts.MaxBatch),
		trim: make(chan struct{}, 1), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		fresh: make(chan []inboxRow, 64),
	}
	ib.pending.Store(pending)
	if pending > 0 {
		ib.log.Info("forwarding the deliveries a previous run stored and had not forwarded", "deliveries", pending)
	}
	ib.writerWG.Add(1)
	go ib.write()
	ib.fwdWG.Add(1)
	go ib.forwardLoop()
	return ib, nil
}

// Publish implements message.Publisher: it returns nil once msgs are
// committed to the inbox (on disk unless NoSync), sharing that commit with
// every delivery that arrived meanwhile.
func (ib *Inbox) Publish(topic string, msgs ...*message.Message) error {
	if n := ib.pending.Load(); n >= ib.opts.MaxPending {
		return fmt.Errorf("the intake inbox holds %d deliveries the broker has not taken: check the broker's log", n)
	}
	puts := make([]*inboxPut, len(msgs))
	ib.mu.RLock()
	if ib.closed {
		ib.mu.RUnlock()
		return errors.New("the intake inbox is closed: Stagehand is stopping")
	}
	for i, m := range msgs {
		puts[i] = &inboxPut{topic: topic, msg: m, done: make(chan error, 1)}
		ib.puts <- puts[i]
	}
	ib.mu.RUnlock()
	var errs []error
	for _, p := range puts {
		errs = append(errs, <-p.done)
	}
	return errors.Join(errs...)
}

// Close stops taking deliveries, answers those already taken, and stops
// the forwarder after its current batch; what is left is forwarded at the
// next start. Call it before the broker closes.
func (ib *Inbox) Close() error {
	ib.closing.Do(func() {
		ib.mu.Lock()
		ib.closed = true
		ib.mu.Unlock()
		close(ib.stop)
	})
	ib.writerWG.Wait()
	ib.fwdWG.Wait()
	return ib.db.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// write is the one writer: each turn commits what waits, together.
func (ib *Inbox) write() {
	defer ib.writerWG.Done()
	conn, err := ib.db.Conn(context.Background())
	if err != nil {
		ib.failAll(fmt.Errorf("opening the intake inbox: %w", err))
		return
	}
	defer conn.Close()
	var deleted int64
	for {
		var batch []*inboxPut
		select {
		case p := <-ib.puts:
			batch = append(batch, p)
		case <-ib.trim:
		case <-ib.stop:
			// Answer what was handed over before the stop.
			for {
				select {
				case p := <-ib.puts:
					batch = append(batch, p)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				rows, err := ib.commit(conn, batch, &deleted)
				ib.answer(batch, rows, err)
			}
			return
		}
		size := 0
		if len(batch) > 0 {
			size = len(batch[0].msg.Payload)
		}
	fill:
		for len(batch) < ib.opts.MaxBatch && size < ib.opts.MaxBatchBytes {
			select {
			case p := <-ib.puts:
				batch = append(batch, p)
				size += len(p.msg.Payload)
			default:
				break fill
			}
		}
		rows, err := ib.commit(conn, batch, &deleted)
		ib.answer(batch, rows, err)
	}
}

// maxFreshBytes bounds the bodies of committed batches handed over to the
// forwarder in memory and not yet taken.
const maxFreshBytes = 32 << 20

// answer answers the deliveries of a commit and hands its rows to the
// forwarder.
func (ib *Inbox) answer(batch []*inboxPut, rows []inboxRow, err error) {
	if err != nil {
		ib.log.Error("storing deliveries in the intake inbox", bot.LogError, err, "deliveries", len(batch))
		err = fmt.Errorf("storing in the intake inbox %s: %w", ib.opts.Path, err)
	} else if len(batch) > 0 {
		ib.pending.Add(int64(len(batch)))
		ib.handOver(rows)
	}
	for _, p := range batch {
		p.done <- err
	}
}

// handOver gives committed rows to the forwarder in memory, or, when they
// do not fit, wakes it to read them from the file.
func (ib *Inbox) handOver(rows []inboxRow) {
	size := rowBytes(rows)
	limit := int64(maxFreshBytes)
	if ib.opts.maxFreshBytes > 0 {
		limit = ib.opts.maxFreshBytes
	}
	if ib.freshBytes.Add(size) <= limit {
		select {
		case ib.fresh <- rows:
			return
		default:
		}
	}
	ib.freshBytes.Add(-size)
	select {
	case ib.wake <- struct{}{}:
	default:
	}
}

// failAll answers every delivery with err until Close.
func (ib *Inbox) failAll(err error) {
	for {
		select {
		case p := <-ib.puts:
			p.done <- err
		case <-ib.stop:
			return
		}
	}
}

// commit deletes the rows the broker holds now and inserts batch, in one
// transaction, and returns batch's rows with their seqs.
func (ib *Inbox) commit(conn *sql.Conn, batch []*inboxPut, deleted *int64) ([]inboxRow, error) {
	upTo := ib.forwarded.Load()
	if len(batch) == 0 && upTo <= *deleted {
		return nil, nil
	}
	if ib.opts.beforeCommit != nil {
		ib.opts.beforeCommit(len(batch))
	}
	ctx := context.Background()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if upTo > *deleted {
		if _, err := tx.ExecContext(ctx, "DELETE FROM inbox WHERE seq <= ?", upTo); err != nil {
			return nil, err
		}
	}
	var rows []inboxRow
	if len(batch) > 0 {
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO inbox (topic, uuid, metadata, payload) VALUES (?, ?, ?, ?)")
		if err != nil {
			return nil, err
		}
		defer stmt.Close()
		for _, p := range batch {
			md, err := json.Marshal(p.msg.Metadata)
			if err != nil {
				return nil, err
			}
			res, err := stmt.ExecContext(ctx, p.topic, p.msg.UUID, md, p.msg.Payload)
			if err != nil {
				return nil, err
			}
			seq, err := res.LastInsertId()
			if err != nil {
				return nil, err
			}
			// The forwarder publishes a copy: the broker's publisher
			// may set fields on what it is given.
			msg := message.NewMessage(p.msg.UUID, p.msg.Payload)
			msg.Metadata = maps.Clone(p.msg.Metadata)
			rows = append(rows, inboxRow{seq: seq, topic: p.topic, msg: msg})
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	ib.commits.Add(1)
	*deleted = max(*deleted, upTo)
	return rows, nil
}

// inboxRow is one stored delivery.
type inboxRow struct {
	seq   int64
	topic string
	msg   *message.Message
}

// forwardLoop moves rows into the broker, oldest first, in batches: a
// batch is retried until the broker takes it. It reads the inbox's file
// at start and whenever it may hold rows the writer did not hand over
// (behind); otherwise it takes the batches the writer hands over, as long
// as they follow on from what it forwarded.
func (ib *Inbox) forwardLoop() {
	defer ib.fwdWG.Done()
	const maxRetryWait = 5 * time.Second
	retryWait := 100 * time.Millisecond
	var after int64 // the highest seq the broker holds
	behind := true
	for {
		var rows []inboxRow
		var err error
		if behind {
			rows, err = ib.next(after)
			if err == nil && len(rows) == 0 {
				behind = false
			}
		} else {
			select {
			case rows = <-ib.fresh:
				ib.freshBytes.Add(-rowBytes(rows))
				rows = ib.moreFresh(rowsAfter(rows, after))
				if len(rows) > 0 && rows[0].seq != after+1 {
					// A batch was not handed over (or this is the first
					// since start): read the file from where we are.
					behind = true
					continue
				}
			case <-ib.wake:
				behind = true
				continue
			case <-ib.stop:
				return
			}
		}
		if err == nil && len(rows) > 0 {
			err = ib.publish(rows)
		}
		if err != nil {
			ib.log.Error("forwarding stored deliveries to the broker; retrying", bot.LogError, err, "retry_in", retryWait)
			behind = true // the rows are in the file: read them again
			select {
			case <-time.After(retryWait):
				retryWait = min(2*retryWait, maxRetryWait)
				continue
			case <-ib.stop:
				return
			}
		}
		retryWait = 100 * time.Millisecond
		if len(rows) > 0 {
			after = rows[len(rows)-1].seq
			ib.forwarded.Store(after)
			ib.pending.Add(-int64(len(rows)))
			select {
			case ib.trim <- struct{}{}:
			default:
			}
		}
	}
}

// moreFresh adds to rows the batches handed over meanwhile, up to
// MaxBatch rows, so that the broker stores them in one atomic batch. It
// stops at a gap in seq; the rows after it go in the next turn, which
// reads the file.
func (ib *Inbox) moreFresh(rows []inboxRow) []inboxRow {
	for len(rows) > 0 && len(rows) < ib.opts.MaxBatch {
		var more []inboxRow
		select {
		case more = <-ib.fresh:
		default:
			return rows
		}
		ib.freshBytes.Add(-rowBytes(more))
		more = rowsAfter(more, rows[len(rows)-1].seq)
		if len(more) > 0 && more[0].seq != rows[len(rows)-1].seq+1 {
			// Not contiguous: leave them; the forwarder notices the gap
			// next turn only if they are waiting, so say so.
			select {
			case ib.wake <- struct{}{}:
			default:
			}
			return rows
		}
		rows = append(rows, more...)
	}
	return rows
}

// rowsAfter is rows without those at or below seq (rows are in seq order).
func rowsAfter(rows []inboxRow, seq int64) []inboxRow {
	for len(rows) > 0 && rows[0].seq <= seq {
		rows = rows[1:]
	}
	return rows
}

func rowBytes(rows []inboxRow) int64 {
	n := int64(0)
	for _, r := range rows {
		n += int64(len(r.msg.Payload))
	}
	return n
}

// next reads the rows after seq: up to MaxBatch, and MaxBatchBytes of
// bodies (at least one row).
func (ib *Inbox) next(after int64) ([]inboxRow, error) {
	ib.reads.Add(1)
	rs, err := ib.db.Query("SELECT seq, topic, uuid, metadata, payload FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?", after, ib.opts.MaxBatch)
	if err != nil {
		return nil, fmt.Errorf("reading the intake inbox: %w", err)
	}
	defer rs.Close()
	var out []inboxRow
	size := 0
	for size < ib.opts.MaxBatchBytes && rs.Next() {
		var r inboxRow
		var uuid string
		var md, payload []byte
		if err := rs.Scan(&r.seq, &r.topic, &uuid, &md, &payload); err != nil {
			return nil, fmt.Errorf("reading the intake inbox: %w", err)
		}
		r.msg = message.NewMessage(uuid, payload)
		if err := json.Unmarshal(md, &r.msg.Metadata); err != nil {
			return nil, fmt.Errorf("reading delivery %s from the intake inbox: %w", uuid, err)
		}
		out = append(out, r)
		size += len(payload)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("reading the intake inbox: %w", err)
	}
	return out, nil
}

// publish hands rows to the broker, one batch per run of the same topic.
func (ib *Inbox) publish(rows []inboxRow) error {
	for i := 0; i < len(rows); {
		j := i
		var msgs []*message.Message
		for ; j < len(rows) && rows[j].topic == rows[i].topic; j++ {
			msgs = append(msgs, rows[j].msg)
		}
		if err := ib.forward.PublishBatch(rows[i].topic, msgs); err != nil {
			return err
		}
		i = j
	}
	return nil
}
