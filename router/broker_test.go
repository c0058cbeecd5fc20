package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// envTestNATSURL names an external NATS server with JetStream; the broker
// tests that can run against one do so when it is set.
const envTestNATSURL = "STAGEHAND_TEST_NATS_URL"

// backend opens brokers on one kind of server. Brokers opened by one
// backend value share their server, store and prefix, like the replicas of
// one installation.
type backend struct {
	name string
	open func(t *testing.T, o BrokerOptions) *Broker
}

// forEachBackend runs f against an embedded broker and, when
// STAGEHAND_TEST_NATS_URL is set, against that external server.
func forEachBackend(t *testing.T, f func(t *testing.T, be backend)) {
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		var shared *Broker
		f(t, backend{name: "embedded", open: func(t *testing.T, o BrokerOptions) *Broker {
			// One process, one store: the "replicas" share the broker.
			if shared == nil {
				o.DataDir = dir
				shared = openBroker(t, o)
			}
			return shared
		}})
	})
	t.Run("external", func(t *testing.T) {
		url := os.Getenv(envTestNATSURL)
		if url == "" {
			t.Skip(envTestNATSURL + " not set: set it to a NATS server with JetStream (nats-server -js) to run this test against it")
		}
		prefix := uniquePrefix(t)
		t.Cleanup(func() { deleteStreams(t, url, prefix) })
		f(t, backend{name: "external", open: func(t *testing.T, o BrokerOptions) *Broker {
			o.URL, o.Prefix = url, prefix
			return openBroker(t, o)
		}})
	})
}

func openBroker(t *testing.T, o BrokerOptions) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b, err := OpenBroker(ctx, o)
	if err != nil {
		t.Fatalf("OpenBroker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func uniquePrefix(t *testing.T) string {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	return "test-" + hex.EncodeToString(r[:])
}

// deleteStreams removes what a test provisioned on the external server.
func deleteStreams(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connecting to clean up: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("cleaning up: %v", err)
		return
	}
	for _, rt := range resolveRoutes(BrokerOptions{Prefix: prefix}) {
		if err := js.DeleteStream(context.Background(), rt.stream); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("deleting stream %s: %v", rt.stream, err)
		}
	}
}

func subscribe(t *testing.T, s message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := s.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
	return ch
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if !ok {
			t.Fatal("the subscription closed before a message arrived")
		}
		return msg
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
		return nil
	}
}

func expectNothing(t *testing.T, ch <-chan *message.Message, wait time.Duration) {
	t.Helper()
	select {
	case msg := <-ch:
		t.Fatalf("got message %s (%q), want none", msg.UUID, msg.Payload)
	case <-time.After(wait):
	}
}

func publish(t *testing.T, b *Broker, topic string, msgs ...*message.Message) {
	t.Helper()
	if err := b.Publisher().Publish(topic, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func streamInfo(t *testing.T, b *Broker, topic string) *jetstream.StreamInfo {
	t.Helper()
	s, err := b.js.Stream(t.Context(), b.routes[topic].stream)
	if err != nil {
		t.Fatalf("stream of %s: %v", topic, err)
	}
	return s.CachedInfo()
}

// waitStreamMsgs polls until the topic's stream holds want messages: acks
// reach the server after watermill's Ack returns.
func waitStreamMsgs(t *testing.T, b *Broker, topic string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := streamInfo(t, b, topic).State.Msgs
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream of %s holds %d messages, want %d", topic, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type received struct {
	UUID     string
	Payload  string
	Metadata message.Metadata
}

func asReceived(m *message.Message) received {
	return received{UUID: m.UUID, Payload: string(m.Payload), Metadata: m.Metadata}
}

func newDelivery(guid, payload string) *message.Message {
	m := message.NewMessage(guid, []byte(payload))
	m.Metadata.Set("event", "push")
	m.Metadata.Set("delivery_id", guid)
	return m
}

func TestBrokerRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		ch := subscribe(t, b.Subscriber(), TopicWebhooks)

		msg := message.NewMessage("72d3162e-cc78-11e3-81ab-4c9367dc0958", []byte(`{"zen":"Keep it logically awesome."}`))
		msg.Metadata = message.Metadata{
			"event":          "issue_comment",
			"delivery_id":    "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			"received_at":    "2026-11-25T10:00:00.123456789Z",
			"correlation_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			"X-Mixed-Case":   "kept as is",
			"json":           `{"a": "b: c"}`,
		}
		publish(t, b, TopicWebhooks, msg)

		got := receive(t, ch)
		if diff := cmp.Diff(asReceived(msg), asReceived(got)); diff != "" {
			t.Errorf("received message (-sent +received):\n%s", diff)
		}
		if n := streamInfo(t, b, TopicWebhooks).State.Msgs; n != 1 {
			t.Errorf("before the ack the stream holds %d messages, want 1", n)
		}
		got.Ack()
		// Work-queue retention: a handled message leaves the stream.
		waitStreamMsgs(t, b, TopicWebhooks, 0)
		expectNothing(t, ch, 200*time.Millisecond)
	})
}

