package router

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
)

// TestWebhookHandlerPassesTheReceivedTime: the handler gets the time the
// intake stored with the delivery (the webhook handlers share branch-head
// reads by it), and the zero time when the message has none or an
// unreadable one.
func TestWebhookHandlerPassesTheReceivedTime(t *testing.T) {
	at := time.Date(2026, 12, 5, 18, 30, 1, 123456789, time.UTC)
	tests := []struct {
		name     string
		received string
		want     time.Time
	}{
		{name: "as the intake writes it", received: at.Format(time.RFC3339Nano), want: at},
		{name: "missing", received: "", want: time.Time{}},
		{name: "unreadable", received: "yesterday", want: time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := message.NewMessage("m1", []byte("{}"))
			msg.Metadata.Set(MetaDeliveryID, "guid-1")
			msg.Metadata.Set(MetaEvent, "push")
			if tt.received != "" {
				msg.Metadata.Set(MetaReceivedAt, tt.received)
			}
			var got time.Time
			h := WebhookHandler(func(ctx context.Context, guid, event string, received time.Time, payload []byte) error {
				got = received
				return nil
			})
			if err := h(msg); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
		})
	}
}
