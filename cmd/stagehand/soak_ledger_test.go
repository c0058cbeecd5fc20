package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// ledger is GitHub's side of the soak's deliveries. The driver sends each
// delivery once, through the stand-in's webhook sender, which records every
// attempt with its outcome as GitHub does (GET /app/hook/deliveries). GitHub
// does not retry a failed delivery: Stagehand's automatic redelivery asks
// for it again (POST /app/hook/deliveries/{id}/attempts), and the stand-in
// records that attempt too, as a redelivery. Only in the drain, for a
// delivery that automatic redelivery did not bring back in time, does the
// driver send it again itself, as a person pressing "Redeliver" would
// (counted as resent by the driver, and as lost).
type ledger struct {
	gh *githubtest.Server
	// webhook is where the driver's last-resort resend goes: the server,
	// or the load balancer in front of the replicas.
	webhook *replica
	client  *http.Client
	// stored says whether Stagehand has the GUID (processed or poisoned):
	// it may have taken a delivery whose attempt GitHub recorded as failed
	// (the server was killed after storing it, before its answer went
	// out), and rightly never asks for it again.
	stored func(guid string) bool

	mu         sync.Mutex
	deliveries []*soakDelivery
}

type soakDelivery struct {
	guid, event, kind string
	body              []byte
	sent              time.Time
	// resent are the answers to the driver's last-resort resends.
	resent []string
}

func newLedger(gh *githubtest.Server, webhookAddr string) *ledger {
	return &ledger{gh: gh, webhook: &replica{addr: webhookAddr}, client: &http.Client{Timeout: 15 * time.Second}}
}

// send has GitHub deliver a new event, once.
func (l *ledger) send(event, kind string, body []byte) {
	l.mu.Lock()
	d := &soakDelivery{guid: fmt.Sprintf("soak-%s-%05d", kind, len(l.deliveries)), event: event, kind: kind, body: body, sent: time.Now()}
	l.deliveries = append(l.deliveries, d)
	l.mu.Unlock()
	l.gh.SendWebhook(event, d.guid, body)
}

// attempts are GitHub's attempts of each GUID, oldest first.
func (l *ledger) attempts() map[string][]githubtest.HookDelivery {
	out := map[string][]githubtest.HookDelivery{}
	for _, a := range l.gh.HookDeliveries() {
		out[a.GUID] = append(out[a.GUID], a)
	}
	return out
}

// deliveredByGitHub says whether one of GitHub's attempts of the GUID was
// answered 2xx: the first one or a redelivery.
func deliveredByGitHub(attempts []githubtest.HookDelivery) bool {
	for _, a := range attempts {
		if a.OK() {
			return true
		}
	}
	return false
}

// undelivered are the deliveries no attempt of which GitHub got a 2xx for,
// that Stagehand does not have, and that the driver did not resend.
func (l *ledger) undelivered() []*soakDelivery {
	byGUID := l.attempts()
	var out []*soakDelivery
	for _, d := range l.all() {
		l.mu.Lock()
		resent := len(d.resent) > 0
		l.mu.Unlock()
		if !resent && !deliveredByGitHub(byGUID[d.guid]) && !l.stored(d.guid) {
			out = append(out, d)
		}
	}
	return out
}

// accepted says whether d was answered 2xx: by GitHub's attempts or the
// driver's resend.
func (l *ledger) accepted(d *soakDelivery, attempts []githubtest.HookDelivery) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return deliveredByGitHub(attempts) || strings.Contains(strings.Join(d.resent, " "), "202")
}

// resend sends d itself until the webhook answers 202 (at most a minute):
// the last resort for a delivery automatic redelivery did not bring back.
func (l *ledger) resend(d *soakDelivery) {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		code, err := l.webhook.post(l.client, d.event, d.guid, d.body)
		answer := fmt.Sprint(code)
		if err != nil {
			answer = "error"
		}
		l.mu.Lock()
		d.resent = append(d.resent, answer)
		l.mu.Unlock()
		if code == http.StatusAccepted || time.Now().After(deadline) {
			return
		}
	}
}

// counts sums the ledger up from GitHub's attempts: sent, accepted at the
// first attempt, failed at the first attempt, redelivered (answered 2xx at
// a redelivery Stagehand asked for, after a first attempt that failed),
// GitHub's redelivery attempts and how many of them failed, stored though
// every attempt failed (Stagehand has it: the kill came after it was stored,
// before its answer), resent by the driver, by kind.
func (l *ledger) counts() map[string]int {
	byGUID := l.attempts()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := map[string]int{}
	for _, d := range l.deliveries {
		c["sent"]++
		c["sent "+d.kind]++
		attempts := byGUID[d.guid]
		if len(attempts) == 0 {
			continue // being sent
		}
		if attempts[0].OK() {
			c["accepted first"]++
		} else {
			c["failed first"]++
		}
		if !deliveredByGitHub(attempts) && len(d.resent) == 0 && l.stored(d.guid) {
			c["stored though failed"]++
		}
		redelivered := false
		for _, a := range attempts {
			if !a.Redelivery {
				continue
			}
			c["redelivery attempts"]++
			if !a.OK() {
				c["redelivery attempts failed"]++
			}
			redelivered = redelivered || (a.OK() && !attempts[0].OK())
		}
		if redelivered {
			c["redelivered"]++
		}
		if len(d.resent) > 0 {
			c["resent by driver"]++
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

// answers are GitHub's statuses of the GUID's attempts and the driver's
// resends, for a message.
func answers(attempts []githubtest.HookDelivery, d *soakDelivery) string {
	var out []string
	for _, a := range attempts {
		s := a.Status
		if a.Redelivery {
			s = "redelivery: " + s
		}
		out = append(out, s)
	}
	for _, r := range d.resent {
		out = append(out, "resent by the driver: "+r)
	}
	return strings.Join(out, "; ")
}
