package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// routerTestSecret signs the deliveries the router tests post to the intake.
const routerTestSecret = "router tests' webhook secret"

// fastRetry is the router's retry policy made fast: 4 attempts in all.
func fastRetry() *middleware.Retry {
	return &middleware.Retry{MaxRetries: 3, InitialInterval: 10 * time.Millisecond, Multiplier: 2}
}

// lockedBuffer is a bytes.Buffer the router's goroutines and a test can
// share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// routerRig is the production wiring in small: the real Intake stores
// deliveries in a fresh embedded broker, and the router built by NewRouter
// hands them to a test handler. Its logger is the server's: a text handler
// wrapped in bot.ContextLogHandler, writing into logs.
type routerRig struct {
	broker  *Broker
	metrics *Metrics
	intake  *Intake
	logs    *lockedBuffer
	logger  *slog.Logger
	done    chan error // Run's result
	// deliveries, when set before run, is the router's DeliveryLog.
	deliveries DeliveryLog
}

func newRouterRig(t *testing.T, opts BrokerOptions) *routerRig {
	t.Helper()
	opts.DataDir = t.TempDir()
	b := openBroker(t, opts)
	logs := &lockedBuffer{}
	logger := slog.New(bot.ContextLogHandler{Handler: slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})})
	m := NewMetrics(b.PoisonCount)
	return &routerRig{
		broker: b, metrics: m, logs: logs, logger: logger,
		intake: &Intake{
			Secrets: [][]byte{[]byte(routerTestSecret)}, Publisher: b.Publisher(),
			Events: testEvents, Metrics: m, Logger: logger,
		},
	}
}

// run starts the router with handler and stops it when the test ends
// (before the broker closes: cleanups run last-registered first).
func (r *routerRig) run(t *testing.T, handler message.NoPublishHandlerFunc) {
	t.Helper()
	rt, err := NewRouter(RouterOptions{
		Logger: r.logger, Subscriber: r.broker.Subscriber(), Publisher: r.broker.Publisher(),
		Metrics: r.metrics, Webhooks: handler, Retry: fastRetry(), CloseTimeout: 5 * time.Second,
		Deliveries: r.deliveries,
	})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	r.done = make(chan error, 1)
	go func() { r.done <- rt.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("closing the router: %v", err)
		}
		if err := <-r.done; err != nil {
			t.Errorf("router Run: %v", err)
		}
	})
	select {
	case <-rt.Running():
	case err := <-r.done:
		t.Fatalf("the router stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the router is not running after 15s")
	}
}

// post sends a signed push delivery through the intake, which answers 202
// only once the broker has stored it.
func (r *routerRig) post(t *testing.T, guid string, body []byte) {
	t.Helper()
	if a := r.deliver(t, guid, body); a.Code != http.StatusAccepted {
		t.Fatalf("POST /webhooks for %s = %d %+v, want 202", guid, a.Code, a)
	}
}

// settle waits until every stored delivery is acknowledged: the router
// acknowledges after all its middleware (metrics, poison queue) has run.
func (r *routerRig) settle(t *testing.T) {
	t.Helper()
	waitStreamMsgs(t, r.broker, TopicWebhooks, 0)
}

func (r *routerRig) poisonCount(t *testing.T) uint64 {
	t.Helper()
	n, err := r.broker.PoisonCount(t.Context())
	if err != nil {
		t.Fatalf("PoisonCount: %v", err)
	}
	return n
}

// poisoned reads every message of the poison stream. Subscribing to the
// poison topic is refused by design and the Broker has no accessor to read
// it, so this reads the stream with JetStream on the broker's connection.
func (r *routerRig) poisoned(t *testing.T) []*message.Message {
	t.Helper()
	s, err := r.broker.js.Stream(t.Context(), r.broker.routes[TopicPoison].stream)
	if err != nil {
		t.Fatalf("poison stream: %v", err)
	}
	st := s.CachedInfo().State
	var out []*message.Message
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		raw, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("reading poison message %d: %v", seq, err)
		}
		msg, err := (&wmnats.NATSMarshaler{}).Unmarshal(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatalf("decoding poison message %d: %v", seq, err)
		}
		out = append(out, msg)
	}
	return out
}

