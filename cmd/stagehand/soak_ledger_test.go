package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ledger is GitHub's side of the soak's deliveries: what was sent, and
// what each attempt was answered. GitHub does not retry a failed delivery;
// until Stagehand asks for redeliveries itself, the soak's resender sends
// the failed ones again, as a person pressing "Redeliver" would.
type ledger struct {
	servers []*soakServer
	// webhook is where GitHub sends deliveries: the server, or a load
	// balancer in front of the replicas.
	webhook *replica
	client  *http.Client

	mu         sync.Mutex
	deliveries []*soakDelivery
	byGUID     map[string]*soakDelivery
}

type soakDelivery struct {
	guid, event, kind string
	body              []byte
	sent              time.Time
	attempts          int
	accepted          bool // answered 202 at some attempt
	answers           []string
}

func newLedger(servers []*soakServer, webhookAddr string) *ledger {
	return &ledger{servers: servers, webhook: &replica{addr: webhookAddr},
		client: &http.Client{Timeout: 15 * time.Second}, byGUID: map[string]*soakDelivery{}}
}

// send delivers a new event once.
func (l *ledger) send(event, kind string, body []byte) {
	l.mu.Lock()
	d := &soakDelivery{guid: fmt.Sprintf("soak-%s-%05d", kind, len(l.deliveries)), event: event, kind: kind, body: body, sent: time.Now()}
	l.deliveries = append(l.deliveries, d)
	l.byGUID[d.guid] = d
	l.mu.Unlock()
	l.attempt(d)
}

func (l *ledger) attempt(d *soakDelivery) bool {
	code, err := l.webhook.post(l.client, d.event, d.guid, d.body)
	answer := fmt.Sprint(code)
	if err != nil {
		answer = "error"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	d.attempts++
	d.answers = append(d.answers, answer)
	if code == http.StatusAccepted {
		d.accepted = true
	}
	return d.accepted
}

// failed are the deliveries no attempt of which was accepted.
func (l *ledger) failed() []*soakDelivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*soakDelivery
	for _, d := range l.deliveries {
		if !d.accepted {
			out = append(out, d)
		}
	}
	return out
}

// resender sends the failed deliveries again every 2 s while a server is
// up, until ctx ends.
func (l *ledger) resender(ctx context.Context, stats *counters) {
	for sleepCtx(ctx, 2*time.Second) {
		l.resendOnce(stats)
	}
}

func (l *ledger) resendOnce(stats *counters) {
	for _, d := range l.failed() {
		if !slices.ContainsFunc(l.servers, func(s *soakServer) bool { return s.running() && s.ready() }) {
			return
		}
		stats.add("resent by driver", 1)
		l.attempt(d)
	}
}

// counts sums the ledger up: sent, accepted, redelivered (accepted after a
// failed attempt), by kind.
func (l *ledger) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := map[string]int{}
	for _, d := range l.deliveries {
		c["sent"]++
		c["sent "+d.kind]++
		if d.accepted {
			c["accepted"]++
			if d.attempts > 1 {
				c["redelivered"]++
			}
		}
		if d.answers[0] != "202" {
			c["failed first"]++
		}
	}
	return c
}

func (l *ledger) summary() string {
	c := l.counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.ReplaceAll(k, " ", "_"), c[k]))
	}
	return "deliveries: " + strings.Join(parts, " ")
}

func (l *ledger) all() []*soakDelivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*soakDelivery(nil), l.deliveries...)
}
