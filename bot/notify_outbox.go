package bot

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// NotificationState is where a queued notification stands.
type NotificationState string

// The states of a notification: pending until it arrives (sent) or the
// sender stops trying (gave-up, shown on the execution's page).
const (
	NotificationPending NotificationState = "pending"
	NotificationSent    NotificationState = "sent"
	NotificationGaveUp  NotificationState = "gave-up"
)

// Notification is one message to one target, queued in the outbox in the
// transaction of the change it tells of, and posted later by the sender
// (handlers/notify): the pipeline never waits for a receiver. Target is
// the target as the policy declared it when the event happened (its
// Events are not kept); the URL and signing key are read from the secret
// source when it is sent.
type Notification struct {
	ID          int64
	ProgramID   int64
	ExecutionID int64
	Target      NotificationTarget
	Event       NotifyEvent
	Detail      string // an override's reason, …
	Delivery    string // a UUID: X-Stagehand-Delivery, the same on every attempt
	CreatedAt   time.Time
	State       NotificationState
	Attempts    int
	NextAt      time.Time // pending: not before
	Error       string    // why the last attempt failed; never a URL or a secret
}

// NotifyTx is the notification outbox.
type NotifyTx interface {
	// EnqueueNotification queues n (pending, due at its CreatedAt) and
	// returns its ID.
	EnqueueNotification(ctx context.Context, n Notification) (int64, error)
	// DueNotifications lists pending notifications due at now, oldest
	// first, at most limit.
	DueNotifications(ctx context.Context, now time.Time, limit int) ([]Notification, error)
	// RecordNotification stores an attempt's result: n's State, Attempts,
	// NextAt and Error, by ID.
	RecordNotification(ctx context.Context, n Notification) error
	// NotificationsOf lists an execution's notifications, oldest first.
	NotificationsOf(ctx context.Context, executionID int64) ([]Notification, error)
	// ClaimNotification takes notification id for one attempt, before it
	// is made: only while it is still pending, with attempts made so far
	// and due at now, it is put off until until (so no other sender takes
	// it meanwhile) and claimed is true. A sender that finds it claimed,
	// sent or attempted already by another makes no attempt.
	ClaimNotification(ctx context.Context, id int64, attempts int, now, until time.Time) (claimed bool, err error)
}

// NewDeliveryID is a random (version 4) UUID.
func NewDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// notify queues ev of ex for every target of its policy that wants it, in
// tx: the transaction of the change. A configuration that no longer
// parses sends nothing (it is reported where the execution is).
func (e *Engine) notify(ctx context.Context, tx EngineTx, ex Execution, ev NotifyEvent, detail string) error {
	if e.ParseConfig == nil || len(ex.Config) == 0 {
		return nil
	}
	cfg, err := e.executionConfig(ex)
	if err != nil {
		return nil
	}
	for _, t := range TargetsFor(cfg, ev) {
		t.Events = nil
		n := Notification{ProgramID: ex.ProgramID, ExecutionID: ex.ID, Target: t, Event: ev, Detail: detail,
			Delivery: NewDeliveryID(), CreatedAt: e.Clock.Now(), State: NotificationPending}
		if _, err := tx.EnqueueNotification(ctx, n); err != nil {
			return fmt.Errorf("queue notification %s of %s to %s: %w", ev, ex, t.Name, err)
		}
	}
	return nil
}
