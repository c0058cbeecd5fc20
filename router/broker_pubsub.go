package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// Publisher publishes to the broker's topics. Publish returns only after
// JetStream acknowledged that the message is stored (a synchronous PubAck);
// a message whose UUID was already published within the stream's duplicate
// window is acknowledged and dropped. Close is a no-op: the broker owns the
// connection (the watermill router closes the publishers it was given).
func (b *Broker) Publisher() message.Publisher { return brokerPublisher{b} }

type brokerPublisher struct{ b *Broker }

func (p brokerPublisher) Publish(topic string, msgs ...*message.Message) error {
	rt, err := p.b.route(topic)
	if err != nil {
		return err
	}
	if err := p.b.pub.Publish(rt.subject, msgs...); err != nil {
		return fmt.Errorf("storing %s on stream %s of %s: %w", describeMessages(msgs), rt.stream, p.b.where, err)
	}
	return nil
}

func (brokerPublisher) Close() error { return nil }

func describeMessages(msgs []*message.Message) string {
	if len(msgs) == 1 {
		return "message " + msgs[0].UUID
	}
	return fmt.Sprintf("%d messages", len(msgs))
}

// Subscriber returns a new subscriber. Subscribe(ctx, topic) joins the
// topic's durable consumer as a member of its queue group, so across all
// subscribers and processes each message goes to one of them. Acks are
// explicit: Ack removes the message from its work-queue stream; Nack gives it
// back after a second; a message neither acked nor nacked within AckWait (a
// crash, a slow handler) is delivered again. When ctx is done or the
// subscriber closes, messages not yet handed out go back to the broker and
// the channel closes. Close the subscriber when done; Broker.Close closes
// any still open.
func (b *Broker) Subscriber() message.Subscriber {
	s := &brokerSubscriber{b: b, stop: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closed = true
		close(s.stop)
		return s
	}
	b.subs = append(b.subs, s)
	return s
}

type brokerSubscriber struct {
	b    *Broker
	stop chan struct{} // closed by Close

	mu     sync.Mutex
	closed bool
	subs   []*subscription
}

// subscription is one Subscribe call: its own connection (watermill-nats
// drains the connection of a subscriber it closes), its watermill-nats
// subscriber, and the goroutine (run) that hands their messages on.
type subscription struct {
	rt         route
	wm         *wmnats.Subscriber
	nc         *nats.Conn
	connClosed <-chan struct{}
	done       chan struct{} // closed when run has stopped everything
	err        error         // how stopping went; read after done
}

func (s *brokerSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	rt, err := s.b.route(topic)
	if err != nil {
		return nil, err
	}
	if !rt.queue {
		return nil, fmt.Errorf("topic %s is kept for inspection (stream %s) and has no consumer to subscribe to", topic, rt.stream)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscribing to %s: the subscriber is closed", topic)
	}
	sub, in, err := s.b.subscribe(ctx, rt)
	if err != nil {
		return nil, err
	}
	s.subs = slices.DeleteFunc(s.subs, func(sub *subscription) bool { return isClosed(sub.done) })
	s.subs = append(s.subs, sub)
	out := make(chan *message.Message)
	go sub.run(ctx, s.stop, in, out)
	return out, nil
}

