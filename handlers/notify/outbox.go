package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// StoreOutbox is the Outbox of a store: the notifications the engine
// queued (bot.NotifyTx) with their program and execution as they are now.
type StoreOutbox struct {
	Store     bot.Transactor
	PublicURL string // for the link to the execution on the dashboard
}

// Due lists what is due at now. A notification whose program or
// execution is no longer in the store is given up, so it cannot hold back
// the others.
func (o StoreOutbox) Due(ctx context.Context, now time.Time, limit int) ([]Pending, error) {
	var out []Pending
	var orphans []bot.Notification
	err := o.Store.View(ctx, func(tx bot.Tx) error {
		out, orphans = nil, nil
		ns, err := tx.DueNotifications(ctx, now, limit)
		if err != nil {
			return err
		}
		for _, n := range ns {
			prog, err := tx.Program(ctx, n.ProgramID)
			if err != nil && !errors.Is(err, bot.ErrNotFound) {
				return fmt.Errorf("program of notification %d: %w", n.ID, err)
			}
			var ex bot.Execution
			if err == nil {
				ex, err = tx.Execution(ctx, n.ExecutionID)
			}
			if errors.Is(err, bot.ErrNotFound) {
				n.State, n.Error = bot.NotificationGaveUp, "its execution is no longer in the store"
				orphans = append(orphans, n)
				continue
			}
			if err != nil {
				return fmt.Errorf("execution of notification %d: %w", n.ID, err)
			}
			out = append(out, Pending{ID: n.ID, Target: n.Target, Attempts: n.Attempts, CreatedAt: n.CreatedAt,
				Message: Message{Delivery: n.Delivery, Event: n.Event, At: n.CreatedAt, Program: prog, Execution: ex,
					URL: bot.ExecutionURL(o.PublicURL, prog, ex.Number), Detail: n.Detail}})
		}
		return nil
	})
	if err != nil || len(orphans) == 0 {
		return out, err
	}
	return out, o.Store.Update(ctx, func(tx bot.Tx) error {
		for _, n := range orphans {
			if err := tx.RecordNotification(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// Claim takes p for one attempt (Claimer): only while the outbox still
// holds it pending, due, with the attempts the sender read.
func (o StoreOutbox) Claim(ctx context.Context, p Pending, now, until time.Time) (bool, error) {
	var claimed bool
	err := o.Store.Update(ctx, func(tx bot.Tx) (err error) {
		claimed, err = tx.ClaimNotification(ctx, p.ID, p.Attempts, now, until)
		return err
	})
	return claimed, err
}

// Record stores an attempt's result.
func (o StoreOutbox) Record(ctx context.Context, id int64, r Result) error {
	n := bot.Notification{ID: id, Attempts: r.Attempts, Error: r.Error, NextAt: r.NextAt, State: bot.NotificationPending}
	switch r.Outcome {
	case OutcomeSent:
		n.State = bot.NotificationSent
	case OutcomeGaveUp:
		n.State = bot.NotificationGaveUp
	}
	return o.Store.Update(ctx, func(tx bot.Tx) error { return tx.RecordNotification(ctx, n) })
}

// notifyLease is the lease the sending replica holds.
const notifyLease = "notifications"

// StoreLease is the lease of the store under which one replica sends: as
// the reporter's, held for ttl and renewed each turn.
func StoreLease(store bot.Transactor, holder string, now func() time.Time, ttl time.Duration) Lease {
	return Lease(bot.StoreLease(store, notifyLease, holder, now, ttl))
}

// NewHolder names this process in the lease: host, pid and a random part.
func NewHolder() string { return bot.NewLeaseHolder() }
