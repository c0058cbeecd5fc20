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

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// FileFetcher reads a file of a repository at a commit (the contents API
// with an installation token). A missing file is an error wrapping
// bot.ErrNotFound.
type FileFetcher interface {
	FetchFile(ctx context.Context, installationID int64, owner, repo, path, ref string) ([]byte, error)
}

// SecretStatus says, for each declared secret, "set" or "missing".
type SecretStatus interface {
	Status(prog bot.Program, env bot.EnvironmentName, names []string) map[string]string
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
	Store  bot.Store
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
	Files    FileFetcher
	// Policies reads programs' policies from their default branches
	// (SPEC §3): pushes are decided, and commands and clicks authorized,
	// against it.
	Policies *Policies
	// Secrets says whether declared secrets have a value (env list);
	// optional.
	Secrets     SecretStatus
	ParseConfig bot.ConfigParser
	Clock       bot.Clock
	Logger      *slog.Logger
}

// Delivery is one webhook delivery being handled.
type Delivery struct {
	GUID    string // X-GitHub-Delivery
	Event   string // X-GitHub-Event
	Payload []byte
}

// Handle handles one stored delivery (router.WebhookHandler calls it).
func (h *Webhooks) Handle(ctx context.Context, guid, event string, payload []byte) error {
	return h.HandleDelivery(ctx, Delivery{GUID: guid, Event: event, Payload: payload})
}

// HandleDelivery handles one delivery (Handle without the broker message).
func (h *Webhooks) HandleDelivery(ctx context.Context, d Delivery) error {
	eh, ok := registry[d.Event]
	if !ok {
		return h.record(ctx, d, "event not used; recorded")
	}
	return eh(h, ctx, d)
}

// An eventHandler handles the deliveries of one event type.
type eventHandler func(h *Webhooks, ctx context.Context, d Delivery) error

// registry holds the handler of each event; each handler's file declares
// its events with handles, as go-githubapp's Handles() does.
var registry = map[string]eventHandler{}

// handles registers fn as the handler of event's deliveries: the payload is
// decoded into E (go-github's type for the event) first; a payload that
// does not decode is permanently refused.
func handles[E any](event string, fn func(h *Webhooks, ctx context.Context, d Delivery, ev *E) error) bool {
	if _, dup := registry[event]; dup {
		panic("webhook: two handlers for " + event)
	}
	registry[event] = func(h *Webhooks, ctx context.Context, d Delivery) error {
		ev := new(E)
		if err := json.Unmarshal(d.Payload, ev); err != nil {
			return bot.PermanentError{Err: fmt.Errorf("decoding the %s payload of delivery %s: %w", d.Event, d.GUID, err)}
		}
		return fn(h, ctx, d, ev)
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

var _ = handles("ping", func(h *Webhooks, ctx context.Context, d Delivery, ev *github.PingEvent) error {
	return h.record(ctx, d, "ping received", slog.String("zen", ev.GetZen()), slog.Int64("hook_id", ev.GetHookID()))
})

// record marks a delivery processed and logs it. Used by events whose only
// effect at this stage is to be seen.
func (h *Webhooks) record(ctx context.Context, d Delivery, what string, attrs ...slog.Attr) error {
	fresh, err := h.mark(ctx, d, nil)
	if err != nil || !fresh {
		return err
	}
	h.Logger.LogAttrs(ctx, slog.LevelInfo, what, attrs...)
	return nil
}

// mark records the delivery as processed and runs fn in the same
// transaction. When the delivery was processed before, fn does not run and
// fresh is false.
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
	var done bool
	err := h.Store.View(ctx, func(tx bot.Tx) error {
		var err error
		done, err = tx.DeliveryProcessed(ctx, guid)
		return err
	})
	return done, err
}

var errNoInstallation = errors.New("the payload names no installation")
