package router

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys of a webhook message, set by the intake and read by the
// router's middleware and the webhook worker.
const (
	MetaEvent      = "event"
	MetaDeliveryID = "delivery_id"
	MetaReceivedAt = "received_at"
)

// WebhookHandler is the webhooks topic's handler that calls handle with
// each stored delivery's GUID, event, received time and payload, read from
// the message's metadata (a message without a GUID uses its own id; one
// without a readable received time gives the zero time).
func WebhookHandler(handle func(ctx context.Context, guid, event string, received time.Time, payload []byte) error) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		guid := msg.Metadata.Get(MetaDeliveryID)
		if guid == "" {
			guid = msg.UUID
		}
		received, _ := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaReceivedAt)) // zero when missing or unreadable
		return handle(msg.Context(), guid, msg.Metadata.Get(MetaEvent), received, msg.Payload)
	}
}
