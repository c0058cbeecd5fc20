package router

import (
	"context"
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// DeliveryLog is what the intake and the router keep about delivery GUIDs
// beyond the broker: whether a GUID was processed, and whether it went to
// the poison queue. It lets GitHub's "Redeliver" work as users expect: a
// processed delivery is answered "duplicate" without being stored again,
// and a poisoned one is stored and handled again, even within the broker's
// duplicate window, which would otherwise drop it as a copy.
type DeliveryLog interface {
	DeliveryRecord(ctx context.Context, guid string) (bot.DeliveryRecord, error)
	MarkPoisoned(ctx context.Context, p bot.PoisonedDelivery) error
}

// StoreDeliveryLog is the DeliveryLog of a store.
type StoreDeliveryLog struct{ Store bot.Transactor }

// DeliveryRecord implements DeliveryLog.
func (l StoreDeliveryLog) DeliveryRecord(ctx context.Context, guid string) (bot.DeliveryRecord, error) {
	return bot.ReadDeliveryRecord(ctx, l.Store, guid)
}

// MarkPoisoned implements DeliveryLog.
func (l StoreDeliveryLog) MarkPoisoned(ctx context.Context, p bot.PoisonedDelivery) error {
	return l.Store.Update(ctx, func(tx bot.Tx) error { return tx.MarkPoisoned(ctx, p) })
}

// messageID is the broker message id of a delivery. The broker drops a
// message whose id it has stored within its duplicate window, so a
// redelivery of a poisoned GUID gets an id of its own: the GUID and the
// time of the poisoning. Redeliveries after one poisoning still share an
// id, and are stored once.
func messageID(guid string, r bot.DeliveryRecord) string {
	if r.PoisonedAt.IsZero() {
		return guid
	}
	return fmt.Sprintf("%s/redelivery-%d", guid, r.PoisonedAt.UnixNano())
}

// Accepted implements AcceptedDeliveries with what the store knows: a GUID
// processed, or poisoned (taken in, and handled until its retries ran out:
// asking GitHub for it again would poison it again). A delivery the broker
// holds but no handler has finished is not known here; the intake's and
// the broker's de-duplication by GUID keep a redelivery of it from being
// handled twice.
func (l StoreDeliveryLog) Accepted(ctx context.Context, guid string) (bool, error) {
	r, err := l.DeliveryRecord(ctx, guid)
	return !r.ProcessedAt.IsZero() || !r.PoisonedAt.IsZero(), err
}

// LastRequest implements RedeliveryRequests.
func (l StoreDeliveryLog) LastRequest(ctx context.Context, guid string) (attemptID int64, asked bool, err error) {
	r, err := l.DeliveryRecord(ctx, guid)
	return r.RedeliveryRequestedFor, !r.RedeliveryRequestedAt.IsZero(), err
}

// MarkRequested implements RedeliveryRequests.
func (l StoreDeliveryLog) MarkRequested(ctx context.Context, r bot.RedeliveryRequest) error {
	return l.Store.Update(ctx, func(tx bot.Tx) error {
		_, err := tx.MarkRedeliveryRequested(ctx, r)
		return err
	})
}
