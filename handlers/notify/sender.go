package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-dev/stagehand/bot"
)

// The headers a generic webhook's request carries, in GitHub's style.
const (
	HeaderSignature = "X-Stagehand-Signature-256" // sha256=<hex HMAC-SHA256 of the body>
	HeaderDelivery  = "X-Stagehand-Delivery"      // the notification's id, the same on every attempt
	HeaderEvent     = "X-Stagehand-Event"         // started, waiting-for-approval, …
)

// Sign is the X-Stagehand-Signature-256 value of body under key.
func Sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Pending is a notification waiting in the outbox.
type Pending struct {
	ID        int64
	Message   Message
	Target    bot.NotificationTarget
	Attempts  int       // made so far
	CreatedAt time.Time // when it was queued: the bound on retries counts from here
}

// Outcome is what became of one attempt.
type Outcome string

// The outcomes, also the outcome label of stagehand_notifications_total.
const (
	OutcomeSent   Outcome = "sent"    // the receiver answered 2xx
	OutcomeRetry  Outcome = "retry"   // 5xx, 429, a timeout or no connection: tried again at NextAt
	OutcomeGaveUp Outcome = "gave-up" // a 4xx, or the bound was reached: shown on the execution page
)

// Result is recorded in the outbox after an attempt.
type Result struct {
	Outcome  Outcome
	Attempts int
	NextAt   time.Time // OutcomeRetry: when to try again
	Error    string    // why it did not arrive; never the URL or a secret
}

// Outbox is where notifications wait to be sent (the store).
type Outbox interface {
	Due(ctx context.Context, now time.Time, limit int) ([]Pending, error)
	Record(ctx context.Context, id int64, r Result) error
}

// Claimer is an Outbox that takes a notification for one attempt before it
// is made (StoreOutbox): claimed false means another sender has taken it,
// sent it or tried it since it was read, and no attempt is made. A sender
// that lost its lease while another took over (a long pause) so never
// posts what the other posts: each attempt is made by one sender. A sender
// that dies after its claim leaves the notification to be tried again
// after until, with the same delivery id (X-Stagehand-Delivery), by which a
// receiver recognises a message it may have had.
type Claimer interface {
	Claim(ctx context.Context, p Pending, now, until time.Time) (claimed bool, err error)
}

// claimFor is how long a claim holds a notification: longer than an
// attempt (the client's timeout).
func (s *Sender) claimFor() time.Duration {
	if s.Client != nil && s.Client.Timeout > 0 {
		return 2*s.Client.Timeout + 10*time.Second
	}
	return time.Minute
}

// Secrets reads a secret's value (worker.SecretsDir, with the environment
// bot.NotifySecretsDir: <secrets-dir>/<owner>/<repo>/notifications/<NAME>).
type Secrets interface {
	Secret(prog bot.Program, env bot.EnvironmentName, name string) (string, error)
}

// Metrics counts notifications by outcome.
type Metrics struct{ Notifications *prometheus.CounterVec }

// NewMetrics registers stagehand_notifications_total{outcome} with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stagehand_notifications_total",
		Help: "Notification attempts by outcome: sent, retry (tried again later), gave-up.",
	}, []string{"outcome"})}
	if reg != nil {
		reg.MustRegister(m.Notifications)
	}
	return m
}

