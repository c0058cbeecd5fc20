package bot

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Lease says whether this replica may do a job now that only one replica
// of those sharing a store may do at a time (sending notifications, asking
// GitHub for redeliveries).
type Lease func(ctx context.Context) (bool, error)

// StoreLease is the lease called name in store, taken or renewed by holder
// for ttl on every call (ReportTx.AcquireLease): a holder that stops
// calling loses it ttl later.
func StoreLease(store Transactor, name, holder string, now func() time.Time, ttl time.Duration) Lease {
	return func(ctx context.Context) (bool, error) {
		var held bool
		err := store.Update(ctx, func(tx Tx) (err error) {
			held, err = tx.AcquireLease(ctx, name, holder, now(), ttl)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("take the %s lease: %w", name, err)
		}
		return held, nil
	}
}

// NewLeaseHolder names this process in a lease: host, pid and a random part.
func NewLeaseHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), NewDeliveryID()[:8])
}

// GiveBack gives the lease called name back when holder holds it, by
// renewing it for a nanosecond: whoever asks next gets it, instead of a ttl
// later (a replica that stops cleanly hands its job over at once). When
// another holder has it, nothing changes.
func GiveBack(ctx context.Context, store Transactor, name, holder string, now time.Time) error {
	_, err := StoreLease(store, name, holder, func() time.Time { return now }, time.Nanosecond)(ctx)
	return err
}
