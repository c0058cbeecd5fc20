package router

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus metrics of one server. Each server has its own
// registry, so tests can run several servers in one process.
type Metrics struct {
	Registry      *prometheus.Registry
	Deliveries    *prometheus.CounterVec // by event and outcome
	IntakeSeconds prometheus.Histogram   // time to answer POST /webhooks
	Handled       *prometheus.CounterVec // messages handled, by event and outcome
	HandlerErrors *prometheus.CounterVec // handler attempts that failed, by event
	Refusals      *prometheus.CounterVec // refused clicks and commands, by action
	Overrides     prometheus.Counter     // break-glass overrides carried out
	Redeliveries  *prometheus.CounterVec // redelivery requests to GitHub, by outcome
}

// Outcomes of a delivery at the intake, the "outcome" label.
const (
	OutcomeAccepted     = "accepted"
	OutcomeIgnored      = "ignored"
	OutcomeDuplicate    = "duplicate"
	OutcomeUnauthorized = "unauthorized"
	OutcomeTooLarge     = "too_large"
	OutcomeBadRequest   = "bad_request"
	OutcomeBadMediaType = "unsupported_media_type"
	OutcomeTimeout      = "timeout" // the body did not arrive in time (408)
	OutcomeBusy         = "busy"    // no room in the body budget (503)
	OutcomeError        = "error"
)

// NewMetrics creates the metrics. poisonCount, when not nil, is asked for
// the poison queue's size at every scrape.
func NewMetrics(poisonCount func(context.Context) (uint64, error), events ...string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagehand_webhook_deliveries_total",
			Help: "Webhook deliveries received, by event and outcome (accepted, ignored, duplicate, unauthorized, too_large, bad_request, unsupported_media_type, timeout, busy, error).",
		}, []string{"event", "outcome"}),
		IntakeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stagehand_webhook_intake_duration_seconds",
			Help:    "Time from receiving a webhook request to answering it (signature check and durable storage included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		Handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagehand_messages_handled_total",
			Help: "Broker messages handled, by event and outcome (ok, poisoned).",
		}, []string{"event", "outcome"}),
		HandlerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagehand_handler_errors_total",
			Help: "Handler attempts that returned an error or panicked, by event (each retry counts).",
		}, []string{"event"}),
	}
	m.Refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stagehand_refusals_total",
		Help: "Clicks and slash commands Stagehand refused (permission, approvers, rules), by action.",
	}, []string{"action"})
	m.Overrides = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stagehand_policy_overrides_total",
		Help: "Break-glass overrides of deploy windows and freezes carried out (/stagehand deploy-now --override); each also names its reason in the execution's events.",
	})
	m.Redeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stagehand_redeliveries_requested_total",
		Help: "Requests to GitHub to redeliver a webhook delivery that failed and that Stagehand does not have, by outcome (requested: GitHub accepted; refused: GitHub refused for good; failed: no answer, 5xx or rate limit, asked again later; gave_up: GitHub's redeliveries of the delivery failed 5 times, not asked again).",
	}, []string{"outcome"})
	for _, o := range []string{RedeliveryRequested, RedeliveryRefused, RedeliveryFailed, RedeliveryGaveUp} {
		m.Redeliveries.WithLabelValues(o) // zeros before the first request
	}
	m.Registry.MustRegister(m.Deliveries, m.IntakeSeconds, m.Handled, m.HandlerErrors, m.Refusals, m.Overrides, m.Redeliveries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, event := range events { // show zeros before the first error
		m.HandlerErrors.WithLabelValues(event)
		m.Handled.WithLabelValues(event, "ok")
	}
	if poisonCount != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stagehand_poison_queue_messages",
			Help: "Messages in the poison queue: deliveries whose handling failed after every retry.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := poisonCount(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// apiCalls exposes the GitHub API calls counted per label (execution).
type apiCalls struct {
	desc  *prometheus.Desc
	calls func() map[string]int
}

func (c apiCalls) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c apiCalls) Collect(ch chan<- prometheus.Metric) {
	for label, n := range c.calls() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), label)
	}
}

// CountGitHubCalls exports calls, the GitHub API calls made so far by
// label ("execution/42", ...), as stagehand_github_api_calls_total.
func (m *Metrics) CountGitHubCalls(calls func() map[string]int) {
	m.Registry.MustRegister(apiCalls{
		desc: prometheus.NewDesc("stagehand_github_api_calls_total",
			"GitHub API calls made for each execution (label: execution/<id>), and for other work.", []string{"for"}, nil),
		calls: calls,
	})
}