// Sender posts what the outbox holds. Only Outbox and Secrets are required.
type Sender struct {
	Outbox  Outbox
	Secrets Secrets
	Client  *http.Client // default: a client with a 10 s timeout
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one (default 30 s: 30 s, 1 m, 2 m, 4 m, 8 m).
	Backoff time.Duration
	// MaxAttempts and MaxAge bound the retries (default 6 attempts, 1 h
	// after it was queued): then the notification is given up.
	MaxAttempts int
	MaxAge      time.Duration
	// PassBudget, when set, stops a Pass from starting another attempt
	// once it has run that long, so a pass (with the client's timeout)
	// ends within the lease that lets this replica send.
	PassBudget time.Duration
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Pass makes one attempt at every notification due now. Receivers are
// posted to one after the other; each attempt is bounded by the client's
// timeout.
func (s *Sender) Pass(ctx context.Context) error {
	due, err := s.Outbox.Due(ctx, s.now(), 100)
	if err != nil {
		return fmt.Errorf("reading the notifications due: %w", err)
	}
	start := s.now()
	for _, p := range due {
		if s.PassBudget > 0 && s.now().Sub(start) >= s.PassBudget {
			return nil // the rest waits for the next pass
		}
		if c, ok := s.Outbox.(Claimer); ok {
			now := s.now()
			claimed, err := c.Claim(ctx, p, now, now.Add(s.claimFor()))
			if err != nil {
				return fmt.Errorf("claiming notification %d: %w", p.ID, err)
			}
			if !claimed {
				continue // another sender has it
			}
		}
		r := s.Attempt(ctx, p)
		if err := s.Outbox.Record(ctx, p.ID, r); err != nil {
			return fmt.Errorf("recording notification %d: %w", p.ID, err)
		}
	}
	return nil
}

// Attempt posts p once and says what became of it.
func (s *Sender) Attempt(ctx context.Context, p Pending) Result {
	attempts := p.Attempts + 1
	retry, err := s.post(ctx, p)
	r := Result{Outcome: OutcomeSent, Attempts: attempts}
	if err != nil {
		r.Error = err.Error()
		r.Outcome = OutcomeGaveUp
		if retry {
			next := s.now().Add(s.backoff(attempts))
			if attempts < s.maxAttempts() && next.Before(p.CreatedAt.Add(s.maxAge())) {
				r.Outcome, r.NextAt = OutcomeRetry, next
			} else {
				r.Error += fmt.Sprintf(" (gave up after %d attempts)", attempts)
			}
		}
	}
	if s.Metrics != nil {
		s.Metrics.Notifications.WithLabelValues(string(r.Outcome)).Inc()
	}
	if s.Logger != nil {
		s.Logger.InfoContext(ctx, "notification", "target", p.Target.Name, "event", string(p.Message.Event),
			"delivery", p.Message.Delivery, "outcome", string(r.Outcome), "attempt", attempts, "why", r.Error)
	}
	return r
}

func (s *Sender) backoff(attempts int) time.Duration {
	b := s.Backoff
	if b <= 0 {
		b = 30 * time.Second
	}
	return b << (attempts - 1)
}

func (s *Sender) maxAttempts() int {
	if s.MaxAttempts <= 0 {
		return 6
	}
	return s.MaxAttempts
}

func (s *Sender) maxAge() time.Duration {
	if s.MaxAge <= 0 {
		return time.Hour
	}
	return s.MaxAge
}

// post sends p; retry says whether a failure may pass on a later attempt.
// Errors never hold the URL (a *url.Error's does: it is taken apart) or a
// secret's value.
func (s *Sender) post(ctx context.Context, p Pending) (retry bool, err error) {
	prog := p.Message.Program
	target, err := s.Secrets.Secret(prog, bot.NotifySecretsDir, p.Target.URLSecret)
	if err != nil {
		return true, fmt.Errorf("the URL of target %s: %w", p.Target.Name, err)
	}
	var body []byte
	header := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Stagehand-Notifications"}}
	switch p.Target.Type {
	case bot.NotifySlack:
		body, err = SlackJSON(p.Message)
	case bot.NotifyWebhook:
		var key string
		key, err = s.Secrets.Secret(prog, bot.NotifySecretsDir, p.Target.SigningSecret)
		if err != nil {
			return true, fmt.Errorf("the signing key of target %s: %w", p.Target.Name, err)
		}
		body, err = WebhookJSON(p.Message)
		header.Set(HeaderSignature, Sign([]byte(key), body))
		header.Set(HeaderDelivery, p.Message.Delivery)
		header.Set(HeaderEvent, string(p.Message.Event))
	default:
		return false, fmt.Errorf("target %s has the unknown type %q", p.Target.Name, p.Target.Type)
	}
	if err != nil {
		return false, fmt.Errorf("building the payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("target %s: its URL secret %s does not hold a valid URL", p.Target.Name, p.Target.URLSecret)
	}
	req.Header = header
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg := strings.ReplaceAll(err.Error(), target, "***")
		if ue != nil && ue.Timeout() {
			msg = "no answer in time"
		}
		return true, fmt.Errorf("posting to target %s: %s", p.Target.Name, msg)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("target %s answered %s", p.Target.Name, resp.Status)
	default:
		return false, fmt.Errorf("target %s refused it: %s", p.Target.Name, resp.Status)
	}
}

// Lease says whether this replica may send now (the store's lease, as the
// reporter's: of the replicas sharing a store only one sends).
type Lease func(ctx context.Context) (bool, error)

// Run makes a Pass every interval while hold says this replica holds the
// lease, until ctx ends. It runs apart from the engine: no execution waits
// for it.
func (s *Sender) Run(ctx context.Context, interval time.Duration, hold Lease) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		held, err := hold(ctx)
		if err == nil && held {
			err = s.Pass(ctx)
		}
		if err != nil && ctx.Err() == nil && s.Logger != nil {
			s.Logger.WarnContext(ctx, "sending notifications; will retry", bot.LogError, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
