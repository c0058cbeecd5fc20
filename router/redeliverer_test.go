package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stagehand-dev/stagehand/bot"
)

var redeliverNow = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// fakeHookLog is GitHub's delivery log: attempts newest first, served
// pageSize at a time with a cursor (the index of the page's first row).
type fakeHookLog struct {
	attempts []bot.HookDelivery
	pageSize int
	cursors  []string          // cursors asked for, in order
	asked    []int64           // ids asked to redeliver, in order
	errs     map[int64][]error // errors to answer for an id, one per request
	listErr  error
}

func (f *fakeHookLog) HookDeliveries(_ context.Context, cursor string) ([]bot.HookDelivery, string, error) {
	f.cursors = append(f.cursors, cursor)
	if f.listErr != nil {
		return nil, "", f.listErr
	}
	start := 0
	if cursor != "" {
		fmt.Sscanf(cursor, "c%d", &start)
	}
	end := min(start+f.pageSize, len(f.attempts))
	next := ""
	if end < len(f.attempts) {
		next = fmt.Sprintf("c%d", end)
	}
	return slices.Clone(f.attempts[start:end]), next, nil
}

func (f *fakeHookLog) Redeliver(_ context.Context, id int64) error {
	f.asked = append(f.asked, id)
	if errs := f.errs[id]; len(errs) > 0 {
		f.errs[id] = errs[1:]
		return errs[0]
	}
	return nil
}

// fakeRequestLog is the store's side: GUIDs accepted and requested.
type fakeRequestLog struct {
	accepted  map[string]bool
	requested map[string]bot.RedeliveryRequest
}

func (f *fakeRequestLog) Accepted(_ context.Context, guid string) (bool, error) {
	return f.accepted[guid], nil
}

func (f *fakeRequestLog) LastRequest(_ context.Context, guid string) (int64, bool, error) {
	r, ok := f.requested[guid]
	return r.DeliveryID, ok, nil
}

// MarkRequested keeps a GUID's request naming the latest attempt, as the
// stores do.
func (f *fakeRequestLog) MarkRequested(_ context.Context, r bot.RedeliveryRequest) error {
	if old, ok := f.requested[r.GUID]; !ok || old.DeliveryID < r.DeliveryID {
		f.requested[r.GUID] = r
	}
	return nil
}

// attempt is an attempt min minutes before now (newer: smaller min).
func attempt(id int64, guid, event string, minAgo, code int) bot.HookDelivery {
	return bot.HookDelivery{ID: id, GUID: guid, Event: event, DeliveredAt: redeliverNow.Add(-time.Duration(minAgo) * time.Minute), StatusCode: code}
}

type redeliverFixture struct {
	gh     *fakeHookLog
	log    *fakeRequestLog
	waits  []time.Duration
	r      *Redeliverer
	metric *Metrics
}

func newRedeliverFixture(attempts ...bot.HookDelivery) *redeliverFixture {
	f := &redeliverFixture{
		gh:     &fakeHookLog{attempts: attempts, pageSize: 2, errs: map[int64][]error{}},
		log:    &fakeRequestLog{accepted: map[string]bool{}, requested: map[string]bot.RedeliveryRequest{}},
		metric: NewMetrics(nil),
	}
	f.r = &Redeliverer{
		GitHub: f.gh, Accepted: f.log, Requests: f.log, Events: map[string]bool{"push": true, "issue_comment": true},
		Outcomes: f.metric.Redeliveries, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: fixedClock{redeliverNow},
		Lookback: time.Hour,
		Sleep:    func(_ context.Context, d time.Duration) error { f.waits = append(f.waits, d); return nil },
	}
	return f
}

func (f *redeliverFixture) pass(t *testing.T) PassResult {
	t.Helper()
	res, err := f.r.Pass(context.Background())
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	return res
}

func (f *redeliverFixture) outcomes() map[string]float64 {
	out := map[string]float64{}
	for _, o := range []string{RedeliveryRequested, RedeliveryRefused, RedeliveryFailed, RedeliveryGaveUp} {
		out[o] = testutil.ToFloat64(f.metric.Redeliveries.WithLabelValues(o))
	}
	return out
}

