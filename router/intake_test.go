package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// recordingPublisher is a hand-written fake that keeps what was published.
type recordingPublisher struct {
	mu   sync.Mutex
	msgs []*message.Message
	err  error
}

func (p *recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

const testSecret = "It's a Secret to Everybody"

// wrongSignature is well formed, and the signature of no body here.
var wrongSignature = "sha256=" + strings.Repeat("0", 64)

func newTestIntake(pub message.Publisher) *Intake {
	return &Intake{
		Secrets: [][]byte{[]byte("old secret"), []byte(testSecret)}, Publisher: pub,
		Events: testEvents, Metrics: NewMetrics(nil), Logger: slog.New(slog.DiscardHandler),
	}
}

func TestIntakeStatusCodes(t *testing.T) {
	push := githubtest.Payload("push/branch-updated.go-playground.json")
	signed := githubtest.Sign([]byte(testSecret), push)
	sha1Only := http.Header{"X-Hub-Signature": {"sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"}}
	tests := []struct {
		name        string
		body        []byte
		header      http.Header // replaces the defaults for the keys it names
		drop        []string    // default headers to leave out
		chunked     bool        // sent without a Content-Length
		wantStatus  int
		wantOutcome string
		wantStored  bool
	}{
		{name: "valid push", body: push, wantStatus: 202, wantOutcome: OutcomeAccepted, wantStored: true},
		{name: "signed with the previous secret", body: push,
			header: http.Header{"X-Hub-Signature-256": {githubtest.Sign([]byte("old secret"), push)}}, wantStatus: 202, wantOutcome: OutcomeAccepted, wantStored: true},
		{name: "missing signature", body: push, drop: []string{"X-Hub-Signature-256"}, wantStatus: 401, wantOutcome: OutcomeUnauthorized},
		{name: "wrong signature", body: push, header: http.Header{"X-Hub-Signature-256": {githubtest.Sign([]byte("not the secret"), push)}}, wantStatus: 401, wantOutcome: OutcomeUnauthorized},
		{name: "signature not hex", body: push, header: http.Header{"X-Hub-Signature-256": {"sha256=zz"}}, wantStatus: 401, wantOutcome: OutcomeUnauthorized},
		{name: "SHA-1 signature only", body: push, drop: []string{"X-Hub-Signature-256"}, header: sha1Only, wantStatus: 401, wantOutcome: OutcomeUnauthorized},
		{name: "signature of another body", body: append([]byte(" "), push...), header: http.Header{"X-Hub-Signature-256": {signed}}, wantStatus: 401, wantOutcome: OutcomeUnauthorized},
		{name: "truncated JSON", body: push[:len(push)/2], wantStatus: 400, wantOutcome: OutcomeBadRequest},
		{name: "missing event header", body: push, drop: []string{"X-GitHub-Event"}, wantStatus: 400, wantOutcome: OutcomeBadRequest},
		{name: "missing delivery header", body: push, drop: []string{"X-GitHub-Delivery"}, wantStatus: 400, wantOutcome: OutcomeBadRequest},
		{name: "form-encoded content type", body: push, header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, wantStatus: 415, wantOutcome: OutcomeBadMediaType},
		{name: "json with charset", body: push, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, wantStatus: 202, wantOutcome: OutcomeAccepted, wantStored: true},
		{name: "unknown event is acknowledged and dropped", body: push, header: http.Header{"X-GitHub-Event": {"star"}}, wantStatus: 202, wantOutcome: OutcomeIgnored},
		{name: "valid push without a Content-Length", body: push, chunked: true, wantStatus: 202, wantOutcome: OutcomeAccepted, wantStored: true},
		{name: "wrong signature without a Content-Length", body: push, chunked: true, header: http.Header{"X-Hub-Signature-256": {wrongSignature}}, wantStatus: 401, wantOutcome: OutcomeUnauthorized},
		{name: "empty body", body: []byte{}, wantStatus: 400, wantOutcome: OutcomeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &recordingPublisher{}
			in := newTestIntake(pub)
			req := httptest.NewRequest("POST", "/webhooks", bytes.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
			req.Header.Set("X-Hub-Signature-256", githubtest.Sign([]byte(testSecret), tt.body))
			for _, k := range tt.drop {
				req.Header.Del(k)
			}
			for k, v := range tt.header {
				req.Header[http.CanonicalHeaderKey(k)] = v
			}
			rec := httptest.NewRecorder()
			in.ServeHTTP(rec, req)
			// Every answer says its outcome and why in headers; a refusal
			// repeats them in a JSON body, an accepted delivery's answer
			// has none (see writeAnswer).
			body := struct{ Status, Message, Delivery string }{
				Status: rec.Header().Get(HeaderOutcome), Message: rec.Header().Get(HeaderMessage),
			}
			if tt.wantStatus >= 400 {
				var inBody struct{ Status, Message, Delivery string }
				if err := json.Unmarshal(rec.Body.Bytes(), &inBody); err != nil {
					t.Fatalf("refusal's body is not JSON: %v: %s", err, rec.Body)
				}
				if inBody.Status != body.Status || inBody.Message != body.Message {
					t.Errorf("refusal's body %+v says something else than its headers %+v", inBody, body)
				}
			} else if rec.Body.Len() != 0 {
				t.Errorf("an accepted delivery's answer has a body: %q", rec.Body)
			}
			got := struct {
				Status  int
				Outcome string
				Stored  bool
			}{rec.Code, body.Status, len(pub.msgs) == 1}
			want := struct {
				Status  int
				Outcome string
				Stored  bool
			}{tt.wantStatus, tt.wantOutcome, tt.wantStored}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s\nmessage: %s", diff, body.Message)
			}
			if tt.wantStatus >= 400 && body.Message == "" {
				t.Errorf("a refusal must say why; body: %s", rec.Body)
			}
			if tt.wantStored {
				m := pub.msgs[0]
				if m.UUID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || m.Metadata.Get(MetaEvent) != "push" || !bytes.Equal(m.Payload, tt.body) {
					t.Errorf("stored message = uuid %q event %q, payload equal %v", m.UUID, m.Metadata.Get(MetaEvent), bytes.Equal(m.Payload, tt.body))
				}
			}
			if n := testutil.ToFloat64(in.Metrics.Deliveries.WithLabelValues(labelFor(req), tt.wantOutcome)); n != 1 {
				t.Errorf("deliveries metric for outcome %s = %v, want 1", tt.wantOutcome, n)
			}
			if free := budgetFree(in); free != DefaultBodyBudget {
				t.Errorf("after the answer, %d bytes of the body budget are free, want all %d back", free, DefaultBodyBudget)
			}
		})
	}
}

