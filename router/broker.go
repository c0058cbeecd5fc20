package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BrokerOptions configure OpenBroker. The zero value of every field but
// DataDir (or URL) is a working default.
type BrokerOptions struct {
	// DataDir holds the embedded broker's JetStream file store, in DataDir/nats.
	DataDir string
	// URL, when set, is an external NATS server (or cluster, comma-separated)
	// with JetStream; nothing is embedded and DataDir is not used.
	URL string
	// Prefix names everything the broker provisions, so that several
	// installations (or test runs) can share one NATS account: subjects
	// "<prefix>.webhooks", streams "<PREFIX>_WEBHOOKS". Lowercase letters,
	// digits, '-' and '_'. Default "stagehand", which makes the subjects
	// equal to the Topic constants.
	Prefix string
	Logger *slog.Logger

	// PoisonMaxAge and PoisonMaxMsgs bound the poison stream; the oldest
	// messages go first. Defaults 14 days and 10000.
	PoisonMaxAge  time.Duration
	PoisonMaxMsgs int64
	// AckWait is how long a handler has to acknowledge a message before the
	// broker gives it to another subscriber. Default 30s.
	AckWait time.Duration
	// Concurrency is how many messages of one topic a Subscribe call hands
	// out at once. Default 4.
	Concurrency int
	// Replicas is the JetStream replication of each stream; raise it to 3 on
	// an external cluster. Default 1.
	Replicas int
	// SyncInterval, for the embedded broker, is how often its store is
	// flushed to disk. Zero (the default) syncs every message before the
	// intake answers 202, so an accepted delivery survives a power loss too;
	// a process crash never loses one either way.
	SyncInterval time.Duration
}

// Broker is the durable message broker: NATS JetStream, embedded in this
// process (file store in the data directory) or external. Everything after
// the intake's 202 runs from the messages it stores.
type Broker struct {
	opts   BrokerOptions
	log    *slog.Logger
	wlog   watermill.LoggerAdapter
	where  string // for messages: "the embedded broker in DIR" or "the nats server at URL"
	routes map[string]route

	// The embedded server, its store directory and the store's lock; nil
	// and empty with an external server.
	ns       *server.Server
	storeDir string
	lock     io.Closer

	nc       *nats.Conn
	ncClosed <-chan struct{}
	js       jetstream.JetStream
	pub      *wmnats.Publisher

	mu     sync.Mutex
	closed bool
	subs   []*brokerSubscriber
}

const (
	defaultPrefix        = "stagehand"
	defaultPoisonMaxAge  = 14 * 24 * time.Hour
	defaultPoisonMaxMsgs = 10000
	defaultAckWait       = 30 * time.Second
	defaultConcurrency   = 4
	// nackDelay is how long a Nack'ed message waits before it is delivered
	// again: the router retries in process first, so a Nack means "later",
	// and a delay keeps a failing message from spinning.
	nackDelay = time.Second
	// handlerWaitFactor: watermill-nats waits this many AckWaits for a
	// handler's Ack or Nack, then forgets the message (a later Ack is
	// dropped). The broker redelivers after one AckWait already; waiting
	// longer here lets a slow handler's Ack still remove the message
	// (JetStream accepts it), instead of the message going round again.
	handlerWaitFactor = 4
	// subscriberCloseTimeout is how long a watermill-nats subscriber's Close
	// waits for its subscriptions to stop; when it is called they have
	// stopped already (see subscription.shutdown).
	subscriberCloseTimeout = 5 * time.Second
	// drainTimeout bounds how long Close waits for a connection to drain:
	// for the handlers of messages handed out to finish and ack them.
	drainTimeout = 30 * time.Second
)

var validPrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// OpenBroker starts the embedded NATS server in opts.DataDir (or connects to
// opts.URL), checks that JetStream answers, and provisions the streams and
// consumers of every topic, updating them if their configuration changed.
// ctx bounds the start-up only.
func OpenBroker(ctx context.Context, opts BrokerOptions) (_ *Broker, err error) {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if !validPrefix.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("broker prefix %q is not valid: use up to 32 lowercase letters, digits, '-' and '_'", opts.Prefix)
	}
	if opts.PoisonMaxAge <= 0 {
		opts.PoisonMaxAge = defaultPoisonMaxAge
	}
	if opts.PoisonMaxMsgs <= 0 {
		opts.PoisonMaxMsgs = defaultPoisonMaxMsgs
	}
	if opts.AckWait <= 0 {
		opts.AckWait = defaultAckWait
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultConcurrency
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		opts:   opts,
		log:    opts.Logger.With("component", "broker"),
		routes: resolveRoutes(opts),
	}
	// watermill-nats logs routine events (a subscriber closed) at Info.
	b.wlog = watermill.NewSlogLoggerWithLevelMapping(b.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	defer func() {
		if err != nil {
			b.shutdown()
		}
	}()

	if opts.URL == "" {
		if opts.Replicas > 1 {
			return nil, fmt.Errorf("the embedded broker is one server and cannot keep %d replicas of a stream: replicas need an external NATS cluster (--nats-url)", opts.Replicas)
		}
		if opts.DataDir == "" {
			return nil, errors.New("the embedded broker needs a data directory: set --data-dir, or --nats-url to use an external NATS server")
		}
		if err := b.startEmbedded(ctx); err != nil {
			return nil, err
		}
	} else {
		b.where = "the nats server at " + redactURL(opts.URL)
	}

	b.nc, b.ncClosed, err = b.connect("stagehand")
	if err != nil {
		if b.ns != nil {
			return nil, fmt.Errorf("connecting to %s: %w", b.where, err)
		}
		return nil, fmt.Errorf("connecting to %s: %w: check --nats-url and that the server is running and reachable", b.where, err)
	}
	b.js, err = jetstream.New(b.nc)
	if err != nil {
		return nil, fmt.Errorf("opening JetStream on %s: %w", b.where, err)
	}
	if err := b.checkJetStream(ctx); err != nil {
		return nil, err
	}
	for _, name := range topicOrder() {
		if err := b.provision(ctx, b.routes[name]); err != nil {
			return nil, err
		}
	}
	b.pub, err = wmnats.NewPublisherWithNatsConn(b.nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			// The streams are ours (provision); Nats-Msg-Id = message UUID
			// (the delivery GUID), so the stream drops a duplicate.
			AutoProvision: false,
			TrackMsgId:    true,
		},
	}, b.wlog)
	if err != nil {
		return nil, fmt.Errorf("creating the broker publisher: %w", err)
	}
	b.log.Info("broker ready", "broker", b.where, "prefix", opts.Prefix)
	return b, nil
}

