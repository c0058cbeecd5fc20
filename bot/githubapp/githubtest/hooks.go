package githubtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HookDelivery is one attempt of the stand-in, playing GitHub, to deliver a
// webhook to the App's webhook URL: what GET /app/hook/deliveries lists.
// GitHub lists every attempt as a delivery of its own, sharing the GUID of
// the event; a redelivery (POST /app/hook/deliveries/{id}/attempts) has
// Redelivery set.
type HookDelivery struct {
	ID             int64
	GUID           string
	Event          string
	Action         string // "" when the payload has none (push)
	InstallationID int64
	RepositoryID   int64
	Redelivery     bool
	DeliveredAt    time.Time
	Duration       time.Duration
	// StatusCode is the HTTP status the webhook URL answered, 0 when it
	// gave no answer (connection refused, timed out).
	StatusCode int
	// Status is GitHub's words for the outcome: "OK" for a 2xx, "Invalid
	// HTTP Response: 503", "failed to connect to host", "timed out".
	Status string
}

// OK reports whether the attempt was answered with a 2xx, what GitHub
// counts as delivered.
func (d HookDelivery) OK() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// hookDelivery is a recorded attempt and what was sent, for a redelivery.
type hookDelivery struct {
	HookDelivery
	body []byte
}

// DefaultWebhookTimeout is how long GitHub waits for a webhook URL's answer.
const DefaultWebhookTimeout = 10 * time.Second

// WithWebhookTimeout sets how long SendWebhook waits for the webhook URL's
// answer before recording the attempt as "timed out" (GitHub: 10 s).
func WithWebhookTimeout(d time.Duration) Option { return func(s *Server) { s.hookTimeout = d } }

// SetWebhook sets the App's webhook URL and the secret deliveries are
// signed with, as on the App's settings page.
func (s *Server) SetWebhook(webhookURL string, secret []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hookURL, s.hookSecret = webhookURL, slices.Clone(secret)
}

// SendWebhook delivers a webhook as GitHub does: a signed POST of body to
// the webhook URL (SetWebhook) with the event's headers. It records the
// attempt with its outcome, including a refused connection or a timeout,
// so that GET /app/hook/deliveries lists it and it can be redelivered, and
// returns it.
func (s *Server) SendWebhook(event, guid string, body []byte) HookDelivery {
	return s.deliver(event, guid, body, false)
}

// HookDeliveries returns every delivery attempt so far, oldest first.
func (s *Server) HookDeliveries() []HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]HookDelivery, len(s.hookDeliveries))
	for i, d := range s.hookDeliveries {
		out[i] = d.HookDelivery
	}
	return out
}