// budgetFree is how many bytes of the intake's body budget are free.
func budgetFree(in *Intake) int64 {
	b, _, _ := in.limits()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.free
}

// TestIntakeRefusesBeforeReading: what the headers already refuse costs no
// read of the body (nor any of the body budget).
func TestIntakeRefusesBeforeReading(t *testing.T) {
	tests := []struct {
		name          string
		header        http.Header
		contentLength int64
		wantStatus    int
	}{
		{"no signature", http.Header{}, 1 << 20, 401},
		{"SHA-1 signature only", http.Header{"X-Hub-Signature": {"sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"}}, 1 << 20, 401},
		{"malformed signature", http.Header{"X-Hub-Signature-256": {"sha256=00"}}, 1 << 20, 401},
		{"Content-Length over 25 MB", http.Header{"X-Hub-Signature-256": {wrongSignature}}, MaxWebhookBytes + 1, 413},
		{"form-encoded", http.Header{"X-Hub-Signature-256": {wrongSignature}, "Content-Type": {"application/x-www-form-urlencoded"}}, 1 << 20, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newTestIntake(&recordingPublisher{})
			body := &countingReader{size: tt.contentLength}
			req := httptest.NewRequest("POST", "/webhooks", body)
			req.ContentLength = tt.contentLength
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "refused")
			for k, v := range tt.header {
				req.Header[http.CanonicalHeaderKey(k)] = v
			}
			rec := httptest.NewRecorder()
			in.ServeHTTP(rec, req)
			got := struct {
				Status    int
				BytesRead int64
				Close     string
			}{rec.Code, body.n, rec.Header().Get("Connection")}
			want := struct {
				Status    int
				BytesRead int64
				Close     string
			}{tt.wantStatus, 0, "close"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s\nbody: %s", diff, rec.Body)
			}
		})
	}
}

