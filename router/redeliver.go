package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-dev/stagehand/bot"
)

// GitHub does not retry a failed webhook delivery: a push sent while
// Stagehand was down, restarting or overloaded is gone unless someone asks
// for it again. The Redeliverer asks: every pass it reads the App's
// delivery log on GitHub and asks GitHub to send again each event whose
// delivery failed and that Stagehand does not have.

// HookLog is GitHub's log of the App's webhook deliveries, read and acted
// on as the App (githubapp.App).
type HookLog interface {
	// HookDeliveries returns one page of delivery attempts, newest first,
	// from cursor ("" the newest), and the next page's cursor ("" none).
	HookDeliveries(ctx context.Context, cursor string) ([]bot.HookDelivery, string, error)
	// Redeliver asks GitHub to send delivery id again; an error matching
	// bot.ErrRedeliveryRefused will not change by asking again.
	Redeliver(ctx context.Context, id int64) error
}

// AcceptedDeliveries says whether Stagehand has a delivery GUID: it
// processed it, or took it in (answered 2xx) and will process it. A GUID
// it has is never redelivered by the Redeliverer (the intake's and the
// broker's de-duplication by GUID are the backstop).
type AcceptedDeliveries interface {
	Accepted(ctx context.Context, guid string) (bool, error)
}

// RedeliveryRequests remembers, durably and for every replica, which GUIDs
// the Redeliverer asked GitHub for, naming which attempt (GitHub's delivery
// id): it asks once per failed attempt, so again only when GitHub's
// redelivery failed too.
type RedeliveryRequests interface {
	// LastRequest is the attempt the GUID's latest request named, and
	// whether it was asked for at all.
	LastRequest(ctx context.Context, guid string) (attemptID int64, asked bool, err error)
	MarkRequested(ctx context.Context, r bot.RedeliveryRequest) error
}

// Outcomes of a redelivery request, the "outcome" label of
// stagehand_redeliveries_requested_total.
const (
	RedeliveryRequested = "requested" // GitHub accepted the request (202)
	RedeliveryRefused   = "refused"   // GitHub refused for good: not asked again
	RedeliveryFailed    = "failed"    // no answer, 5xx or a rate limit: asked again in a later pass
	// GitHub's redeliveries of the GUID failed MaxPerGUID times: not
	// asked again (counted once per GUID).
	RedeliveryGaveUp = "gave_up"
)

// Defaults of the Redeliverer's bounds.
const (
	// DefaultRedeliverLookback is how far back a pass looks: the 3 days
	// GitHub keeps deliveries and lets an App redeliver them.
	DefaultRedeliverLookback = 72 * time.Hour
	// DefaultRedeliverMaxPerPass bounds the redelivery requests of a pass,
	// so that the backlog of a long outage goes out over several passes
	// instead of at once.
	DefaultRedeliverMaxPerPass = 20
	// DefaultRedeliverMaxPages bounds the pages (of 100 attempts) a pass
	// reads: 3,000 attempts. A quiet App's log ends at the look-back
	// sooner. A failed delivery older than the bound is never seen: with
	// 10 pages, the chaos soak's 100-kill run (about 1,500 deliveries and
	// 500 redeliveries in 10 minutes, the server down 40 % of the time)
	// lost 25 whose only attempt had slid past the 1,000 latest before a
	// pass reached it. 30 pages a pass, every 5 minutes, is 360 requests
	// an hour at most.
	DefaultRedeliverMaxPages = 30
	// DefaultRedeliverSpacing separates two requests of a pass, as GitHub
	// asks of integrations that make many writes (at least a second).
	DefaultRedeliverSpacing = time.Second
	// DefaultRedeliverMaxBackoff bounds the wait after passes that failed.
	DefaultRedeliverMaxBackoff = time.Hour
	// DefaultRedeliverMaxPerGUID bounds the redeliveries of one GUID: a
	// redelivery that failed too (Stagehand went down again, or a replica
	// behind the load balancer was down) is asked for again at a later
	// pass, until GitHub lists this many failed redeliveries of the GUID,
	// so a delivery Stagehand always fails is not asked for every pass for
	// three days.
	DefaultRedeliverMaxPerGUID = 5
)