func (b *Broker) subscribe(ctx context.Context, rt route) (*subscription, <-chan *message.Message, error) {
	nc, connClosed, err := b.connect("stagehand " + rt.name + " subscriber")
	if err != nil {
		return nil, nil, fmt.Errorf("connecting a subscriber for %s to %s: %w", rt.topic, b.where, err)
	}
	wm, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:       &wmnats.NATSMarshaler{},
		SubscribersCount:  b.opts.Concurrency,
		AckWaitTimeout:    handlerWaitFactor * rt.ackWait,
		CloseTimeout:      subscriberCloseTimeout,
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		NakDelay:          wmnats.NewStaticDelay(nackDelay),
		QueueGroupPrefix:  rt.durable, // = the consumer's deliver group
		JetStream: wmnats.JetStreamConfig{
			AutoProvision: false,
			DurablePrefix: rt.durable,
			SubscribeOptions: []nats.SubOpt{
				// Without ManualAck nats.go acks every message after the
				// watermill callback returns, also when it returns because
				// of a shutdown or an ack timeout: the message would be lost.
				nats.ManualAck(),
				// Bind: never let nats.go create the consumer, because a
				// consumer it creates is deleted when that subscription ends,
				// under the feet of every other replica.
				nats.Bind(rt.stream, rt.durable),
			},
		},
	}, quietUnsubscribe{b.wlog})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("creating a subscriber for %s: %w", rt.topic, err)
	}
	// watermill-nats closes its output channel when its context is done,
	// possibly while one of its NATS callbacks is about to send on it (a
	// panic). So it gets a context that is never cancelled, and run stops it
	// in a safe order instead.
	in, err := wm.Subscribe(context.WithoutCancel(ctx), rt.subject)
	if err != nil {
		// Not wm.Close: watermill-nats counts a failed Subscribe as an open
		// output, and Close would wait CloseTimeout for it.
		nc.Close()
		return nil, nil, fmt.Errorf("subscribing to %s (stream %s, consumer %s) on %s: %w: if the consumer was deleted, restart Stagehand to provision it again",
			rt.topic, rt.stream, rt.durable, b.where, err)
	}
	return &subscription{rt: rt, wm: wm, nc: nc, connClosed: connClosed, done: make(chan struct{})}, in, nil
}

// run hands the messages of watermill-nats (in) to the caller (out), with
// the caller's context, until ctx is done or the subscriber closes; then it
// stops the subscription.
func (sub *subscription) run(ctx context.Context, stop <-chan struct{}, in <-chan *message.Message, out chan<- *message.Message) {
	defer close(sub.done)
	defer close(out)
	for running := true; running; {
		select {
		case msg := <-in:
			if ctx.Err() != nil || isClosed(stop) {
				msg.Nack()
				running = false
				continue
			}
			msg.SetContext(ctx)
			select {
			case out <- msg:
			case <-ctx.Done():
				msg.Nack()
				running = false
			case <-stop:
				msg.Nack()
				running = false
			}
		case <-ctx.Done():
			running = false
		case <-stop:
			running = false
		}
	}
	sub.err = sub.shutdown(in)
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// shutdown drains the connection first: NATS stops sending, and the
// callbacks in flight finish (a message handed out before finishes when its
// handler acks it; one not handed out yet is given back). Only then, with no
// callback left to send on it, may watermill-nats close its channel.
func (sub *subscription) shutdown(in <-chan *message.Message) error {
	var errs []error
	if err := sub.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("draining the connection: %w", err))
	}
	// NATS gives up draining after drainTimeout (a handler that does not
	// finish) and closes the connection; the timer is a backstop.
	backstop := time.NewTimer(drainTimeout + 5*time.Second)
	defer backstop.Stop()
	timedOut := false
	for drained := false; !drained; {
		select {
		case msg, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			msg.Nack()
		case <-sub.connClosed:
			drained = true
		case <-backstop.C:
			timedOut = true
			sub.nc.Close() // connClosed follows
		}
	}
	if timedOut || errors.Is(sub.nc.LastError(), nats.ErrDrainTimeout) {
		errs = append(errs, fmt.Errorf("handlers did not acknowledge their messages within %s of the stop; those messages are delivered again", drainTimeout))
	}
	if err := sub.wm.Close(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *brokerSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	subs := s.subs
	s.mu.Unlock()
	var errs []error
	for _, sub := range subs {
		<-sub.done
		if sub.err != nil {
			errs = append(errs, fmt.Errorf("closing the subscription to %s: %w", sub.rt.topic, sub.err))
		}
	}
	return errors.Join(errs...)
}

// quietUnsubscribe keeps watermill-nats from logging, as an error, that it
// cannot unsubscribe from the connection shutdown already drained.
type quietUnsubscribe struct{ watermill.LoggerAdapter }

func (l quietUnsubscribe) Error(msg string, err error, fields watermill.LogFields) {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		l.LoggerAdapter.Debug(msg+": "+err.Error(), fields)
		return
	}
	l.LoggerAdapter.Error(msg, err, fields)
}

func (l quietUnsubscribe) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietUnsubscribe{l.LoggerAdapter.With(fields)}
}