func (s *Server) deliver(event, guid string, body []byte, redelivery bool) HookDelivery {
	s.mu.Lock()
	target, secret, timeout := s.hookURL, s.hookSecret, s.hookTimeout
	s.mu.Unlock()
	if target == "" {
		panic("githubtest: SendWebhook before SetWebhook")
	}
	var meta struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		Repository struct {
			ID int64 `json:"id"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(body, &meta) // a payload without them lists nulls
	d := hookDelivery{HookDelivery: HookDelivery{GUID: guid, Event: event, Action: meta.Action,
		InstallationID: meta.Installation.ID, RepositoryID: meta.Repository.ID, Redelivery: redelivery,
		DeliveredAt: s.now()}, body: slices.Clone(body)}
	start := time.Now()
	d.StatusCode, d.Status = post(target, timeout, event, guid, Sign(secret, body), body)
	d.Duration = time.Since(start)
	s.mu.Lock()
	s.nextID++
	d.ID = s.nextID
	s.hookDeliveries = append(s.hookDeliveries, &d)
	s.mu.Unlock()
	return d.HookDelivery
}

// post sends one delivery and says how it went, in GitHub's words.
func post(target string, timeout time.Duration, event, guid, signature string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid webhook URL"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/githubtest")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	req.Header.Set("X-Hub-Signature-256", signature)
	client := &http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		var nerr net.Error
		switch {
		case errors.As(err, &nerr) && nerr.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
			return 0, "timed out"
		default:
			return 0, "failed to connect to host"
		}
	}
	defer resp.Body.Close()
	_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, "OK"
	}
	return resp.StatusCode, fmt.Sprintf("Invalid HTTP Response: %d", resp.StatusCode)
}

// hookCursor is the opaque cursor of a page of deliveries: the id of its
// first (newest) delivery.
func hookCursor(id int64) string { return "v1_" + strconv.FormatInt(id, 10) }

// listHookDeliveries answers GET /app/hook/deliveries: the App's deliveries,
// newest first, per_page at a time (default 30, at most 100), with GitHub's
// cursor paging (a Link header with rel="next" while more remain) and its
// status filter (success: 200-399, failure: 400-599).
func (s *Server) listHookDeliveries(req *request) response {
	if _, resp := s.appAuth(req.Request); resp != nil {
		return *resp
	}
	q := req.URL.Query()
	perPage := 30
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errorResponse(http.StatusBadRequest, "per_page must be a positive integer", req.op.docURL)
		}
		perPage = min(n, 100)
	}
	from := int64(-1)
	if c := q.Get("cursor"); c != "" {
		id, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if !strings.HasPrefix(c, "v1_") || err != nil {
			return errorResponse(http.StatusBadRequest, "Invalid cursor", req.op.docURL)
		}
		from = id
	}
	status := q.Get("status")
	s.mu.Lock()
	var match []HookDelivery
	for i := len(s.hookDeliveries) - 1; i >= 0; i-- {
		d := s.hookDeliveries[i].HookDelivery
		if from >= 0 && d.ID > from {
			continue
		}
		switch status {
		case "success":
			if d.StatusCode < 200 || d.StatusCode > 399 {
				continue
			}
		case "failure":
			if d.StatusCode < 400 || d.StatusCode > 599 {
				continue
			}
		}
		match = append(match, d)
	}
	s.mu.Unlock()
	page := match[:min(perPage, len(match))]
	items := make([]map[string]any, 0, len(page))
	for _, d := range page {
		items = append(items, hookDeliveryJSON(d))
	}
	h := http.Header{}
	if len(match) > len(page) {
		next := url.Values{"per_page": {strconv.Itoa(perPage)}, "cursor": {hookCursor(match[len(page)].ID)}}
		if status != "" {
			next.Set("status", status)
		}
		h.Set("Link", fmt.Sprintf(`<%sapp/hook/deliveries?%s>; rel="next"`, s.URL(), next.Encode()))
	}
	return response{status: http.StatusOK, header: h, body: items}
}

// hookDeliveryJSON is GitHub's "simple webhook delivery".
func hookDeliveryJSON(d HookDelivery) map[string]any {
	orNull := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	var action any
	if d.Action != "" {
		action = d.Action
	}
	return map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery": d.Redelivery, "duration": d.Duration.Seconds(), "status": d.Status,
		"status_code": d.StatusCode, "event": d.Event, "action": action,
		"installation_id": orNull(d.InstallationID), "repository_id": orNull(d.RepositoryID),
		"throttled_at": nil,
	}
}

// redeliverHookDelivery answers POST /app/hook/deliveries/{delivery_id}/attempts:
// 202, then, as GitHub does soon after, a new attempt of that delivery's
// event under its GUID, recorded with Redelivery set.
func (s *Server) redeliverHookDelivery(req *request) response {
	if _, resp := s.appAuth(req.Request); resp != nil {
		return *resp
	}
	id, _ := strconv.ParseInt(req.params["delivery_id"], 10, 64)
	s.mu.Lock()
	var found *hookDelivery
	for _, d := range s.hookDeliveries {
		if d.ID == id {
			found = d
		}
	}
	s.mu.Unlock()
	if found == nil {
		return req.notFound()
	}
	s.hookSends.Add(1)
	go func() {
		defer s.hookSends.Done()
		select {
		case <-s.closing:
			return
		default:
		}
		s.deliver(found.Event, found.GUID, found.body, true)
	}()
	return response{status: http.StatusAccepted, body: map[string]any{}}
}