func labelFor(r *http.Request) string {
	if testEvents[r.Header.Get("X-GitHub-Event")] {
		return r.Header.Get("X-GitHub-Event")
	}
	return "other"
}

// TestSignatureGitHubVector checks the signature check against the example
// in GitHub's documentation on validating webhook deliveries, the body
// hashed in two parts as it arrives from the network.
func TestSignatureGitHubVector(t *testing.T) {
	const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	tests := []struct {
		name   string
		header string
		parts  []string
		want   bool
	}{
		{"GitHub's example", sig, []string{"Hello, ", "World!"}, true},
		{"another body", sig, []string{"Hello, World?"}, false},
		{"part of the body", sig, []string{"Hello, "}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check, err := newSignatureCheck(tt.header, [][]byte{[]byte("old secret"), []byte(testSecret)})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.parts {
				_, _ = check.Write([]byte(p))
			}
			if got := check.valid(); got != tt.want {
				t.Errorf("valid() = %v, want %v", got, tt.want)
			}
		})
	}
	for _, header := range []string{
		strings.Replace(sig, "sha256=", "sha1=", 1), // not the sha256= prefix
		"sha256=zz",                       // not hexadecimal
		"sha256=757107ea0eb2509fc211221c", // too short for SHA-256
		sig + "00",                        // too long
	} {
		if _, err := newSignatureCheck(header, [][]byte{[]byte(testSecret)}); err == nil {
			t.Errorf("header %q was taken for a signature", header)
		}
	}
}

// countingReader fails the test if the intake reads far past the limit.
type countingReader struct {
	n, size int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.n >= r.size {
		return 0, io.EOF
	}
	if int64(len(p)) > r.size-r.n {
		p = p[:r.size-r.n]
	}
	for i := range p {
		p[i] = ' '
	}
	r.n += int64(len(p))
	return len(p), nil
}

func TestIntakeTooLarge(t *testing.T) {
	const size = 26 << 20
	for _, announced := range []bool{true, false} {
		name := map[bool]string{true: "content length announced", false: "chunked"}[announced]
		t.Run(name, func(t *testing.T) {
			pub := &recordingPublisher{}
			in := newTestIntake(pub)
			body := &countingReader{size: size}
			req := httptest.NewRequest("POST", "/webhooks", body)
			req.ContentLength = -1
			if announced {
				req.ContentLength = size
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "big")
			req.Header.Set("X-Hub-Signature-256", wrongSignature)
			rec := httptest.NewRecorder()
			in.ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want 413; body %s", rec.Code, rec.Body)
			}
			if body.n > MaxWebhookBytes+1<<16 {
				t.Errorf("read %d bytes of a %d-byte body; the limit is %d", body.n, size, MaxWebhookBytes)
			}
			if announced && body.n != 0 {
				t.Errorf("read %d bytes although Content-Length announced too much", body.n)
			}
			if len(pub.msgs) != 0 {
				t.Error("an oversized delivery was stored")
			}
		})
	}
}

func TestIntakeStoreFailureIsNot2xx(t *testing.T) {
	push := githubtest.Payload("push/branch-created.json")
	in := newTestIntake(&recordingPublisher{err: errors.New("jetstream: no responders")})
	req := httptest.NewRequest("POST", "/webhooks", bytes.NewReader(push))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "d1")
	req.Header.Set("X-Hub-Signature-256", githubtest.Sign([]byte(testSecret), push))
	rec := httptest.NewRecorder()
	in.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503 so GitHub shows the delivery as failed", rec.Code)
	}
}

// testEvents are the events the intake accepts: the webhook room's, as
// serve passes them.
var testEvents = webhook.EventSet()