// Redeliverer asks GitHub to redeliver the webhook deliveries Stagehand
// missed. Zero bounds take the defaults above.
type Redeliverer struct {
	GitHub   HookLog
	Accepted AcceptedDeliveries
	Requests RedeliveryRequests
	// Lease, when set, lets one replica at a time make passes.
	Lease bot.Lease
	// Events are the events Stagehand uses (the intake's); a failed
	// delivery of another event is not worth asking for. Nil: every event.
	Events map[string]bool
	// Outcomes counts the requests by outcome (Metrics.Redeliveries).
	Outcomes *prometheus.CounterVec
	Logger   *slog.Logger
	Clock    bot.Clock

	Lookback   time.Duration
	MaxPerPass int
	MaxPages   int
	Spacing    time.Duration
	MaxBackoff time.Duration
	MaxPerGUID int
	// Sleep waits d or until ctx ends (tests record the waits); nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// PassResult says what a pass saw and did.
type PassResult struct {
	Held      bool // this replica held the lease (false: the pass did nothing)
	Pages     int  // pages of the delivery log read
	Lost      int  // events whose every attempt in the look-back failed
	Requested int  // requests GitHub accepted
	Refused   int  // requests GitHub refused for good
	GaveUp    int  // lost events whose MaxPerGUID redeliveries all failed: given up now
	Capped    int  // lost events left for a later pass by MaxPerPass
}

// Pass reads the delivery log back to the look-back and asks GitHub to
// redeliver each lost event (oldest first) that Stagehand has not accepted
// and whose latest failed attempt it did not ask for before (a request
// whose redelivery failed too is made again, up to MaxPerGUID
// redeliveries of the GUID), at most MaxPerPass of them, Spacing apart. It
// stops at the first request that failed without GitHub's lasting refusal
// and returns its error: Run backs off then, and a later pass asks again.
func (r *Redeliverer) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	if r.Lease != nil {
		held, err := r.Lease(ctx)
		if err != nil || !held {
			return res, err
		}
	}
	res.Held = true
	since := r.Clock.Now().Add(-or(r.Lookback, DefaultRedeliverLookback))
	attempts, pages, err := r.read(ctx, since)
	res.Pages = pages
	if err != nil {
		return res, err
	}
	lost := bot.LostDeliveries(attempts, since)
	redeliveries := redeliveriesByGUID(attempts, since)
	asked := 0
	for i, d := range lost {
		if r.Events != nil && !r.Events[d.Event] {
			continue
		}
		res.Lost++
		again, skip, err := r.have(ctx, d)
		if err != nil {
			return res, err
		}
		if skip {
			continue
		}
		if n := redeliveries[d.GUID]; n >= or(r.MaxPerGUID, DefaultRedeliverMaxPerGUID) {
			if err := r.giveUp(ctx, d, n); err != nil {
				return res, err
			}
			res.GaveUp++
			continue
		}
		if asked == or(r.MaxPerPass, DefaultRedeliverMaxPerPass) {
			res.Capped = len(lost) - i
			r.Logger.InfoContext(ctx, "redelivery: the pass's cap is reached; the rest waits for the next pass", "left", res.Capped)
			break
		}
		if asked > 0 {
			if err := r.sleep(ctx, or(r.Spacing, DefaultRedeliverSpacing)); err != nil {
				return res, err
			}
		}
		asked++
		outcome, err := r.request(ctx, d, again, redeliveries[d.GUID])
		switch outcome {
		case RedeliveryRequested:
			res.Requested++
		case RedeliveryRefused:
			res.Refused++
		default:
			return res, err
		}
	}
	return res, nil
}

// read pages through the delivery log until an attempt older than since,
// the last page or MaxPages.
func (r *Redeliverer) read(ctx context.Context, since time.Time) ([]bot.HookDelivery, int, error) {
	var all []bot.HookDelivery
	cursor, pages := "", 0
	for pages < or(r.MaxPages, DefaultRedeliverMaxPages) {
		page, next, err := r.GitHub.HookDeliveries(ctx, cursor)
		if err != nil {
			return nil, pages, fmt.Errorf("redelivery: reading the App's deliveries: %w", err)
		}
		pages++
		all = append(all, page...)
		if next == "" || len(page) == 0 || page[len(page)-1].DeliveredAt.Before(since) {
			return all, pages, nil
		}
		cursor = next
	}
	r.Logger.WarnContext(ctx, "redelivery: the delivery log has more attempts within the look-back than a pass reads; older ones are not looked at",
		"pages", pages, "lookback", or(r.Lookback, DefaultRedeliverLookback))
	return all, pages, nil
}

// redeliveriesByGUID counts, per GUID, the redelivery attempts GitHub
// lists within the look-back.
func redeliveriesByGUID(attempts []bot.HookDelivery, since time.Time) map[string]int {
	n := map[string]int{}
	for _, a := range attempts {
		if a.Redelivery && !a.DeliveredAt.Before(since) {
			n[a.GUID]++
		}
	}
	return n
}

// have says whether a request for lost attempt d is not needed: Stagehand
// has the GUID, or it asked for this attempt (or a later one) before and
// GitHub lists no newer attempt (its redelivery may be on its way). again
// says that an earlier request's redelivery failed.
func (r *Redeliverer) have(ctx context.Context, d bot.HookDelivery) (again, skip bool, err error) {
	accepted, err := r.Accepted.Accepted(ctx, d.GUID)
	if err != nil {
		return false, false, fmt.Errorf("redelivery: is delivery %s accepted: %w", d.GUID, err)
	}
	if accepted {
		r.Logger.DebugContext(ctx, "redelivery: a failed attempt of a delivery Stagehand has; not asked", bot.LogDeliveryID, d.GUID)
		return false, true, nil
	}
	last, asked, err := r.Requests.LastRequest(ctx, d.GUID)
	if err != nil {
		return false, false, fmt.Errorf("redelivery: was delivery %s asked for: %w", d.GUID, err)
	}
	return asked, asked && d.ID <= last, nil
}

