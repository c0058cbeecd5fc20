package router

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/stagehand-dev/stagehand/bot"
)

// MaxWebhookBytes is the largest delivery GitHub sends (25 MB); anything
// larger is refused with 413 before it is read. GitHub documents this one
// cap for every event ("Payloads are capped at 25 MB", Webhook events and
// payloads) and no smaller one for any event, so there is no per-event cap.
const MaxWebhookBytes = 25 << 20

// Defaults of the intake's limits on bodies (Intake.BodyBudget, BudgetWait
// and BodyTimeout).
const (
	// DefaultBodyBudget lets two deliveries of the largest size GitHub
	// sends be read at once, with room for small ones beside them.
	DefaultBodyBudget = 64 << 20
	// DefaultBudgetWait is how long a delivery waits for room in the
	// budget before it is answered 503.
	DefaultBudgetWait = 2 * time.Second
	// DefaultBodyTimeout is GitHub's own timeout: it gives up on a
	// delivery that is not answered within 10 s, so a body still arriving
	// after that is not from GitHub, or is already a failed delivery there.
	DefaultBodyTimeout = 10 * time.Second
)

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

	// BodyBudget bounds the bytes that the bodies of deliveries being
	// read and stored hold in memory together; 0 means DefaultBodyBudget.
	// A body reserves its Content-Length before it is read (a body without
	// one reserves as it arrives), so stalled or mis-signed requests hold
	// at most this much between them. Below MaxWebhookBytes, deliveries
	// larger than the budget are always answered 503.
	BodyBudget int64
	// BudgetWait is how long a delivery waits for room in the budget
	// before it is answered 503 "busy"; 0 means DefaultBudgetWait.
	BudgetWait time.Duration
	// BodyTimeout is how long after its headers a delivery's body may take
	// to arrive before it is answered 408; 0 means DefaultBodyTimeout.
	// It is this request's read deadline (http.ResponseController), so the
	// server's own ReadTimeout can stay longer for other routes.
	BodyTimeout time.Duration

	budgetOnce sync.Once
	budget     *byteBudget
}

// intakeRefusal is the intake's answer to a request it refuses: the HTTP
// status, the metric outcome and the words. It is an answer, not an error:
// it never travels up a call chain.
type intakeRefusal struct {
	status  int
	outcome string
	msg     string
}