// handled is stagehand_messages_handled_total{event="push",outcome=outcome}.
func (r *routerRig) handled(outcome string) float64 {
	return testutil.ToFloat64(r.metrics.Handled.WithLabelValues("push", outcome))
}

// handlerErrors is stagehand_handler_errors_total{event="push"}.
func (r *routerRig) handlerErrors() float64 {
	return testutil.ToFloat64(r.metrics.HandlerErrors.WithLabelValues("push"))
}

// attemptLog records every call of a test handler.
type attemptLog struct {
	mu    sync.Mutex
	at    map[string][]time.Time // by message UUID
	order []string               // message UUIDs, one per call
}

// add records a call and returns its number for this message, from 1.
func (a *attemptLog) add(msg *message.Message) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil {
		a.at = map[string][]time.Time{}
	}
	a.at[msg.UUID] = append(a.at[msg.UUID], time.Now())
	a.order = append(a.order, msg.UUID)
	return len(a.at[msg.UUID])
}

func (a *attemptLog) times(uuid string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at[uuid])
}

func (a *attemptLog) count(uuid string) int { return len(a.times(uuid)) }

func (a *attemptLog) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.order)
}

// pushBody is a real push delivery.
var pushBody = githubtest.Payload("push/branch-created.json")

const (
	guidA = "0b9f6f40-cc78-11e3-81ab-4c9367dc0001"
	guidB = "0b9f6f40-cc78-11e3-81ab-4c9367dc0002"
	guidC = "0b9f6f40-cc78-11e3-81ab-4c9367dc0003"
)

// A handler that fails twice then succeeds is retried in process: three
// calls, handled once, nothing poisoned.
func TestRouterRetriesUntilSuccess(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	var calls attemptLog
	rig.run(t, func(msg *message.Message) error {
		if calls.add(msg) <= 2 {
			return errors.New("the store is busy")
		}
		return nil
	})
	rig.post(t, guidA, pushBody)
	rig.settle(t)

	type result struct {
		Calls         int
		Poisoned      uint64
		HandledOK     float64
		HandledPoison float64
		HandlerErrors float64
	}
	got := result{calls.count(guidA), rig.poisonCount(t), rig.handled("ok"), rig.handled("poisoned"), rig.handlerErrors()}
	want := result{Calls: 3, Poisoned: 0, HandledOK: 1, HandledPoison: 0, HandlerErrors: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after two failures and a success (-want +got):\n%s", diff)
	}
}

// permanentTestError is an error no retry can fix.
type permanentTestError struct{ permanent bool }

func (e permanentTestError) Error() string {
	return fmt.Sprintf("the payload is malformed (permanent: %v)", e.permanent)
}
func (e permanentTestError) Permanent() bool { return e.permanent }

