package bot

import (
	"errors"
	"slices"
	"time"
)

// HookDelivery is one attempt GitHub made to deliver a webhook to the App,
// as GET /app/hook/deliveries lists it. Every attempt is a row of its own;
// the attempts of one event share its GUID, and a redelivery has
// Redelivery set.
type HookDelivery struct {
	ID          int64
	GUID        string
	Event       string
	Action      string
	Redelivery  bool
	DeliveredAt time.Time
	// StatusCode is what the webhook URL answered, 0 when it gave no HTTP
	// answer (connection refused, timed out); Status is GitHub's words.
	StatusCode int
	Status     string
}

// Delivered reports whether the webhook URL took the attempt (a 2xx).
func (d HookDelivery) Delivered() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// Redeliverable reports whether sending the attempt again can change its
// outcome: no answer at all (Stagehand down, unreachable or too slow), a
// 5xx (overloaded, failing), 408 or 429. Any other 4xx was Stagehand's
// answer to the request itself (a bad signature, a body too large) and
// would be its answer again.
func (d HookDelivery) Redeliverable() bool {
	switch c := d.StatusCode; {
	case c == 0, c >= 500 && c <= 599, c == 408, c == 429:
		return true
	}
	return false
}

// ErrRedeliveryRefused is matched (errors.Is) by the error of a redelivery
// request GitHub refused for good (the delivery is too old, or unknown):
// asking again would get the same answer.
var ErrRedeliveryRefused = errors.New("GitHub refused to redeliver")

// LostDeliveries picks, from attempts listed by GitHub (any order), the
// events whose delivery failed: every attempt of the GUID within the
// look-back (delivered at or after since) failed, and at least one of those
// failures can be fixed by sending it again (Redeliverable). A GUID with
// any delivered attempt needs nothing. It returns one attempt per GUID, the
// GUID's latest, oldest GUID first (by its first attempt), so that
// redeliveries arrive in the order the events happened: a push redelivered
// after a later push would otherwise win rule C's queued slot over it.
func LostDeliveries(attempts []HookDelivery, since time.Time) []HookDelivery {
	type guid struct {
		first, latest HookDelivery
		delivered     bool
		fixable       bool
	}
	byGUID := map[string]*guid{}
	var order []string
	for _, a := range attempts {
		if a.DeliveredAt.Before(since) || a.GUID == "" {
			continue
		}
		g := byGUID[a.GUID]
		if g == nil {
			g = &guid{first: a, latest: a}
			byGUID[a.GUID] = g
			order = append(order, a.GUID)
		}
		if earlier(a, g.first) {
			g.first = a
		}
		if earlier(g.latest, a) {
			g.latest = a
		}
		g.delivered = g.delivered || a.Delivered()
		g.fixable = g.fixable || a.Redeliverable()
	}
	var lost []*guid
	for _, id := range order {
		if g := byGUID[id]; !g.delivered && g.fixable {
			lost = append(lost, g)
		}
	}
	slices.SortStableFunc(lost, func(a, b *guid) int {
		switch {
		case earlier(a.first, b.first):
			return -1
		case earlier(b.first, a.first):
			return 1
		}
		return 0
	})
	out := make([]HookDelivery, len(lost))
	for i, g := range lost {
		out[i] = g.latest
	}
	return out
}

// earlier orders attempts by time, then by id (GitHub's ids grow).
func earlier(a, b HookDelivery) bool {
	if !a.DeliveredAt.Equal(b.DeliveredAt) {
		return a.DeliveredAt.Before(b.DeliveredAt)
	}
	return a.ID < b.ID
}
