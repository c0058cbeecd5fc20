package router

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A message that was handed out but neither acked nor nacked (its handler
// was stopped by a shutdown) must come back, not be acknowledged by nats.go.
func TestBrokerUnackedMessageIsRedelivered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{AckWait: time.Second})
		sub := b.Subscriber()
		ctx, stop := context.WithCancel(t.Context())
		ch, err := sub.Subscribe(ctx, TopicWebhooks)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, b, TopicWebhooks, newDelivery("guid-unacked", "payload"))
		if got := receive(t, ch); got.UUID != "guid-unacked" {
			t.Fatalf("got %s, want guid-unacked", got.UUID)
		}
		stop() // the handler never answers
		for range ch {
		}

		again := receive(t, subscribe(t, sub, TopicWebhooks))
		if again.UUID != "guid-unacked" {
			t.Fatalf("got %s, want guid-unacked again", again.UUID)
		}
		again.Ack()
		waitStreamMsgs(t, b, TopicWebhooks, 0)
	})
}

// A handler slower than AckWait: the message is delivered again meanwhile,
// and the late Ack still removes it.
func TestBrokerLateAckCounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{AckWait: time.Second, Concurrency: 1})
		ch := subscribe(t, b.Subscriber(), TopicWebhooks)
		publish(t, b, TopicWebhooks, newDelivery("guid-slow", "payload"))
		slow := receive(t, ch)
		time.Sleep(1500 * time.Millisecond) // past AckWait
		slow.Ack()
		waitStreamMsgs(t, b, TopicWebhooks, 0)
	})
}

// Stopping a subscription while messages flow loses none of them: those
// not acked come back to the next subscriber.
func TestBrokerStopWhileBusy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		// A short AckWait: a message on its way to a subscription as it
		// stops comes back after AckWait.
		b := be.open(t, BrokerOptions{AckWait: 2 * time.Second})
		const n = 200
		for i := range n {
			publish(t, b, TopicWebhooks, newDelivery(fmt.Sprintf("busy-%03d", i), "x"))
		}
		handled := map[string]bool{}
		sub := b.Subscriber()
		for round := 0; len(handled) < n; round++ {
			if round == 20 {
				t.Fatalf("after %d rounds %d of %d messages handled", round, len(handled), n)
			}
			ctx, stop := context.WithCancel(t.Context())
			ch, err := sub.Subscribe(ctx, TopicWebhooks)
			if err != nil {
				t.Fatal(err)
			}
			timeout := time.After(10 * time.Second)
		handling:
			for i := 0; ; i++ {
				select {
				case msg, ok := <-ch:
					if !ok {
						t.Fatal("channel closed before the context was done")
					}
					handled[msg.UUID] = true
					msg.Ack()
					if i == 30 || len(handled) == n {
						break handling // stop with messages in flight
					}
				case <-timeout:
					break handling
				}
			}
			stop()
			// Let the subscription stop while messages wait to be handed
			// out (watermill-nats alone closes its channel under them).
			time.Sleep(100 * time.Millisecond)
			for msg := range ch { // closes once everything is stopped
				handled[msg.UUID] = true // handed out as the context ended
				msg.Ack()
			}
		}
		if err := sub.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		waitStreamMsgs(t, b, TopicWebhooks, 0)
	})
}

// Closing a subscriber lets the handlers in flight finish: their Acks
// still count.
func TestBrokerCloseWaitsForHandlers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		sub := b.Subscriber()
		ch := subscribe(t, sub, TopicWebhooks)
		publish(t, b, TopicWebhooks, newDelivery("guid-inflight", "x"))
		msg := receive(t, ch)
		closed := make(chan error)
		go func() { closed <- sub.Close() }()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) before the handler acked", err)
		case <-time.After(300 * time.Millisecond):
		}
		msg.Ack()
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, ok := <-ch; ok {
			t.Error("the channel is still open after Close")
		}
		waitStreamMsgs(t, b, TopicWebhooks, 0)
	})
}
