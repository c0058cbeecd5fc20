// Package handlers holds what happens to each stored message: one function
// per GitHub event, called by the router after the delivery is durable.
// Each handler is idempotent: the delivery's GUID is recorded in the same
// transaction as its effects, so a redelivered message changes nothing.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// FileFetcher reads a file of a repository at a commit (the contents API
// with an installation token). A missing file is an error wrapping
// bot.ErrNotFound.
type FileFetcher interface {
	FetchFile(ctx context.Context, installationID int64, owner, repo, path, ref string) ([]byte, error)
}

// CheckRunCreator creates check runs (githubapp.App).
type CheckRunCreator interface {
	CreateCheckRun(ctx context.Context, inst int64, owner, repo string, opts github.CreateCheckRunOptions) (int64, error)
}

// Advancer starts what can start once executions are queued.
type Advancer interface {
	Advance(ctx context.Context, programID int64) error
}

// Webhooks handles stored webhook deliveries.
type Webhooks struct {
	Store  bot.Transactor
	Engine Advancer // nil: executions stay queued (tests of intake only)
	// Commands carries out clicks and slash commands (nil: they are only
	// recorded).
	Commands *bot.Engine
	GitHub   InteractAPI
	// Checks creates the check runs a push leaves without an execution:
	// stagehand/config for an invalid file, and a skipped check run for a
	// pipeline rule A held back (optional).
	Checks CheckRunCreator
	// AppID is this GitHub App's ID: check runs of other apps are ignored.
	AppID     int64
	PublicURL string
	// Refusals counts refused clicks and commands (optional).
	Refusals func(action string)
	// Overrides counts the break-glass overrides carried out
	// (/stagehand deploy-now --override; optional).
	Overrides func()
	Files     FileFetcher
	// Policies reads programs' policies from their default branches
	// (SPEC §3): pushes are decided, and commands and clicks authorized,
	// against it.
	Policies    *Policies
	ParseConfig bot.ConfigParser
	Clock       bot.Clock
	Logger      *slog.Logger
}

// Delivery is one webhook delivery being handled.
type Delivery struct {
	GUID    string // X-GitHub-Delivery
	Event   string // X-GitHub-Event
	Payload []byte
	// Received is when the intake took it (zero: not known). GitHub sent it
	// after the event happened, so what is read from GitHub after Received
	// shows the repository as the event left it, or later.
	Received time.Time
}

// Handle handles one stored delivery (router.WebhookHandler calls it).
func (h *Webhooks) Handle(ctx context.Context, guid, event string, received time.Time, payload []byte) error {
	return h.HandleDelivery(ctx, Delivery{GUID: guid, Event: event, Payload: payload, Received: received})
}

// HandleDelivery handles one delivery (Handle without the broker message).
// The delivery bookkeeping is done here, once for every event: a delivery
// processed before does nothing; otherwise its handler runs, and the
// delivery is recorded as processed in the same transaction as the
// handler's effects. A handler's error leaves the delivery unrecorded, so
// the router retries it.
func (h *Webhooks) HandleDelivery(ctx context.Context, d Delivery) error {
	handle := func(*Webhooks, context.Context, Delivery) (outcome, error) {
		return ignored("event not used; recorded"), nil
	}
	if decode, ok := registry[d.Event]; ok {
		var err error
		if handle, err = decode(d.Payload); err != nil {
			// Before the store is touched: no retry can fix it.
			return bot.PermanentError{Err: fmt.Errorf("decoding the %s payload of delivery %s: %w", d.Event, d.GUID, err)}
		}
	}
	done, err := h.processed(ctx, d.GUID)
	if err != nil {
		return fmt.Errorf("checking delivery %s: %w", d.GUID, err)
	}
	if done {
		h.Logger.InfoContext(ctx, "delivery already processed; nothing to do")
		return nil
	}
	out, err := handle(h, ctx, d)
	if err != nil {
		return err
	}
	fresh, err := h.mark(ctx, d, out.effects)
	if err != nil || !fresh {
		return err
	}
	if out.note != "" {
		h.Logger.LogAttrs(ctx, slog.LevelInfo, out.note, out.attrs...)
	}
	if out.after != nil {
		out.after(ctx)
	}
	return nil
}