// giveUp records that the GUID's n redeliveries all failed: it is not
// asked for again (the record names its latest attempt).
func (r *Redeliverer) giveUp(ctx context.Context, d bot.HookDelivery, n int) error {
	r.count(RedeliveryGaveUp)
	r.Logger.WarnContext(ctx, "redelivery: every redelivery of a delivery Stagehand missed failed; not asked again, it is lost",
		bot.LogDeliveryID, d.GUID, bot.LogEvent, d.Event, logHookDelivery, d.ID, logHookStatus, d.Status, logRedeliveries, n)
	rec := bot.RedeliveryRequest{GUID: d.GUID, Event: d.Event, DeliveryID: d.ID,
		Outcome: fmt.Sprintf("gave up after %d failed redeliveries", n), RequestedAt: r.Clock.Now()}
	if err := r.Requests.MarkRequested(ctx, rec); err != nil {
		return fmt.Errorf("redelivery: recording that delivery %s is given up: %w", d.GUID, err)
	}
	return nil
}

// request asks GitHub to redeliver d and records the answer: an attempt
// GitHub accepted or refused for good is never asked for again; again (an
// earlier request's redelivery failed too) and redeliveries (GitHub's
// redeliveries of the GUID so far) are for the log.
func (r *Redeliverer) request(ctx context.Context, d bot.HookDelivery, again bool, redeliveries int) (string, error) {
	attrs := []any{bot.LogDeliveryID, d.GUID, bot.LogEvent, d.Event, logHookDelivery, d.ID, logHookStatus, d.Status}
	if again {
		attrs = append(attrs, logRedeliveries, redeliveries)
	}
	err := r.GitHub.Redeliver(ctx, d.ID)
	outcome, words := RedeliveryRequested, RedeliveryRequested
	switch {
	case err == nil && again:
		r.Logger.InfoContext(ctx, "redelivery: GitHub's redelivery failed too; asked GitHub to send the delivery again", attrs...)
	case err == nil:
		r.Logger.InfoContext(ctx, "redelivery: asked GitHub to send a delivery Stagehand missed again", attrs...)
	case errors.Is(err, bot.ErrRedeliveryRefused):
		outcome, words = RedeliveryRefused, err.Error()
		r.Logger.WarnContext(ctx, "redelivery: GitHub refused to send a missed delivery again; it is lost", append(attrs, bot.LogError, err)...)
	default:
		r.count(RedeliveryFailed)
		return RedeliveryFailed, fmt.Errorf("redelivery of delivery %s: %w", d.GUID, err)
	}
	r.count(outcome)
	rec := bot.RedeliveryRequest{GUID: d.GUID, Event: d.Event, DeliveryID: d.ID, Outcome: words, RequestedAt: r.Clock.Now()}
	if err := r.Requests.MarkRequested(ctx, rec); err != nil {
		// GitHub has the request; a later pass may ask again, and the
		// intake's de-duplication keeps the second copy from being handled.
		return outcome, fmt.Errorf("redelivery: recording the request of %s: %w", d.GUID, err)
	}
	return outcome, nil
}

// Log keys of the Redeliverer's lines (with bot.LogDeliveryID, the GUID).
const (
	logHookDelivery = "hook_delivery_id"
	logHookStatus   = "hook_status"
	logRedeliveries = "redeliveries"
)

func (r *Redeliverer) count(outcome string) {
	if r.Outcomes != nil {
		r.Outcomes.WithLabelValues(outcome).Inc()
	}
}

// Run makes a pass at once and then every interval until ctx ends. After a
// pass that failed (GitHub unreachable, a 5xx, a rate limit) it waits
// twice as long each time, up to MaxBackoff, so an outage of GitHub's API
// is not met with a burst of requests.
func (r *Redeliverer) Run(ctx context.Context, interval time.Duration) {
	failures := 0
	for {
		res, err := r.Pass(ctx)
		wait := interval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = backoff(interval, failures, or(r.MaxBackoff, DefaultRedeliverMaxBackoff))
			r.Logger.WarnContext(ctx, "redelivery pass failed; backing off", bot.LogError, err, "next_pass_in", wait)
		default:
			failures = 0
			if res.Requested+res.Refused+res.GaveUp > 0 {
				r.Logger.InfoContext(ctx, "redelivery pass", "lost", res.Lost, "requested", res.Requested, "refused", res.Refused, "gave_up", res.GaveUp, "left", res.Capped)
			}
		}
		if r.sleep(ctx, wait) != nil {
			return
		}
	}
}

// backoff is interval doubled per failure, at most max (and never less
// than interval).
func backoff(interval time.Duration, failures int, max time.Duration) time.Duration {
	d := interval
	for i := 0; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max && interval < max {
		d = max
	}
	return d
}

func (r *Redeliverer) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// or is v, or def when v is zero.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
