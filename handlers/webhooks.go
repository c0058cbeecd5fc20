// Package handlers holds what happens to each stored message: one function
// per GitHub event, called by the router after the delivery is durable.
// Each handler is idempotent: the delivery's GUID is recorded in the same
// transaction as its effects, so a redelivered message changes nothing.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// Metadata keys of a webhook message, set by the intake.
const (
	MetaEvent      = "event"
	MetaDeliveryID = "delivery_id"
	MetaReceivedAt = "received_at"
)

// Events are the webhook events Stagehand handles; the intake answers
// others with 202 and drops them.
var Events = map[string]bool{
	"ping": true, "push": true, "issue_comment": true, "check_run": true,
	"check_suite": true, "installation": true, "installation_repositories": true,
	"repository": true,
}

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
	Checks ChecksAPI
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

// delivery is one webhook delivery being handled.
type delivery struct {
	guid    string
	event   string
	payload []byte
}

// permanentError marks a failure no retry can fix; the router sends the
// message to the poison queue at once.
type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// Handle is the router's handler for the webhooks topic.
func (h *Webhooks) Handle(msg *message.Message) error {
	d := delivery{guid: msg.Metadata.Get(MetaDeliveryID), event: msg.Metadata.Get(MetaEvent), payload: msg.Payload}
	if d.guid == "" {
		d.guid = msg.UUID
	}
	return h.handle(msg.Context(), d)
}

func (h *Webhooks) handle(ctx context.Context, d delivery) error {
	ev, err := github.ParseWebHook(d.event, d.payload)
	if err != nil {
		return permanentError{fmt.Errorf("decoding the %s payload of delivery %s: %w", d.event, d.guid, err)}
	}
	switch ev := ev.(type) {
	case *github.PingEvent:
		return h.record(ctx, d, "ping received", slog.String("zen", ev.GetZen()), slog.Int64("hook_id", ev.GetHookID()))
	case *github.PushEvent:
		return h.push(ctx, d, ev)
	case *github.InstallationEvent:
		return h.installation(ctx, d, ev)
	case *github.InstallationRepositoriesEvent:
		return h.installationRepositories(ctx, d, ev)
	case *github.RepositoryEvent:
		return h.repository(ctx, d, ev)
	case *github.IssueCommentEvent:
		return h.issueComment(ctx, d, ev)
	case *github.CheckRunEvent:
		return h.checkRun(ctx, d, ev)
	case *github.CheckSuiteEvent:
		return h.checkSuite(ctx, d, ev)
	default:
		return h.record(ctx, d, "event not used; recorded")
	}
}

// record marks a delivery processed and logs it. Used by events whose only
// effect at this stage is to be seen.
func (h *Webhooks) record(ctx context.Context, d delivery, what string, attrs ...slog.Attr) error {
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
func (h *Webhooks) mark(ctx context.Context, d delivery, fn func(tx bot.Tx) error) (fresh bool, err error) {
	err = h.Store.Update(ctx, func(tx bot.Tx) error {
		fresh, err = tx.MarkDelivery(ctx, bot.Delivery{GUID: d.guid, Event: d.event, ProcessedAt: h.Clock.Now()})
		if err != nil || !fresh || fn == nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		return false, fmt.Errorf("recording delivery %s: %w", d.guid, err)
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