// A failing handler ends in the poison queue, with the error in the
// poisoned message's metadata: after MaxRetries+1 attempts, or at once when
// the error is Permanent.
func TestRouterPoisonQueue(t *testing.T) {
	attempts := fastRetry().MaxRetries + 1
	tests := []struct {
		name       string
		body       []byte
		handler    func(*message.Message) error
		wantCalls  int
		wantReason string // contained in the reason_poisoned metadata
	}{
		{
			name:       "always failing",
			handler:    func(*message.Message) error { return errors.New("the store is down") },
			wantCalls:  attempts,
			wantReason: "the store is down",
		},
		{
			name:       "permanent error",
			handler:    func(*message.Message) error { return permanentTestError{permanent: true} },
			wantCalls:  1,
			wantReason: "the payload is malformed (permanent: true)",
		},
		{
			name:       "wrapped permanent error",
			handler:    func(*message.Message) error { return fmt.Errorf("handling: %w", permanentTestError{permanent: true}) },
			wantCalls:  1,
			wantReason: "handling: the payload is malformed (permanent: true)",
		},
		{
			name:       "Permanent() false is retried",
			handler:    func(*message.Message) error { return permanentTestError{permanent: false} },
			wantCalls:  attempts,
			wantReason: "the payload is malformed (permanent: false)",
		},
		{
			// Recovered by the router's Recoverer, so retried and poisoned
			// (watermill's own last-resort recovery would Nack it forever).
			name:       "always panicking",
			handler:    func(*message.Message) error { panic("the handler has a bug") },
			wantCalls:  attempts,
			wantReason: `panic occurred: "the handler has a bug"`,
		},
		{
			// The real webhook handler: a push payload it cannot decode is
			// a permanent error. It fails before touching its store.
			name:       "undecodable payload in webhook.Webhooks",
			body:       []byte(`{"ref": 5}`),
			handler:    WebhookHandler((&webhook.Webhooks{}).Handle),
			wantCalls:  1,
			wantReason: "decoding the push payload of delivery " + guidA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = pushBody
			}
			rig := newRouterRig(t, BrokerOptions{})
			var calls attemptLog
			rig.run(t, func(msg *message.Message) error {
				calls.add(msg)
				return tt.handler(msg)
			})
			rig.post(t, guidA, body)
			rig.settle(t)

			if got := calls.count(guidA); got != tt.wantCalls {
				t.Errorf("handler called %d times, want %d", got, tt.wantCalls)
			}
			if n := rig.poisonCount(t); n != 1 {
				t.Errorf("PoisonCount = %d, want 1", n)
			}
			poisoned := rig.poisoned(t)
			if len(poisoned) != 1 {
				t.Fatalf("read %d poisoned messages, want 1", len(poisoned))
			}
			p := poisoned[0]
			reason := p.Metadata.Get(middleware.ReasonForPoisonedKey)
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason_poisoned = %q, want it to contain %q", reason, tt.wantReason)
			}
			type poisonedMsg struct {
				UUID, Payload                           string
				Event, DeliveryID, CorrelationID, Topic string
				Handler                                 string
			}
			got := poisonedMsg{
				UUID: p.UUID, Payload: string(p.Payload),
				Event: p.Metadata.Get(MetaEvent), DeliveryID: p.Metadata.Get(MetaDeliveryID),
				CorrelationID: middleware.MessageCorrelationID(p),
				Topic:         p.Metadata.Get(middleware.PoisonedTopicKey), Handler: p.Metadata.Get(middleware.PoisonedHandlerKey),
			}
			want := poisonedMsg{
				UUID: guidA, Payload: string(body), Event: "push", DeliveryID: guidA, CorrelationID: guidA,
				Topic: TopicWebhooks, Handler: "webhooks",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("poisoned message (-want +got):\n%s", diff)
			}
			if got := [2]float64{rig.handled("poisoned"), rig.handled("ok")}; got != [2]float64{1, 0} {
				t.Errorf("handled{outcome=poisoned, ok} = %v, want [1 0]", got)
			}
			if got := rig.handlerErrors(); got != float64(tt.wantCalls) {
				t.Errorf("handler errors = %v, want %d (one per attempt)", got, tt.wantCalls)
			}
			if !strings.Contains(rig.logs.String(), "delivery moved to the poison queue") {
				t.Errorf("no log line says the delivery was poisoned; logs:\n%s", rig.logs)
			}
		})
	}
}

// A panicking handler is recovered and retried, and the router keeps
// handling the next messages.
func TestRouterRecoversPanics(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{Concurrency: 1}) // one message at a time: B comes after A
	var calls attemptLog
	rig.run(t, func(msg *message.Message) error {
		if calls.add(msg) == 1 && msg.UUID == guidA {
			panic("the handler has a bug")
		}
		return nil
	})
	rig.post(t, guidA, pushBody)
	rig.post(t, guidB, pushBody)
	rig.settle(t)

	select {
	case err := <-rig.done:
		t.Fatalf("the router stopped after a panic: %v", err)
	default:
	}
	type result struct {
		Calls         []string // in order: A is retried in process before B is handed out
		Poisoned      uint64
		HandledOK     float64
		HandlerErrors float64
	}
	got := result{calls.calls(), rig.poisonCount(t), rig.handled("ok"), rig.handlerErrors()}
	want := result{Calls: []string{guidA, guidA, guidB}, Poisoned: 0, HandledOK: 2, HandlerErrors: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after a panic in the first attempt of %s (-want +got):\n%s", guidA, diff)
	}
	// Once more after the panic, to be sure the router still takes work.
	rig.post(t, guidC, pushBody)
	rig.settle(t)
	if n := calls.count(guidC); n != 1 {
		t.Errorf("a delivery after the panic was handled %d times, want 1", n)
	}
}