func refuse(status int, outcome, format string, args ...any) *intakeRefusal {
	return &intakeRefusal{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
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
	writeAnswer(w, status, outcome, msg, guid)
}

// Headers of every intake answer: the outcome (the metric's label) and the
// words. GitHub shows a delivery's response headers beside its body under
// the App's "Recent Deliveries", so they explain the answer there.
const (
	HeaderOutcome = "X-Stagehand-Outcome"
	HeaderMessage = "X-Stagehand-Message"
)

// writeAnswer answers a delivery. The outcome and the words are always in
// headers. A refusal repeats them in a JSON body and closes the connection
// (its body may be partly unread: a stalled or oversized one). An accepted
// delivery's answer has no body: a sender that closes a response without
// reading its body (Go's net/http client among them) can then keep its
// connection for the next delivery instead of opening one per delivery.
func writeAnswer(w http.ResponseWriter, status int, outcome, msg, guid string) {
	h := w.Header()
	h.Set(HeaderOutcome, outcome)
	h.Set(HeaderMessage, msg)
	if status < 400 {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Connection", "close")
	w.WriteHeader(status)
	body := map[string]string{"status": outcome, "message": msg}
	if guid != "" {
		body["delivery"] = guid
	}
	_ = json.NewEncoder(w).Encode(body)
}

// accept decides the answer to one delivery and stores it when accepted.
func (in *Intake) accept(w http.ResponseWriter, r *http.Request, event, guid string) (int, string, string) {
	header := r.Header.Get("X-Hub-Signature-256")
	if header == "" {
		if r.Header.Get("X-Hub-Signature") != "" {
			return fail(refuse(http.StatusUnauthorized, OutcomeUnauthorized, "X-Hub-Signature-256 is missing: Stagehand checks SHA-256 signatures only, never SHA-1"))
		}
		return fail(refuse(http.StatusUnauthorized, OutcomeUnauthorized, "X-Hub-Signature-256 is missing: set a webhook secret in the GitHub App settings"))
	}
	check, err := newSignatureCheck(header, in.Secrets)
	if err != nil {
		return fail(refuse(http.StatusUnauthorized, OutcomeUnauthorized, "%v", err))
	}
	if r.ContentLength > MaxWebhookBytes {
		return fail(refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body of %d bytes is over the 25 MB limit", r.ContentLength))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fail(refuse(http.StatusUnsupportedMediaType, OutcomeBadMediaType, "content type %q is not supported: set the webhook content type to application/json", r.Header.Get("Content-Type")))
	}
	body, release, ierr := in.readBody(w, r, check)
	// The body's bytes stay reserved until the delivery is stored (the
	// message holds them) or refused.
	defer release()
	if ierr != nil {
		return fail(ierr)
	}
	if !check.valid() {
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
	msg.Metadata.Set(MetaEvent, event)
	msg.Metadata.Set(MetaDeliveryID, guid)
	msg.Metadata.Set(MetaReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
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

func fail(e *intakeRefusal) (int, string, string) { return e.status, e.outcome, e.msg }

// readBody reads the body into memory, writing it to sum as it arrives,
// within the body budget and before the body deadline. release gives the
// body's bytes back to the budget; it is never nil.
func (in *Intake) readBody(w http.ResponseWriter, r *http.Request, sum io.Writer) (body []byte, release func(), _ *intakeRefusal) {
	budget, wait, timeout := in.limits()
	// A deadline for this request only: the dashboard's pages and log
	// downloads share the server and keep its longer timeouts.
	// httptest's ResponseRecorder has no connection to set it on.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		in.Logger.WarnContext(r.Context(), "setting the webhook body's read deadline", bot.LogError, err)
	}
	var reserved int64
	release = func() { budget.release(reserved) }
	src := io.TeeReader(http.MaxBytesReader(w, r.Body, MaxWebhookBytes), sum)
	if r.ContentLength >= 0 {
		// The whole Content-Length is reserved at once, so a request that
		// announces 24 MB and sends a few bytes holds its share too.
		if !budget.reserve(r.Context(), r.ContentLength, wait) {
			return nil, release, busy(r.ContentLength, wait)
		}
		reserved = r.ContentLength
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(src, body); err != nil {
			return nil, release, readFailed(err, timeout)
		}
		return body, release, nil
	}
	// No Content-Length (chunked): the buffer doubles as the body
	// arrives, each growth reserved before it is made. MaxWebhookBytes+1
	// bytes of room let the MaxBytesReader tell a body over the limit.
	for {
		if len(body) == cap(body) {
			grow := min(max(int64(cap(body)), 64<<10), MaxWebhookBytes+1-int64(cap(body)))
			if !budget.reserve(r.Context(), grow, wait) {
				return nil, release, busy(int64(cap(body))+grow, wait)
			}
			reserved += grow
			body = append(make([]byte, 0, int64(cap(body))+grow), body...)
		}
		n, err := src.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if errors.Is(err, io.EOF) {
			return body, release, nil
		}
		if err != nil {
			return nil, release, readFailed(err, timeout)
		}
	}
}

// limits returns the intake's body budget (made at the first request), the
// wait for room in it and the body timeout, defaults applied.
func (in *Intake) limits() (*byteBudget, time.Duration, time.Duration) {
	in.budgetOnce.Do(func() {
		size := in.BodyBudget
		if size <= 0 {
			size = DefaultBodyBudget
		}
		in.budget = newByteBudget(size)
	})
	wait, timeout := in.BudgetWait, in.BodyTimeout
	if wait <= 0 {
		wait = DefaultBudgetWait
	}
	if timeout <= 0 {
		timeout = DefaultBodyTimeout
	}
	return in.budget, wait, timeout
}

// busy is the answer to a delivery that found no room in the body budget.
func busy(n int64, wait time.Duration) *intakeRefusal {
	return refuse(http.StatusServiceUnavailable, OutcomeBusy,
		"the server is busy: the bodies of other deliveries fill its memory budget for webhooks, and %d bytes did not become free within %s; "+
			"GitHub does not retry a failed delivery by itself: redeliver it from the GitHub App's settings (Advanced, Recent deliveries)", n, wait)
}

// readFailed is the answer to a body that could not be read.
func readFailed(err error, timeout time.Duration) *intakeRefusal {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body is over the 25 MB limit")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return refuse(http.StatusRequestTimeout, OutcomeTimeout, "the body did not arrive within %s of the headers (GitHub itself gives up after 10 s)", timeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return refuse(http.StatusBadRequest, OutcomeBadRequest, "the body ended before its Content-Length")
	}
	return refuse(http.StatusBadRequest, OutcomeBadRequest, "reading the body: %v", err)
}

// signatureCheck computes the HMAC-SHA256 of a body with every webhook
// secret while the body is read, and compares it in constant time with
// the X-Hub-Signature-256 header.
type signatureCheck struct {
	want []byte
	macs []hash.Hash
}

// newSignatureCheck parses the header; a malformed one is refused before
// any of the body is read.
func newSignatureCheck(header string, secrets [][]byte) (*signatureCheck, error) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	want, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(want) != sha256.Size {
		return nil, errors.New("X-Hub-Signature-256 is not \"sha256=\" followed by 64 hexadecimal digits: it is not a signature GitHub sends")
	}
	c := &signatureCheck{want: want}
	for _, secret := range secrets {
		c.macs = append(c.macs, hmac.New(sha256.New, secret))
	}
	return c, nil
}

// Write hashes the next part of the body; it never fails.
func (c *signatureCheck) Write(p []byte) (int, error) {
	for _, mac := range c.macs {
		mac.Write(p)
	}
	return len(p), nil
}

// valid reports whether the body written so far is signed with one of
// the secrets. Every secret is compared, whichever matches.
func (c *signatureCheck) valid() bool {
	valid := false
	for _, mac := range c.macs {
		if hmac.Equal(c.want, mac.Sum(nil)) {
			valid = true
		}
	}
	return valid
}
