package router

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// fakeDeliveryLog is an in-memory DeliveryLog. The test handlers mark
// deliveries processed in it, as worker.Webhooks does in its store.
type fakeDeliveryLog struct {
	mu          sync.Mutex
	records     map[string]bot.DeliveryRecord
	failPoisons int // MarkPoisoned fails this many more times
}

func (f *fakeDeliveryLog) DeliveryRecord(_ context.Context, guid string) (bot.DeliveryRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.records[guid], nil
}

func (f *fakeDeliveryLog) MarkPoisoned(_ context.Context, p bot.PoisonedDelivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPoisons > 0 {
		f.failPoisons--
		return errors.New("the store is down")
	}
	if f.records == nil {
		f.records = map[string]bot.DeliveryRecord{}
	}
	r := f.records[p.GUID]
	r.PoisonedAt, r.PoisonReason = time.Now(), p.Reason
	f.records[p.GUID] = r
	return nil
}

func (f *fakeDeliveryLog) markProcessed(guid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.records == nil {
		f.records = map[string]bot.DeliveryRecord{}
	}
	r := f.records[guid]
	r.ProcessedAt = time.Now()
	f.records[guid] = r
}

func (f *fakeDeliveryLog) record(guid string) bot.DeliveryRecord {
	r, _ := f.DeliveryRecord(context.Background(), guid)
	return r
}

// intakeAnswer is an intake answer: its status code and its outcome and
// words, from the headers every answer carries.
type intakeAnswer struct {
	Code    int
	Status  string
	Message string
}

// deliver posts a signed push delivery and returns the intake's answer.
func (r *routerRig) deliver(t *testing.T, guid string, body []byte) intakeAnswer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-Hub-Signature-256", githubtest.Sign([]byte(routerTestSecret), body))
	rec := httptest.NewRecorder()
	r.intake.ServeHTTP(rec, req)
	return intakeAnswer{Code: rec.Code, Status: rec.Header().Get(HeaderOutcome), Message: rec.Header().Get(HeaderMessage)}
}

// GitHub's "Redeliver" sends the same X-GitHub-Delivery again. Within the
// broker's ten-minute duplicate window, a poisoned delivery's redelivery
// must still be stored and handled (the cause may be fixed by now), and a
// processed delivery's redelivery is answered "duplicate" and not stored.
func TestRedeliveryOfPoisonedDelivery(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	log := &fakeDeliveryLog{}
	rig.intake.Deliveries, rig.deliveries = log, log
	var calls attemptLog
	var fixed sync.Mutex // held while "the cause" is not fixed
	broken := true
	rig.run(t, func(msg *message.Message) error {
		calls.add(msg)
		fixed.Lock()
		defer fixed.Unlock()
		if broken {
			return permanentTestError{permanent: true}
		}
		log.markProcessed(msg.Metadata.Get(MetaDeliveryID))
		return nil
	})

	// 1. The first delivery fails and is poisoned; the poisoning is recorded.
	if a := rig.deliver(t, guidA, pushBody); a.Code != http.StatusAccepted || a.Message != "stored" {
		t.Fatalf("first delivery answered %+v", a)
	}
	rig.settle(t)
	rec := log.record(guidA)
	if rec.PoisonedAt.IsZero() || !strings.Contains(rec.PoisonReason, "malformed") {
		t.Fatalf("after the first delivery the log holds %+v, want it poisoned with the handler's error", rec)
	}

	// 2. The cause is fixed; GitHub redelivers within the window.
	fixed.Lock()
	broken = false
	fixed.Unlock()
	a := rig.deliver(t, guidA, pushBody)
	if a.Code != http.StatusAccepted || a.Status != OutcomeAccepted || !strings.Contains(a.Message, "stored again: it failed at") {
		t.Errorf("redelivery of the poisoned delivery answered %+v, want 202 accepted, stored again", a)
	}
	rig.settle(t)

	// 3. A second redelivery, now that it was processed: nothing stored.
	a = rig.deliver(t, guidA, pushBody)
	if a.Code != http.StatusAccepted || a.Status != OutcomeDuplicate || !strings.Contains(a.Message, "was processed at") {
		t.Errorf("redelivery of the processed delivery answered %+v, want 202 duplicate", a)
	}
	rig.settle(t)

	type result struct {
		Calls         int
		Processed     bool
		Poisoned      uint64
		DuplicateSeen float64
	}
	got := result{
		Calls:         len(calls.calls()),
		Processed:     !log.record(guidA).ProcessedAt.IsZero(),
		Poisoned:      rig.poisonCount(t),
		DuplicateSeen: testutil.ToFloat64(rig.metrics.Deliveries.WithLabelValues("push", OutcomeDuplicate)),
	}
	want := result{Calls: 2, Processed: true, Poisoned: 1, DuplicateSeen: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after poison, redelivery and a second redelivery (-want +got):\n%s", diff)
	}
}

// Without a delivery log the broker's duplicate window decides alone: the
// redelivery is answered 202 and dropped. This is the behaviour the log
// exists to fix, kept as a reference.
func TestRedeliveryWithoutDeliveryLogIsDropped(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	var calls attemptLog
	rig.run(t, func(msg *message.Message) error {
		if calls.add(msg) == 1 {
			return permanentTestError{permanent: true}
		}
		return nil
	})
	rig.deliver(t, guidA, pushBody)
	rig.settle(t)
	rig.deliver(t, guidA, pushBody)
	rig.settle(t)
	if got := len(calls.calls()); got != 1 {
		t.Errorf("handler calls = %d, want 1 (the redelivery dropped as a duplicate)", got)
	}
}

// When the poisoning cannot be recorded, the message is not acknowledged:
// it comes back, is poisoned again, and recorded then. The poison queue
// keeps one copy.
func TestPoisoningIsRecordedEvenAfterAStoreFailure(t *testing.T) {
	rig := newRouterRig(t, BrokerOptions{})
	log := &fakeDeliveryLog{failPoisons: 1}
	rig.intake.Deliveries, rig.deliveries = log, log
	var calls attemptLog
	rig.run(t, func(msg *message.Message) error {
		calls.add(msg)
		return permanentTestError{permanent: true}
	})
	rig.deliver(t, guidB, pushBody)
	rig.settle(t)
	if log.record(guidB).PoisonedAt.IsZero() {
		t.Errorf("the poisoning was never recorded")
	}
	if got := calls.count(guidB); got != 2 {
		t.Errorf("handler calls = %d, want 2 (the first poisoning not recorded, so the message came back)", got)
	}
	if got := rig.poisonCount(t); got != 1 {
		t.Errorf("poison queue holds %d messages, want 1", got)
	}
	if !strings.Contains(rig.logs.String(), "recording poisoned delivery") {
		t.Errorf("the failed record is not logged:\n%s", rig.logs)
	}
}

func TestMessageID(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 5, time.UTC)
	tests := []struct {
		name string
		rec  bot.DeliveryRecord
		want string
	}{
		{"never seen", bot.DeliveryRecord{}, "g"},
		{"poisoned", bot.DeliveryRecord{PoisonedAt: at}, "g/redelivery-1795608000000000005"},
	}
	for _, tt := range tests {
		if got := messageID("g", tt.rec); got != tt.want {
			t.Errorf("%s: messageID = %q, want %q", tt.name, got, tt.want)
		}
	}
}