// TestRedeliverPassAsksOncePerLostGUID: the pass pages back to the
// look-back, asks for each failed GUID that Stagehand does not have,
// oldest first, and never asks twice for one failed attempt.
func TestRedeliverPassAsksOncePerLostGUID(t *testing.T) {
	f := newRedeliverFixture(
		attempt(10, "retried-ok", "push", 1, 202),         // a redelivery that worked
		attempt(9, "down-2", "push", 2, 0),                // refused connection
		attempt(8, "processed", "push", 3, 0),             // Stagehand has it (its 202 timed out)
		attempt(7, "retried-ok", "push", 4, 503),          //
		attempt(6, "ok", "push", 5, 202),                  //
		attempt(5, "pr", "pull_request", 6, 0),            // an event Stagehand does not use
		attempt(4, "bad-signature", "push", 7, 401),       // would be refused again
		attempt(3, "overloaded", "issue_comment", 8, 503), //
		attempt(2, "down-1", "push", 9, 0),                //
		attempt(1, "too-old", "push", 61, 0),              // before the look-back
		attempt(0, "older", "push", 90, 0),                // on the last page read: it is past the look-back
	)
	f.log.accepted["processed"] = true
	f.gh.pageSize = 3
	res := f.pass(t)
	if diff := cmp.Diff([]int64{2, 3, 9}, f.gh.asked); diff != "" {
		t.Errorf("asked to redeliver (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "c3", "c6", "c9"}, f.gh.cursors); diff != "" {
		t.Errorf("pages read (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(PassResult{Held: true, Pages: 4, Lost: 4, Requested: 3}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if got := f.log.requested["down-2"]; got.DeliveryID != 9 || got.Event != "push" || got.Outcome != RedeliveryRequested || !got.RequestedAt.Equal(redeliverNow) {
		t.Errorf("recorded request of down-2: %+v", got)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, time.Second}, f.waits); diff != "" {
		t.Errorf("waits between requests (-want +got):\n%s", diff)
	}
	// The next pass finds the same failed attempts (GitHub's redeliveries
	// may still be on their way) and asks for nothing.
	f.gh.asked = nil
	f.pass(t)
	if len(f.gh.asked) != 0 {
		t.Errorf("second pass asked for %v again", f.gh.asked)
	}
	if diff := cmp.Diff(map[string]float64{"requested": 3, "refused": 0, "failed": 0, "gave_up": 0}, f.outcomes()); diff != "" {
		t.Errorf("stagehand_redeliveries_requested_total (-want +got):\n%s", diff)
	}
}

// TestRedeliverPassAsksAgainWhenTheRedeliveryFailed: a redelivery GitHub
// made and that failed too (Stagehand was killed again, a replica behind
// the balancer was down) is asked for again at the next pass, once per
// failed attempt, never while GitHub lists no newer attempt (the
// redelivery may be on its way), and given up after MaxPerGUID failed
// redeliveries. Found by the chaos soak with three replicas: asked for once
// per GUID, a delivery whose redelivery hit a killed replica was lost.
func TestRedeliverPassAsksAgainWhenTheRedeliveryFailed(t *testing.T) {
	f := newRedeliverFixture(attempt(1, "g", "push", 30, 0))
	f.r.MaxPerGUID = 2
	redelivery := func(id int64, minAgo, code int) {
		a := attempt(id, "g", "push", minAgo, code)
		a.Redelivery = true
		f.gh.attempts = append([]bot.HookDelivery{a}, f.gh.attempts...)
	}
	var asked [][]int64
	var results []PassResult
	pass := func() {
		t.Helper()
		f.gh.asked = nil
		results = append(results, f.pass(t))
		asked = append(asked, f.gh.asked)
	}
	pass()               // asks for attempt 1
	pass()               // GitHub has not redelivered yet: nothing
	redelivery(2, 20, 0) // the redelivery failed: Stagehand was down again
	pass()               // asks for attempt 2
	pass()               // nothing
	redelivery(3, 10, 502)
	pass() // two failed redeliveries: given up
	pass() // nothing, not even a log line
	if diff := cmp.Diff([][]int64{{1}, nil, {2}, nil, nil, nil}, asked); diff != "" {
		t.Errorf("asked per pass (-want +got):\n%s", diff)
	}
	want := []PassResult{
		{Held: true, Pages: 1, Lost: 1, Requested: 1}, {Held: true, Pages: 1, Lost: 1},
		{Held: true, Pages: 1, Lost: 1, Requested: 1}, {Held: true, Pages: 1, Lost: 1},
		{Held: true, Pages: 2, Lost: 1, GaveUp: 1}, {Held: true, Pages: 2, Lost: 1},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("pass results (-want +got):\n%s", diff)
	}
	if got := f.log.requested["g"]; got.DeliveryID != 3 || got.Outcome != "gave up after 2 failed redeliveries" {
		t.Errorf("recorded: %+v, want the give-up of attempt 3", got)
	}
	if diff := cmp.Diff(map[string]float64{"requested": 2, "refused": 0, "failed": 0, "gave_up": 1}, f.outcomes()); diff != "" {
		t.Errorf("stagehand_redeliveries_requested_total (-want +got):\n%s", diff)
	}
	// A redelivery that worked ends it.
	f2 := newRedeliverFixture(attempt(1, "h", "push", 30, 0))
	f2.pass(t)
	ok := attempt(2, "h", "push", 20, 202)
	ok.Redelivery = true
	f2.gh.attempts = append([]bot.HookDelivery{ok}, f2.gh.attempts...)
	f2.gh.asked = nil
	if res := f2.pass(t); len(f2.gh.asked) != 0 || res.Lost != 0 {
		t.Errorf("after a redelivery that worked: %+v, asked %v", res, f2.gh.asked)
	}
}

// TestRedeliverPassReadsPastAThousandAttempts: with the default bounds a
// pass reads back 3,000 attempts, so a delivery that failed while the
// server was down is found behind the 2,000 attempts made since (the
// chaos soak's 100-kill run lost 25 when a pass read 1,000), and one
// behind 3,000 is not (the README says so).
func TestRedeliverPassReadsPastAThousandAttempts(t *testing.T) {
	for _, tc := range []struct {
		since int
		want  []int64
	}{{since: 2000, want: []int64{1}}, {since: 3000, want: nil}} {
		attempts := make([]bot.HookDelivery, 0, tc.since+1)
		for i := tc.since + 1; i > 1; i-- { // newest first
			attempts = append(attempts, bot.HookDelivery{ID: int64(i), GUID: fmt.Sprintf("ok-%d", i), Event: "push",
				DeliveredAt: redeliverNow.Add(-time.Duration(tc.since+1-i) * time.Second), StatusCode: 202})
		}
		attempts = append(attempts, bot.HookDelivery{ID: 1, GUID: "missed", Event: "push", DeliveredAt: redeliverNow.Add(-time.Hour), StatusCode: 0})
		f := newRedeliverFixture(attempts...)
		f.gh.pageSize = 100
		f.r.Lookback = 0 // the default, 3 days
		f.pass(t)
		if diff := cmp.Diff(tc.want, f.gh.asked); diff != "" {
			t.Errorf("behind %d attempts, asked (-want +got):\n%s", tc.since, diff)
		}
	}
}

// TestRedeliverPassCap: a long outage's backlog goes out MaxPerPass at a
// time, oldest first.
func TestRedeliverPassCap(t *testing.T) {
	var attempts []bot.HookDelivery
	for i := 5; i >= 1; i-- {
		attempts = append(attempts, attempt(int64(i), fmt.Sprintf("g%d", i), "push", 10-i, 0))
	}
	f := newRedeliverFixture(attempts...)
	f.r.MaxPerPass = 2
	res := f.pass(t)
	if diff := cmp.Diff([]int64{1, 2}, f.gh.asked); diff != "" {
		t.Errorf("first pass asked (-want +got):\n%s", diff)
	}
	if res.Requested != 2 || res.Capped != 3 {
		t.Errorf("first pass: %+v, want 2 requested and 3 left", res)
	}
	f.pass(t)
	f.pass(t)
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, f.gh.asked); diff != "" {
		t.Errorf("three passes asked (-want +got):\n%s", diff)
	}
}

