package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/stagehand-dev/stagehand/bot"
)

// RouterOptions are what NewRouter wires together.
type RouterOptions struct {
	Logger     *slog.Logger
	Subscriber message.Subscriber
	Publisher  message.Publisher // for the poison queue
	Metrics    *Metrics
	// Webhooks handles one stored webhook delivery.
	Webhooks message.NoPublishHandlerFunc
	// Steps claims one step job (nil: this process runs no step worker).
	Steps message.NoPublishHandlerFunc
	// Retry overrides the default retry policy (tests make it fast).
	Retry *middleware.Retry
	// CloseTimeout is how long Close waits for handlers in flight; what is
	// not acknowledged by then is redelivered after a restart.
	CloseTimeout time.Duration
	// Deliveries, when set, records each webhook delivery that goes to the
	// poison queue, so that the intake stores GitHub's redelivery of it.
	Deliveries DeliveryLog
}

// Permanent is implemented by errors that no retry can fix (a malformed
// payload, for example): such a message goes to the poison queue at once.
type Permanent interface{ Permanent() bool }

func isPermanent(err error) bool {
	var p Permanent
	return errors.As(err, &p) && p.Permanent()
}

// NewRouter builds the watermill router that feeds stored deliveries to the
// worker. Middleware, outermost first: correlation id, log context
// (delivery GUID in every log line), poison queue, retry with exponential
// backoff, error metrics, panic recovery.
func NewRouter(o RouterOptions) (*message.Router, error) {
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 30 * time.Second
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: o.CloseTimeout},
		watermill.NewSlogLoggerWithLevelMapping(o.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, fmt.Errorf("creating the message router: %w", err)
	}
	// A handler stopped by shutdown is not poisoned: its message is not
	// acknowledged and comes back after the restart.
	poison, err := middleware.PoisonQueueWithFilter(o.Publisher, TopicPoison, func(err error) bool {
		return !errors.Is(err, context.Canceled)
	})
	if err != nil {
		return nil, fmt.Errorf("creating the poison queue: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      5,
		InitialInterval: 250 * time.Millisecond,
		Multiplier:      2,
		MaxInterval:     10 * time.Second,
	}
	if o.Retry != nil {
		retry = *o.Retry
		if retry.MaxInterval == 0 { // without a cap the backoff library never grows the wait
			retry.MaxInterval = 10 * time.Second
		}
	}
	retry.Logger = watermill.NewSlogLogger(o.Logger)
	retry.ShouldRetry = func(p middleware.RetryParams) bool {
		return !isPermanent(p.Err) && !errors.Is(p.Err, context.Canceled)
	}
	r.AddMiddleware(
		middleware.CorrelationID,
		logContext,
		observe(o.Metrics, o.Logger, o.Deliveries),
		poison,
		retry.Middleware,
		countErrors(o.Metrics),
		middleware.Recoverer,
	)
	r.AddConsumerHandler("webhooks", TopicWebhooks, o.Subscriber, o.Webhooks)
	if o.Steps != nil {
		r.AddConsumerHandler("steps", TopicSteps, o.Subscriber, o.Steps)
	}
	return r, nil
}

// logContext puts the delivery GUID and event into the message's context,
// so every log line written while handling it carries them.
func logContext(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := middleware.MessageCorrelationID(msg)
		if id == "" {
			id = msg.UUID
		}
		msg.SetContext(bot.WithLogAttrs(msg.Context(),
			slog.String(bot.LogDeliveryID, id), slog.String(bot.LogEvent, msg.Metadata.Get(MetaEvent))))
		return h(msg)
	}
}

// observe logs and counts each message's final outcome, after retries and
// the poison queue have had their say, and records a poisoned webhook
// delivery in deliveries (when set). If that record cannot be written the
// message is not acknowledged: it comes back, fails again and is recorded
// then (the poison queue drops the second copy as a duplicate).
func observe(m *Metrics, logger *slog.Logger, deliveries DeliveryLog) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			outcome := "ok"
			if reason := msg.Metadata.Get(middleware.ReasonForPoisonedKey); reason != "" {
				outcome = "poisoned"
				logger.ErrorContext(msg.Context(), "delivery moved to the poison queue after its retries; once the cause is fixed, redeliver it from the GitHub App's advanced settings",
					"reason", reason)
				if guid := msg.Metadata.Get(MetaDeliveryID); guid != "" && deliveries != nil && err == nil {
					p := bot.PoisonedDelivery{GUID: guid, Event: msg.Metadata.Get(MetaEvent), Reason: reason}
					if rerr := deliveries.MarkPoisoned(msg.Context(), p); rerr != nil {
						err = fmt.Errorf("recording poisoned delivery %s: %w", guid, rerr)
					}
				}
			}
			if err != nil {
				outcome = "error"
			}
			if m != nil {
				m.Handled.WithLabelValues(msg.Metadata.Get(MetaEvent), outcome).Inc()
			}
			return out, err
		}
	}
}

func countErrors(m *Metrics) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil && m != nil {
				m.HandlerErrors.WithLabelValues(msg.Metadata.Get(MetaEvent)).Inc()
			}
			return out, err
		}
	}
}
