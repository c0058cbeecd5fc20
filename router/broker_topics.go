package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The watermill topics the broker carries. With the default broker prefix
// they are also the NATS subjects.
const (
	TopicWebhooks = "stagehand.webhooks"
	TopicSteps    = "stagehand.steps"
	TopicPoison   = "stagehand.poison"
)

// topics is the table of every topic: a new one (step jobs, for example) is
// one more line here, plus its Topic constant.
var topics = []topicSpec{
	{topic: TopicWebhooks, name: "webhooks", queue: true},
	// Step jobs: a worker claims the step (recorded in state with a lease)
	// and acknowledges at once; the command runs outside the handler.
	{topic: TopicSteps, name: "steps", queue: true},
	{topic: TopicPoison, name: "poison"},
}

// topicSpec describes one topic.
//
// A queue topic is a work queue: a stream with WorkQueuePolicy retention (a
// message is removed once acknowledged, so the stream holds only work not yet
// done) and one durable push consumer with a deliver group that every
// subscriber of every process joins, so each message goes to one of them.
// Other topics are kept for inspection: a stream bounded by age and count
// (BrokerOptions.PoisonMaxAge, PoisonMaxMsgs), without a consumer.
type topicSpec struct {
	topic string // the watermill topic, e.g. TopicWebhooks
	name  string // short name: subject "<prefix>.<name>", stream "<PREFIX>_<NAME>"
	queue bool
	// ackWait overrides BrokerOptions.AckWait for a queue whose handlers
	// take longer (a deploy step, for example).
	ackWait time.Duration
}

const (
	// workQueueDuplicates is how long a queue stream remembers a message
	// UUID (the delivery GUID) to drop a second publish of it.
	workQueueDuplicates = 10 * time.Minute
	// workQueueMaxMsgs bounds a queue stream should its consumers be gone:
	// publishing then fails (intake answers 503, GitHub shows the delivery as
	// failed and it can be redelivered) instead of filling the disk.
	workQueueMaxMsgs = 100_000
	// maxAckPending bounds the messages handed out and not yet acknowledged,
	// across all replicas, so that messages do not wait in client buffers
	// until their AckWait expires.
	maxAckPending = 64
	// consumerName is the durable consumer of each queue stream, and its
	// deliver (queue) group.
	consumerName = "workers"
	// archiveDuplicates is the duplicate window of a non-queue stream (it
	// must not exceed the stream's MaxAge).
	archiveDuplicates = 2 * time.Minute
)

// route is a topicSpec resolved with the broker's options.
type route struct {
	topicSpec
	subject string // NATS subject
	stream  string // stream name
	durable string // consumer name and deliver group (queue topics)
	deliver string // the push consumer's deliver subject (queue topics)
	ackWait time.Duration
}

func resolveRoutes(o BrokerOptions) map[string]route {
	routes := make(map[string]route, len(topics))
	for _, t := range topics {
		rt := route{
			topicSpec: t,
			subject:   o.Prefix + "." + t.name,
			stream:    strings.ToUpper(o.Prefix + "_" + t.name),
			ackWait:   o.AckWait,
		}
		if t.ackWait > 0 {
			rt.ackWait = t.ackWait
		}
		if t.queue {
			rt.durable = consumerName
			rt.deliver = "_stagehand.deliver." + o.Prefix + "." + t.name
		}
		routes[t.topic] = rt
	}
	return routes
}

func topicOrder() []string {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.topic
	}
	return names
}

func (b *Broker) route(topic string) (route, error) {
	rt, ok := b.routes[topic]
	if !ok {
		return route{}, fmt.Errorf("topic %q is not provisioned on the broker: add it to the topic table in router/broker_topics.go", topic)
	}
	return rt, nil
}

func (b *Broker) streamConfig(rt route) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:     rt.stream,
		Subjects: []string{rt.subject},
		Storage:  jetstream.FileStorage,
		Replicas: b.opts.Replicas,
	}
	if rt.queue {
		cfg.Description = "Stagehand " + rt.name + " to handle; a message is removed once handled"
		cfg.Retention = jetstream.WorkQueuePolicy
		cfg.Duplicates = workQueueDuplicates
		cfg.MaxMsgs = workQueueMaxMsgs
		cfg.Discard = jetstream.DiscardNew
		// The inbox forwards in atomic batches (broker_batch.go); an
		// external server may predate them, and is not sent any.
		cfg.AllowAtomicPublish = b.atomicBatches()
		return cfg
	}
	cfg.Description = "Stagehand " + rt.name + " messages, kept for inspection"
	cfg.Retention = jetstream.LimitsPolicy
	cfg.MaxAge = b.opts.PoisonMaxAge
	cfg.MaxMsgs = b.opts.PoisonMaxMsgs
	cfg.Discard = jetstream.DiscardOld
	cfg.Duplicates = min(archiveDuplicates, b.opts.PoisonMaxAge)
	return cfg
}

func consumerConfig(rt route) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        rt.durable,
		Description:    "Stagehand " + rt.name + " handlers: each message goes to one member of the deliver group",
		DeliverSubject: rt.deliver,
		DeliverGroup:   rt.durable,
		DeliverPolicy:  jetstream.DeliverAllPolicy, // required by a work queue
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        rt.ackWait,
		MaxDeliver:     -1, // the router's poison queue ends a message's life, not the broker
		MaxAckPending:  maxAckPending,
		FilterSubject:  rt.subject,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
	}
}

// provision creates the topic's stream (and consumer), or updates them to
// the configuration above; running it again is harmless.
func (b *Broker) provision(ctx context.Context, rt route) error {
	cfg := b.streamConfig(rt)
	if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("provisioning stream %s (subject %s) on %s: %w%s", cfg.Name, rt.subject, b.where, err, b.provisionHint(err, cfg.Name, ""))
	}
	if !rt.queue {
		return nil
	}
	if _, err := b.js.CreateOrUpdatePushConsumer(ctx, rt.stream, consumerConfig(rt)); err != nil {
		return fmt.Errorf("provisioning consumer %s of stream %s on %s: %w%s", rt.durable, rt.stream, b.where, err, b.provisionHint(err, rt.stream, rt.durable))
	}
	return nil
}

// provisionHint tells an operator what to do when an existing stream or
// consumer cannot be brought to the configuration Stagehand needs.
func (b *Broker) provisionHint(err error, stream, consumer string) string {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return ""
	}
	switch {
	case apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse,
		strings.Contains(apiErr.Description, "overlap"):
		return ": another stream already uses these subjects; remove it, or set another broker prefix"
	case b.ns != nil:
		return fmt.Sprintf(": the existing store cannot be changed to this configuration in place; stop Stagehand and move %s aside to start the broker afresh (messages not yet handled stay in the old directory)", b.storeDir)
	case consumer == "":
		return fmt.Sprintf(": the existing stream cannot be changed to this configuration in place; check `nats stream info %s`, and if it may go (its unhandled messages go with it), remove it with `nats stream rm %s` and restart", stream, stream)
	default:
		return fmt.Sprintf(": the existing consumer cannot be changed to this configuration in place; remove it with `nats consumer rm %s %s` (its messages stay in the stream) and restart", stream, consumer)
	}
}
