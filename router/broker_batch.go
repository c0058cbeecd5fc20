package router

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// JetStream's atomic batch publish (NATS server 2.12 and later): the
// messages of a batch are stored together, all or none, and on a server
// that syncs every write (the embedded broker's default) the whole batch
// shares one fsync before the one PubAck of its last message. The inbox
// forwards through it, so moving deliveries into the broker costs an fsync
// per batch, not per delivery.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	// maxAtomicBatch stays under the server's limit of 1000 messages.
	maxAtomicBatch = 500
	// batchCommitTimeout bounds the wait for a batch's PubAck.
	batchCommitTimeout = 30 * time.Second
)

// PublishBatch stores msgs on topic and returns once the broker holds them
// (on disk, with the embedded broker's default). It implements Forwarder.
// The embedded broker takes them in atomic batches; an external server,
// which may predate atomic batches, one at a time. A message whose UUID
// the stream holds within its duplicate window is dropped: when a batch
// fails (one such copy fails the whole batch), its messages are published
// one at a time instead, copies dropped.
func (b *Broker) PublishBatch(topic string, msgs []*message.Message) error {
	rt, err := b.route(topic)
	if err != nil {
		return err
	}
	if !b.atomicBatches() {
		return b.Publisher().Publish(topic, msgs...)
	}
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), maxAtomicBatch)]
		msgs = msgs[len(chunk):]
		if err := b.publishAtomic(rt, chunk); err != nil {
			b.log.Debug("atomic batch refused; publishing its messages one at a time", "messages", len(chunk), "error", err)
			if err := b.Publisher().Publish(topic, chunk...); err != nil {
				return err
			}
		}
	}
	return nil
}

// atomicBatches reports whether the broker's queue streams take atomic
// batches: the embedded server's do (streamConfig allows them).
func (b *Broker) atomicBatches() bool { return b.ns != nil }

// publishAtomic publishes msgs as one atomic batch and waits for its
// PubAck.
func (b *Broker) publishAtomic(rt route, msgs []*message.Message) error {
	id := rand.Text()
	var marshal wmnats.NATSMarshaler
	for i, m := range msgs {
		nm, err := marshal.Marshal(rt.subject, m)
		if err != nil {
			return err
		}
		nm.Header.Set(nats.MsgIdHdr, m.UUID)
		nm.Header.Set(hdrBatchID, id)
		nm.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			// No reply: an error ends the batch, and the commit says so.
			if err := b.nc.PublishMsg(nm); err != nil {
				return err
			}
			continue
		}
		nm.Header.Set(hdrBatchCommit, "1")
		resp, err := b.nc.RequestMsg(nm, batchCommitTimeout)
		if err != nil {
			return fmt.Errorf("committing a batch of %d messages on stream %s: %w", len(msgs), rt.stream, err)
		}
		var ack struct {
			Error *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
			Count int `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return fmt.Errorf("reading the PubAck of a batch on stream %s: %w", rt.stream, err)
		}
		if ack.Error != nil {
			return fmt.Errorf("stream %s refused a batch of %d messages: %s (%d)", rt.stream, len(msgs), ack.Error.Description, ack.Error.Code)
		}
		if ack.Count != len(msgs) {
			return fmt.Errorf("stream %s stored %d messages of a batch of %d", rt.stream, ack.Count, len(msgs))
		}
	}
	return nil
}