// TestRedeliverPassFailuresAndRefusals: a request GitHub refuses for good
// is recorded and not made again; one that failed otherwise stops the pass
// (Run backs off) and is made again by a later pass.
func TestRedeliverPassFailuresAndRefusals(t *testing.T) {
	f := newRedeliverFixture(attempt(3, "c", "push", 1, 0), attempt(2, "b", "push", 2, 0), attempt(1, "a", "push", 3, 0))
	f.gh.errs[1] = []error{fmt.Errorf("ask: %w (422)", bot.ErrRedeliveryRefused)}
	f.gh.errs[2] = []error{errors.New("GitHub answered 502")}
	res, err := f.r.Pass(context.Background())
	if err == nil {
		t.Fatalf("pass with a failed request: no error")
	}
	if diff := cmp.Diff([]int64{1, 2}, f.gh.asked); diff != "" {
		t.Errorf("first pass asked (-want +got):\n%s", diff)
	}
	if res.Refused != 1 || res.Requested != 0 {
		t.Errorf("first pass: %+v", res)
	}
	if r, ok := f.log.requested["a"]; !ok || r.Outcome == RedeliveryRequested {
		t.Errorf("refused request of a recorded as %+v, %v; want its refusal", r, ok)
	}
	if _, ok := f.log.requested["b"]; ok {
		t.Errorf("the failed request of b was recorded: no later pass would ask again")
	}
	f.gh.asked = nil
	f.pass(t)
	if diff := cmp.Diff([]int64{2, 3}, f.gh.asked); diff != "" {
		t.Errorf("second pass asked (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"requested": 2, "refused": 1, "failed": 1, "gave_up": 0}, f.outcomes()); diff != "" {
		t.Errorf("stagehand_redeliveries_requested_total (-want +got):\n%s", diff)
	}
}

// TestRedeliverPassNeedsTheLease: a replica without the lease reads
// nothing and asks nothing.
func TestRedeliverPassNeedsTheLease(t *testing.T) {
	f := newRedeliverFixture(attempt(1, "a", "push", 1, 0))
	held := false
	f.r.Lease = func(context.Context) (bool, error) { return held, nil }
	if res := f.pass(t); res.Held || len(f.gh.cursors)+len(f.gh.asked) != 0 {
		t.Errorf("without the lease: %+v, GitHub asked %v %v", res, f.gh.cursors, f.gh.asked)
	}
	held = true
	if res := f.pass(t); !res.Held || len(f.gh.asked) != 1 {
		t.Errorf("with the lease: %+v, asked %v", res, f.gh.asked)
	}
}

// TestRedeliverRunBacksOff: after failed passes Run waits twice as long
// each time, up to MaxBackoff, and the normal interval after a pass that
// worked.
func TestRedeliverRunBacksOff(t *testing.T) {
	f := newRedeliverFixture()
	f.gh.listErr = errors.New("GitHub answered 503")
	f.r.MaxBackoff = 20 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	f.r.Sleep = func(_ context.Context, d time.Duration) error {
		f.waits = append(f.waits, d)
		switch len(f.waits) {
		case 5:
			f.gh.listErr = nil
		case 7:
			cancel()
			return context.Canceled
		}
		return nil
	}
	f.r.Run(ctx, 3*time.Minute)
	want := []time.Duration{6 * time.Minute, 12 * time.Minute, 20 * time.Minute, 20 * time.Minute, 20 * time.Minute, 3 * time.Minute, 3 * time.Minute}
	if diff := cmp.Diff(want, f.waits); diff != "" {
		t.Errorf("waits between passes (-want +got):\n%s", diff)
	}
}