// An outcome is what a handler did with a delivery, for HandleDelivery to
// record. The zero outcome records the delivery and nothing else.
type outcome struct {
	// effects run in the transaction that records the delivery: both
	// happen, or neither.
	effects func(tx bot.Tx) error
	// note and attrs are logged once the delivery is recorded.
	note  string
	attrs []slog.Attr
	// after runs once the delivery is recorded (logging, nudging the
	// engine); it cannot fail the delivery.
	after func(ctx context.Context)
}

// ignored is the outcome of a delivery that changes nothing: it is
// recorded and logged.
func ignored(note string, attrs ...slog.Attr) outcome {
	return outcome{note: note, attrs: attrs}
}

// An eventHandler decodes a delivery's payload into its event and returns
// the function that handles it.
type eventHandler func(payload []byte) (func(h *Webhooks, ctx context.Context, d Delivery) (outcome, error), error)

// registry holds the handler of each event; each handler's file declares
// its events with handles, as go-githubapp's Handles() does.
var registry = map[string]eventHandler{}

// handles registers fn as the handler of event's deliveries: the payload is
// decoded into E (go-github's type for the event) first; a payload that
// does not decode is permanently refused.
func handles[E any](event string, fn func(h *Webhooks, ctx context.Context, d Delivery, ev *E) (outcome, error)) bool {
	if _, dup := registry[event]; dup {
		panic("webhook: two handlers for " + event)
	}
	registry[event] = func(payload []byte) (func(*Webhooks, context.Context, Delivery) (outcome, error), error) {
		ev := new(E)
		if err := json.Unmarshal(payload, ev); err != nil {
			return nil, err
		}
		return func(h *Webhooks, ctx context.Context, d Delivery) (outcome, error) { return fn(h, ctx, d, ev) }, nil
	}
	return true
}

// Events are the webhook events Stagehand handles, sorted; the intake
// answers others with 202 and drops them.
func Events() []string {
	out := make([]string, 0, len(registry))
	for e := range registry {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// EventSet is Events as a set, as the intake takes it.
func EventSet() map[string]bool {
	set := map[string]bool{}
	for _, e := range Events() {
		set[e] = true
	}
	return set
}

var _ = handles("ping", func(h *Webhooks, ctx context.Context, d Delivery, ev *github.PingEvent) (outcome, error) {
	return ignored("ping received", slog.String("zen", ev.GetZen()), slog.Int64("hook_id", ev.GetHookID())), nil
})

// mark records the delivery as processed and runs fn in the same
// transaction. When the delivery was processed meanwhile, fn does not run
// and fresh is false.
func (h *Webhooks) mark(ctx context.Context, d Delivery, fn func(tx bot.Tx) error) (fresh bool, err error) {
	err = h.Store.Update(ctx, func(tx bot.Tx) error {
		fresh, err = tx.MarkDelivery(ctx, bot.Delivery{GUID: d.GUID, Event: d.Event, ProcessedAt: h.Clock.Now()})
		if err != nil || !fresh || fn == nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		return false, fmt.Errorf("recording delivery %s: %w", d.GUID, err)
	}
	if !fresh {
		h.Logger.InfoContext(ctx, "delivery already processed; nothing to do")
	}
	return fresh, nil
}

// processed reports whether a delivery was handled before, so handlers can
// skip slow work (GitHub API calls) for redeliveries.
func (h *Webhooks) processed(ctx context.Context, guid string) (bool, error) {
	r, err := bot.ReadDeliveryRecord(ctx, h.Store, guid)
	return !r.ProcessedAt.IsZero(), err
}

var errNoInstallation = errors.New("the payload names no installation")