var (
	logMsgRE        = regexp.MustCompile(`\bmsg="handler line"`)
	logUUIDRE       = regexp.MustCompile(`\bmessage_uuid=(\S+)`)
	logDeliveryIDRE = regexp.MustCompile(`\bdelivery_id=(\S+)`)
	logEventRE      = regexp.MustCompile(`\bevent=(\S+)`)
)

// Every line a handler logs with the message's context carries the
// delivery GUID, in every attempt.
func TestRouterLogLinesCarryDeliveryID(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	var calls attemptLog
	rig.run(t, func(msg *message.Message) error {
		n := calls.add(msg)
		rig.logger.InfoContext(msg.Context(), "handler line", "message_uuid", msg.UUID, "attempt", n)
		if n == 1 {
			return errors.New("fail the first attempt, so retries are logged too")
		}
		return nil
	})
	guids := []string{guidA, guidB, guidC}
	for _, g := range guids {
		rig.post(t, g, pushBody)
	}
	rig.settle(t)

	type line struct{ UUID, DeliveryID, Event string }
	var got []line
	for l := range strings.Lines(rig.logs.String()) {
		if !logMsgRE.MatchString(l) {
			continue
		}
		var ln line
		if m := logUUIDRE.FindStringSubmatch(l); m != nil {
			ln.UUID = m[1]
		}
		if m := logDeliveryIDRE.FindStringSubmatch(l); m != nil {
			ln.DeliveryID = m[1]
		}
		if m := logEventRE.FindStringSubmatch(l); m != nil {
			ln.Event = m[1]
		}
		got = append(got, ln)
	}
	var want []line
	for _, g := range guids {
		want = append(want, line{g, g, "push"}, line{g, g, "push"}) // two attempts each
	}
	less := func(a, b line) int { return strings.Compare(a.UUID, b.UUID) }
	slices.SortFunc(got, less)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("handler log lines (-want +got):\n%s\nlogs:\n%s", diff, rig.logs)
	}
}

// A handler stopped by cancellation (a shutdown) returns context.Canceled:
// the message is neither retried in process nor poisoned, but given back to
// the broker, which delivers it again.
func TestRouterCanceledIsRedelivered(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	var calls attemptLog
	rig.run(t, func(msg *message.Message) error {
		if calls.add(msg) == 1 {
			return fmt.Errorf("fetching the configuration: %w", context.Canceled)
		}
		return nil
	})
	rig.post(t, guidA, pushBody)
	rig.settle(t) // only the second delivery acknowledges it

	times := calls.times(guidA)
	type result struct {
		Calls         int
		Poisoned      uint64
		HandledOK     float64
		HandledError  float64
		HandlerErrors float64
	}
	got := result{len(times), rig.poisonCount(t), rig.handled("ok"), rig.handled("error"), rig.handlerErrors()}
	want := result{Calls: 2, Poisoned: 0, HandledOK: 1, HandledError: 1, HandlerErrors: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after a cancelled attempt (-want +got):\n%s", diff)
	}
	// The second call is the broker's redelivery after the Nack delay, not
	// an in-process retry (those come after InitialInterval, 10ms).
	if len(times) == 2 {
		if gap := times[1].Sub(times[0]); gap < nackDelay/2 {
			t.Errorf("second call %v after the first: an in-process retry, want the broker's redelivery after about %v", gap, nackDelay)
		}
	}
}
