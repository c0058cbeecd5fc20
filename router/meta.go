package router

import (
	"context"

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
// each stored delivery's GUID, event and payload, read from the message's
// metadata (a message without a GUID uses its own id).
func WebhookHandler(handle func(ctx context.Context, guid, event string, payload []byte) error) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		guid := msg.Metadata.Get(MetaDeliveryID)
		if guid == "" {
			guid = msg.UUID
		}
		return handle(msg.Context(), guid, msg.Metadata.Get(MetaEvent), msg.Payload)
	}
}
