package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testRedeliveryRequests: a GUID's redelivery request is recorded once per
// attempt it names: a request naming a later attempt (GitHub's redelivery
// failed too) replaces it, one naming the same or an earlier attempt
// changes nothing; the record shows the latest beside processing and
// poisoning.
func testRedeliveryRequests(t *testing.T, s bot.Store) {
	ctx := t.Context()
	mark := func(r bot.RedeliveryRequest) bool {
		t.Helper()
		var fresh bool
		update(t, s, func(tx bot.Tx) (err error) {
			fresh, err = tx.MarkRedeliveryRequested(ctx, r)
			return err
		})
		return fresh
	}
	record := func(guid string) bot.DeliveryRecord { t.Helper(); return deliveryRecord(t, s, guid) }
	if !mark(bot.RedeliveryRequest{GUID: "r-1", Event: "push", DeliveryID: 7, Outcome: "requested", RequestedAt: t0.In(cet)}) {
		t.Errorf("first request of r-1: not fresh")
	}
	if mark(bot.RedeliveryRequest{GUID: "r-1", Event: "push", DeliveryID: 7, Outcome: "requested", RequestedAt: t0.Add(time.Hour)}) {
		t.Errorf("second request of r-1 naming the same attempt: fresh, want recorded once")
	}
	if diff := cmp.Diff(bot.DeliveryRecord{RedeliveryRequestedAt: t0, RedeliveryRequestedFor: 7}, record("r-1")); diff != "" {
		t.Errorf("after the requests of attempt 7 (-want +got):\n%s", diff)
	}
	if !mark(bot.RedeliveryRequest{GUID: "r-1", Event: "push", DeliveryID: 12, Outcome: "requested", RequestedAt: t0.Add(2 * time.Hour)}) {
		t.Errorf("request of r-1 naming a later attempt (the redelivery failed): not fresh")
	}
	if mark(bot.RedeliveryRequest{GUID: "r-1", Event: "push", DeliveryID: 9, Outcome: "requested", RequestedAt: t0.Add(3 * time.Hour)}) {
		t.Errorf("request of r-1 naming an earlier attempt: fresh")
	}
	if diff := cmp.Diff(bot.DeliveryRecord{RedeliveryRequestedAt: t0.Add(2 * time.Hour), RedeliveryRequestedFor: 12}, record("r-1")); diff != "" {
		t.Errorf("after the request of attempt 12 (-want +got):\n%s", diff)
	}
	update(t, s, func(tx bot.Tx) error {
		_, err := tx.MarkDelivery(ctx, bot.Delivery{GUID: "r-1", Event: "push", ProcessedAt: t0.Add(time.Minute)})
		return err
	})
	if diff := cmp.Diff(bot.DeliveryRecord{ProcessedAt: t0.Add(time.Minute), RedeliveryRequestedAt: t0.Add(2 * time.Hour), RedeliveryRequestedFor: 12}, record("r-1")); diff != "" {
		t.Errorf("processed after the request (-want +got):\n%s", diff)
	}
	// The store stamps a zero time; an empty GUID is refused.
	mark(bot.RedeliveryRequest{GUID: "r-2", Event: "push", DeliveryID: 9, Outcome: "requested"})
	if record("r-2").RedeliveryRequestedAt.IsZero() {
		t.Errorf("MarkRedeliveryRequested with a zero time: the store did not stamp it")
	}
	err := s.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.MarkRedeliveryRequested(ctx, bot.RedeliveryRequest{Event: "push"})
		return err
	})
	if err == nil {
		t.Errorf("MarkRedeliveryRequested with an empty GUID: no error")
	}
}

// deliveryRecord reads what s knows of a delivery GUID.
func deliveryRecord(t *testing.T, s bot.Store, guid string) bot.DeliveryRecord {
	t.Helper()
	var r bot.DeliveryRecord
	view(t, s, func(tx bot.Tx) (err error) {
		r, err = tx.DeliveryRecord(t.Context(), guid)
		return err
	})
	// A store that also reads a record outside a transaction (the
	// intake's lookup, state.SQLite) must read the same.
	if direct, ok := s.(interface {
		DeliveryRecord(ctx context.Context, guid string) (bot.DeliveryRecord, error)
	}); ok {
		got, err := direct.DeliveryRecord(t.Context(), guid)
		if err != nil {
			t.Fatalf("DeliveryRecord(%s) outside a transaction: %v", guid, err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("DeliveryRecord(%s) outside a transaction differs from inside one (-tx +direct):\n%s", guid, diff)
		}
	}
	return r
}