func TestBrokerDuplicateUUIDIsDeliveredOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		publish(t, b, TopicWebhooks, newDelivery("guid-1", "first"))
		publish(t, b, TopicWebhooks, newDelivery("guid-1", "second")) // GitHub retried
		if n := streamInfo(t, b, TopicWebhooks).State.Msgs; n != 1 {
			t.Fatalf("after publishing one UUID twice the stream holds %d messages, want 1", n)
		}
		ch := subscribe(t, b.Subscriber(), TopicWebhooks)
		got := receive(t, ch)
		if got.UUID != "guid-1" || string(got.Payload) != "first" {
			t.Errorf("got %s %q, want guid-1 \"first\"", got.UUID, got.Payload)
		}
		got.Ack()
		expectNothing(t, ch, time.Second)
		// Still a duplicate after the first one was handled and removed.
		publish(t, b, TopicWebhooks, newDelivery("guid-1", "third"))
		expectNothing(t, ch, 500*time.Millisecond)
		waitStreamMsgs(t, b, TopicWebhooks, 0)
	})
}

func TestBrokerNackRedelivers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		ch := subscribe(t, b.Subscriber(), TopicWebhooks)
		sent := newDelivery("guid-nack", "payload")
		publish(t, b, TopicWebhooks, sent)

		first := receive(t, ch)
		first.Nack()
		again := receive(t, ch)
		if diff := cmp.Diff(asReceived(sent), asReceived(again)); diff != "" {
			t.Errorf("redelivered message (-sent +received):\n%s", diff)
		}
		again.Ack()
		waitStreamMsgs(t, b, TopicWebhooks, 0)
		expectNothing(t, ch, 1500*time.Millisecond)
	})
}

// Two subscribers, as in two replicas: every message is handled once, by
// one of them; closing one does not stop the other.
func TestBrokerSubscribersShareMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		replica1 := be.open(t, BrokerOptions{Concurrency: 1})
		replica2 := be.open(t, BrokerOptions{Concurrency: 1})
		sub1, sub2 := replica1.Subscriber(), replica2.Subscriber()
		ctx, stop := context.WithCancel(t.Context())
		defer stop()

		var mu sync.Mutex
		handledBy := map[string][]string{}
		var wg sync.WaitGroup
		handle := func(name string, sub message.Subscriber) {
			ch, err := sub.Subscribe(ctx, TopicWebhooks)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for msg := range ch {
					mu.Lock()
					handledBy[msg.UUID] = append(handledBy[msg.UUID], name)
					mu.Unlock()
					// A handler that takes a moment, as a real one does, so
					// one replica cannot drain a round before the other
					// pulls.
					time.Sleep(5 * time.Millisecond)
					msg.Ack()
				}
			})
		}
		handle("replica1", sub1)
		handle("replica2", sub2)

		// Rounds of 40 until both replicas have had a share: a
		// subscriber's first pull can come late on a loaded machine, which
		// says nothing about sharing, so a round handled by one replica
		// alone is followed by another (up to 10 rounds).
		const n = 40
		want := map[string]bool{}
		sharedBy := func() map[string]int {
			mu.Lock()
			defer mu.Unlock()
			counts := map[string]int{}
			for _, by := range handledBy {
				counts[by[0]]++
			}
			return counts
		}
		for round := 0; round < 10; round++ {
			for i := range n {
				id := fmt.Sprintf("guid-%d-%02d", round, i)
				want[id] = true
				publish(t, replica1, TopicWebhooks, newDelivery(id, "x"))
			}
			waitStreamMsgs(t, replica1, TopicWebhooks, 0)
			if c := sharedBy(); c["replica1"] > 0 && c["replica2"] > 0 {
				break
			}
		}
		time.Sleep(500 * time.Millisecond) // a second delivery would show by now

		mu.Lock()
		counts := map[string]int{}
		for id, by := range handledBy {
			if len(by) != 1 {
				t.Errorf("%s handled %d times (%v), want once", id, len(by), by)
			}
			counts[by[0]]++
			delete(want, id)
		}
		mu.Unlock()
		if len(want) != 0 {
			t.Errorf("never handled: %v", want)
		}
		if counts["replica1"] == 0 || counts["replica2"] == 0 {
			t.Errorf("handled per subscriber: %v, want both to share the work", counts)
		}

		// The first replica goes away; the consumer stays for the second.
		if err := sub1.Close(); err != nil {
			t.Fatalf("closing the first subscriber: %v", err)
		}
		for i := range 5 {
			publish(t, replica2, TopicWebhooks, newDelivery(fmt.Sprintf("after-%d", i), "x"))
		}
		waitStreamMsgs(t, replica2, TopicWebhooks, 0)
		mu.Lock()
		for i := range 5 {
			id := fmt.Sprintf("after-%d", i)
			if by := handledBy[id]; len(by) != 1 || by[0] != "replica2" {
				t.Errorf("%s handled by %v, want [replica2]", id, by)
			}
		}
		mu.Unlock()
		stop()
		wg.Wait()
	})
}

func TestBrokerKeepsMessagesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBroker(t.Context(), BrokerOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, TopicWebhooks, newDelivery("guid-a", "a"), newDelivery("guid-b", "b"))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b = openBroker(t, BrokerOptions{DataDir: dir})
	ch := subscribe(t, b.Subscriber(), TopicWebhooks)
	var got []string
	for range 2 {
		m := receive(t, ch)
		got = append(got, m.UUID+"="+string(m.Payload))
		m.Ack()
	}
	slices.Sort(got) // several subscriptions: any order
	if diff := cmp.Diff([]string{"guid-a=a", "guid-b=b"}, got); diff != "" {
		t.Errorf("after the restart (-want +got):\n%s", diff)
	}
	waitStreamMsgs(t, b, TopicWebhooks, 0)
}

// GitHub sends deliveries up to 25 MB; a NATS server accepts 1 MB unless
// told otherwise.
func TestBrokerCarriesLargeDeliveries(t *testing.T) {
	b := openBroker(t, BrokerOptions{DataDir: t.TempDir()})
	ch := subscribe(t, b.Subscriber(), TopicWebhooks)
	body := strings.Repeat("x", MaxWebhookBytes)
	publish(t, b, TopicWebhooks, newDelivery("guid-large", body))
	got := receive(t, ch)
	if len(got.Payload) != len(body) {
		t.Errorf("received %d bytes, want %d", len(got.Payload), len(body))
	}
	got.Ack()
	waitStreamMsgs(t, b, TopicWebhooks, 0)
}

func TestBrokerPoisonCount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{PoisonMaxMsgs: 3})
		count := func() uint64 {
			t.Helper()
			n, err := b.PoisonCount(t.Context())
			if err != nil {
				t.Fatalf("PoisonCount: %v", err)
			}
			return n
		}
		if n := count(); n != 0 {
			t.Errorf("PoisonCount of a new broker = %d, want 0", n)
		}
		for i := range 2 {
			publish(t, b, TopicPoison, newDelivery(fmt.Sprintf("poisoned-%d", i), "x"))
		}
		if n := count(); n != 2 {
			t.Errorf("PoisonCount = %d, want 2", n)
		}
		for i := 2; i < 5; i++ {
			publish(t, b, TopicPoison, newDelivery(fmt.Sprintf("poisoned-%d", i), "x"))
		}
		if n := count(); n != 3 {
			t.Errorf("PoisonCount after 5 poisoned messages with PoisonMaxMsgs 3 = %d, want 3", n)
		}
	})
}

// A subscriber binds to the consumer the broker provisioned and never
// creates one itself: nats.go deletes a consumer it created when that
// subscription ends, under the feet of the other replicas.
func TestBrokerSubscribeDoesNotCreateTheConsumer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		stream := b.routes[TopicWebhooks].stream
		if err := b.js.DeleteConsumer(t.Context(), stream, "workers"); err != nil {
			t.Fatal(err)
		}
		sub := b.Subscriber()
		_, err := sub.Subscribe(t.Context(), TopicWebhooks)
		if err == nil || !strings.Contains(err.Error(), "restart Stagehand") {
			t.Errorf("Subscribe without the consumer = %v, want an error saying to restart", err)
		}
		if _, err := b.js.PushConsumer(t.Context(), stream, "workers"); err == nil {
			t.Error("Subscribe created the consumer")
		}
		start := time.Now()
		if err := sub.Close(); err != nil {
			t.Errorf("Close after a failed Subscribe: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Close after a failed Subscribe took %s", d)
		}
	})
}