// checkJetStream asks the server for the account's JetStream information,
// which fails when the server runs without JetStream.
func (b *Broker) checkJetStream(ctx context.Context) error {
	_, err := b.js.AccountInfo(ctx)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%s does not have JetStream enabled: start it with -js (or a jetstream {} block in its configuration): %w", strings.TrimPrefix(b.where, "the "), err)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("%s has JetStream, but not for this account: enable jetstream for the account in the server configuration: %w", strings.TrimPrefix(b.where, "the "), err)
	default:
		return fmt.Errorf("asking %s for its JetStream account: %w", b.where, err)
	}
	if max := b.nc.MaxPayload(); max < MaxWebhookBytes+64<<10 {
		b.log.Warn("the broker refuses large webhook deliveries: GitHub sends up to 25 MB; raise max_payload on the nats server",
			"broker", b.where, "max_payload_bytes", max)
	}
	return nil
}

// connect opens one client connection. Every watermill subscriber gets its
// own, because watermill-nats drains the connection when it closes.
func (b *Broker) connect(name string) (*nats.Conn, <-chan struct{}, error) {
	closed := make(chan struct{})
	var once sync.Once
	opts := []nats.Option{
		nats.Name(name),
		nats.DrainTimeout(drainTimeout),
		nats.ClosedHandler(func(*nats.Conn) { once.Do(func() { close(closed) }) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("broker connection lost, reconnecting", "broker", b.where, "connection", name, "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			b.log.Info("broker connection restored", "broker", b.where, "connection", name)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"broker", b.where, "connection", name, "error", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			b.log.Error("broker connection error", attrs...)
		}),
	}
	if b.ns != nil {
		// In process: no port, no network; nothing to reconnect to if the
		// server is gone.
		opts = append(opts, nats.InProcessServer(b.ns), nats.NoReconnect())
	} else {
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	}
	nc, err := nats.Connect(b.opts.URL, opts...)
	if err != nil {
		return nil, nil, err
	}
	return nc, closed, nil
}

// Ping reports whether the connection is up and JetStream answers for every
// stream and consumer Stagehand needs (for /readyz).
func (b *Broker) Ping(ctx context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("the connection to %s is %s", b.where, strings.ToLower(st.String()))
	}
	for _, name := range topicOrder() {
		rt := b.routes[name]
		if _, err := b.js.Stream(ctx, rt.stream); err != nil {
			return fmt.Errorf("asking %s for stream %s: %w", b.where, rt.stream, err)
		}
		if rt.queue {
			if _, err := b.js.PushConsumer(ctx, rt.stream, rt.durable); err != nil {
				return fmt.Errorf("asking %s for consumer %s of stream %s: %w", b.where, rt.durable, rt.stream, err)
			}
		}
	}
	return nil
}

// PoisonCount is the number of messages in the poison stream.
func (b *Broker) PoisonCount(ctx context.Context) (uint64, error) {
	rt := b.routes[TopicPoison]
	s, err := b.js.Stream(ctx, rt.stream)
	if err != nil {
		return 0, fmt.Errorf("asking %s for stream %s: %w", b.where, rt.stream, err)
	}
	return s.CachedInfo().State.Msgs, nil
}

// Close closes the subscribers still open, drains the broker's connection
// (publishes in flight complete), then shuts the embedded server down and
// waits until its store is closed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()

	var errs []error
	for _, s := range subs {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("draining the connection to %s: %w", b.where, err))
	}
	if !waitClosed(b.ncClosed, drainTimeout) {
		errs = append(errs, fmt.Errorf("the connection to %s did not drain within %s", b.where, drainTimeout))
	}
	b.shutdown()
	return errors.Join(errs...)
}

func waitClosed(closed <-chan struct{}, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-closed:
		return true
	case <-t.C:
		return false
	}
}

// shutdown closes what is open, quickly; OpenBroker uses it on failure.
func (b *Broker) shutdown() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.lock != nil {
		_ = b.lock.Close()
	}
}

// redactURL hides credentials in a (comma-separated) NATS URL.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable url)"
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
