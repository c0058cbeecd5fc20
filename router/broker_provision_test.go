package router

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

type streamShape struct {
	Subjects   []string
	Retention  jetstream.RetentionPolicy
	Storage    jetstream.StorageType
	Discard    jetstream.DiscardPolicy
	MaxAge     time.Duration
	MaxMsgs    int64
	Duplicates time.Duration
}

func shapeOf(c jetstream.StreamConfig) streamShape {
	return streamShape{c.Subjects, c.Retention, c.Storage, c.Discard, c.MaxAge, c.MaxMsgs, c.Duplicates}
}

func TestBrokerProvisionsStreams(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBroker(t.Context(), BrokerOptions{DataDir: dir, PoisonMaxAge: time.Hour, PoisonMaxMsgs: 5})
	if err != nil {
		t.Fatal(err)
	}
	wantPoison := streamShape{
		Subjects: []string{"stagehand.poison"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		Discard: jetstream.DiscardOld, MaxAge: time.Hour, MaxMsgs: 5, Duplicates: 2 * time.Minute,
	}
	if diff := cmp.Diff(wantPoison, shapeOf(streamInfo(t, b, TopicPoison).Config)); diff != "" {
		t.Errorf("poison stream (-want +got):\n%s", diff)
	}
	wantWebhooks := streamShape{
		Subjects: []string{"stagehand.webhooks"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Discard: jetstream.DiscardNew, MaxMsgs: workQueueMaxMsgs, Duplicates: 10 * time.Minute,
	}
	if diff := cmp.Diff(wantWebhooks, shapeOf(streamInfo(t, b, TopicWebhooks).Config)); diff != "" {
		t.Errorf("webhook stream (-want +got):\n%s", diff)
	}
	c, err := b.js.PushConsumer(t.Context(), "STAGEHAND_WEBHOOKS", "workers")
	if err != nil {
		t.Fatal(err)
	}
	cc := c.CachedInfo().Config
	type consumerShape struct {
		Durable, DeliverGroup, FilterSubject string
		AckPolicy                            jetstream.AckPolicy
		DeliverPolicy                        jetstream.DeliverPolicy
		AckWait                              time.Duration
		MaxDeliver, MaxAckPending            int
	}
	wantConsumer := consumerShape{"workers", "workers", "stagehand.webhooks", jetstream.AckExplicitPolicy, jetstream.DeliverAllPolicy, 30 * time.Second, -1, 64}
	gotConsumer := consumerShape{cc.Durable, cc.DeliverGroup, cc.FilterSubject, cc.AckPolicy, cc.DeliverPolicy, cc.AckWait, cc.MaxDeliver, cc.MaxAckPending}
	if diff := cmp.Diff(wantConsumer, gotConsumer); diff != "" {
		t.Errorf("webhook consumer (-want +got):\n%s", diff)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with other bounds: the existing streams are updated.
	b = openBroker(t, BrokerOptions{DataDir: dir, PoisonMaxAge: 48 * time.Hour, PoisonMaxMsgs: 7, AckWait: time.Minute})
	wantPoison.MaxAge, wantPoison.MaxMsgs = 48*time.Hour, 7
	if diff := cmp.Diff(wantPoison, shapeOf(streamInfo(t, b, TopicPoison).Config)); diff != "" {
		t.Errorf("poison stream after the restart (-want +got):\n%s", diff)
	}
	c, err = b.js.PushConsumer(t.Context(), "STAGEHAND_WEBHOOKS", "workers")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.AckWait; got != time.Minute {
		t.Errorf("consumer AckWait after the restart = %s, want 1m", got)
	}
}

// A stream that cannot be updated in place (its retention differs) stops
// the start with an error that says what to do.
func TestBrokerConflictingStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		rt := b.routes[TopicWebhooks]
		if err := b.js.DeleteStream(t.Context(), rt.stream); err != nil {
			t.Fatal(err)
		}
		if _, err := b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: rt.stream, Subjects: []string{rt.subject}}); err != nil {
			t.Fatal(err)
		}
		opts := b.opts
		if b.ns != nil {
			if err := b.Close(); err != nil { // release the store
				t.Fatal(err)
			}
		}
		_, err := OpenBroker(t.Context(), opts)
		want := "provisioning stream " + rt.stream
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cannot be changed to this configuration in place") {
			t.Errorf("OpenBroker = %v, want an error containing %q and what to do", err, want)
		}
	})
}

func TestBrokerPing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		if err := b.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if err := b.js.DeleteConsumer(t.Context(), b.routes[TopicWebhooks].stream, "workers"); err != nil {
			t.Fatal(err)
		}
		if err := b.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "consumer workers") {
			t.Errorf("Ping without the consumer = %v, want an error about consumer workers", err)
		}
	})
}

func TestBrokerPingAfterClose(t *testing.T) {
	b, err := OpenBroker(t.Context(), BrokerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded, want an error")
	}
	if err := b.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestBrokerRefusesUnknownTopics(t *testing.T) {
	b := openBroker(t, BrokerOptions{DataDir: t.TempDir()})
	err := b.Publisher().Publish("stagehand.nope", newDelivery("g", "x"))
	if err == nil || !strings.Contains(err.Error(), "topic table") {
		t.Errorf("Publish to an unknown topic = %v, want an error pointing to the topic table", err)
	}
	if _, err := b.Subscriber().Subscribe(t.Context(), TopicPoison); err == nil {
		t.Error("Subscribe to the poison topic succeeded, want an error: it has no consumer")
	}
}

func TestBrokerStoreIsLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := OpenBroker(t.Context(), BrokerOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenBroker(t.Context(), BrokerOptions{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("a second OpenBroker on the same data dir = %v, want an error saying it is in use", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openBroker(t, BrokerOptions{DataDir: dir}) // free again
}

func TestBrokerExternalWithoutJetStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the test nats server did not start")
	}
	_, err = OpenBroker(t.Context(), BrokerOptions{URL: ns.ClientURL()})
	want := "nats server at " + ns.ClientURL() + " does not have JetStream enabled: start it with -js"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("OpenBroker = %v, want an error containing %q", err, want)
	}
}

func TestBrokerOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts BrokerOptions
		want string
	}{
		{"no data dir", BrokerOptions{}, "needs a data directory"},
		{"bad prefix", BrokerOptions{DataDir: t.TempDir(), Prefix: "Stage.hand"}, "prefix"},
		{"unreachable", BrokerOptions{URL: "nats://127.0.0.1:1"}, "check --nats-url"},
		{"data dir is a file", BrokerOptions{DataDir: aFile(t)}, "check that --data-dir is writable"},
		{"embedded replicas", BrokerOptions{DataDir: t.TempDir(), Replicas: 3}, "replicas need an external NATS cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenBroker(t.Context(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenBroker = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func aFile(t *testing.T) string {
	path := t.TempDir() + "/file"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                       "nats://127.0.0.1:4222",
		"nats://user:secret@nats:4222":                "nats://redacted@nats:4222",
		"nats://token@a:4222, nats://b:4222":          "nats://redacted@a:4222,nats://b:4222",
		"tls://u:p@a:4222,tls://u:p@b:4222":           "tls://redacted@a:4222,tls://redacted@b:4222",
		"nats://127.0.0.1:4222,nats://127.0.0.2:4222": "nats://127.0.0.1:4222,nats://127.0.0.2:4222",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
