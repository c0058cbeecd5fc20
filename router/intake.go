package router

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers"
)

// MaxWebhookBytes is the largest delivery GitHub sends (25 MB); anything
// larger is refused with 413 before it is read.
const MaxWebhookBytes = 25 << 20

// Intake is POST /webhooks: it checks a delivery's signature, keeps it in the
// broker, and only then answers 202. Everything after the 202 happens from
// the stored message (SPEC rule I).
type Intake struct {
	// Secrets are the webhook secrets; a delivery signed with any of them is
	// accepted, so a secret can be rotated without downtime.
	Secrets   [][]byte
	Publisher message.Publisher
	// Events are the event types the bot handles; others are answered 202
	// and dropped.
	Events  map[string]bool
	Metrics *Metrics
	Logger  *slog.Logger
	// Deliveries, when set, answers a redelivery of a processed GUID
	// "duplicate" without storing it, and stores a redelivery of a
	// poisoned GUID so that it is handled again (see DeliveryLog).
	Deliveries DeliveryLog
}

// intakeError is a refusal with its HTTP status and metric outcome.
type intakeError struct {
	status  int
	outcome string
	msg     string
}

func (e *intakeError) Error() string { return e.msg }

func refuse(status int, outcome, format string, args ...any) *intakeError {
	return &intakeError{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements http.Handler.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	guid := r.Header.Get("X-GitHub-Delivery")
	status, outcome, msg := in.accept(w, r, event, guid)
	if in.Metrics != nil {
		label := event
		if !in.Events[event] {
			label = "other" // keep label cardinality bounded
		}
		in.Metrics.Deliveries.WithLabelValues(label, outcome).Inc()
		in.Metrics.IntakeSeconds.Observe(time.Since(start).Seconds())
	}
	attrs := []any{bot.LogDeliveryID, guid, bot.LogEvent, event, "status", status, "outcome", outcome}
	switch {
	case status >= 500:
		in.Logger.Error("webhook not accepted", append(attrs, bot.LogError, msg)...)
	case status >= 400:
		in.Logger.Warn("webhook refused", append(attrs, "reason", msg)...)
	default:
		in.Logger.Debug("webhook accepted", attrs...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]string{"status": outcome, "message": msg}
	if guid != "" {
		body["delivery"] = guid
	}
	_ = json.NewEncoder(w).Encode(body)
}

// accept decides the answer to one delivery and stores it when accepted.
func (in *Intake) accept(w http.ResponseWriter, r *http.Request, event, guid string) (int, string, string) {
	sig := r.Header.Get("X-Hub-Signature-256")
	if sig == "" {
		if r.Header.Get("X-Hub-Signature") != "" {
			return fail(refuse(http.StatusUnauthorized, OutcomeUnauthorized, "X-Hub-Signature-256 is missing: Stagehand checks SHA-256 signatures only, never SHA-1"))
		}
		return fail(refuse(http.StatusUnauthorized, OutcomeUnauthorized, "X-Hub-Signature-256 is missing: set a webhook secret in the GitHub App settings"))
	}
	if r.ContentLength > MaxWebhookBytes {
		return fail(refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body of %d bytes is over the 25 MB limit", r.ContentLength))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fail(refuse(http.StatusUnsupportedMediaType, OutcomeBadMediaType, "content type %q is not supported: set the webhook content type to application/json", r.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body is over the 25 MB limit"))
		}
		return fail(refuse(http.StatusBadRequest, OutcomeBadRequest, "reading the body: %v", err))
	}
	if !in.validSignature(sig, body) {
		return fail(refuse(http.StatusUnauthorized, OutcomeUnauthorized, "X-Hub-Signature-256 does not match the body: check that the webhook secret is the same here and in the GitHub App settings"))
	}
	if event == "" || guid == "" {
		return fail(refuse(http.StatusBadRequest, OutcomeBadRequest, "the X-GitHub-Event and X-GitHub-Delivery headers are required"))
	}
	if !json.Valid(body) {
		return fail(refuse(http.StatusBadRequest, OutcomeBadRequest, "the body is not valid JSON"))
	}
	if !in.Events[event] {
		return http.StatusAccepted, OutcomeIgnored, fmt.Sprintf("event %q is not used by Stagehand", event)
	}
	var seen bot.DeliveryRecord
	if in.Deliveries != nil {
		rec, err := in.Deliveries.DeliveryRecord(r.Context(), guid)
		switch {
		case err != nil:
			// The handler deduplicates too; storing is the safe side.
			in.Logger.WarnContext(r.Context(), "looking up a delivery; storing it anyway", bot.LogDeliveryID, guid, bot.LogError, err)
		case !rec.ProcessedAt.IsZero():
			return http.StatusAccepted, OutcomeDuplicate, fmt.Sprintf("delivery %s was processed at %s; nothing to do", guid, rec.ProcessedAt.UTC().Format(time.RFC3339))
		default:
			seen = rec
		}
	}
	msg := message.NewMessage(messageID(guid, seen), body)
	msg.Metadata.Set(handlers.MetaEvent, event)
	msg.Metadata.Set(handlers.MetaDeliveryID, guid)
	msg.Metadata.Set(handlers.MetaReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	middleware.SetCorrelationID(guid, msg)
	if err := in.Publisher.Publish(TopicWebhooks, msg); err != nil {
		return fail(refuse(http.StatusServiceUnavailable, OutcomeError, "the delivery could not be stored, GitHub may redeliver it: %v", err))
	}
	if !seen.PoisonedAt.IsZero() {
		return http.StatusAccepted, OutcomeAccepted, fmt.Sprintf("stored again: it failed at %s (%s) and will be handled again",
			seen.PoisonedAt.UTC().Format(time.RFC3339), seen.PoisonReason)
	}
	return http.StatusAccepted, OutcomeAccepted, "stored"
}

func fail(e *intakeError) (int, string, string) { return e.status, e.outcome, e.msg }

// validSignature compares in constant time against every secret.
func (in *Intake) validSignature(header string, body []byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	valid := false
	for _, secret := range in.Secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if hmac.Equal(got, mac.Sum(nil)) {
			valid = true
		}
	}
	return valid
}
