package githubapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// RetryPolicy tunes how installation clients retry. Zero fields take the
// defaults.
type RetryPolicy struct {
	// MaxAttempts bounds the tries of one request, the first included
	// (default 5).
	MaxAttempts int
	// BaseDelay is the backoff after the first failed try (a 5xx, a secondary
	// rate limit without Retry-After, a network error); it doubles with each
	// try and gets a random jitter of up to half its length (default 1s).
	BaseDelay time.Duration
	// MaxDelay caps one backoff (default 30s). It does not shorten the waits
	// GitHub asks for (Retry-After, X-RateLimit-Reset).
	MaxDelay time.Duration
	// MaxWait is the longest wait GitHub may ask for that the client honours;
	// when GitHub asks for more, the request fails at once with an error
	// matching ErrRateLimited (default 15m). A context deadline that comes
	// sooner than the wait has the same effect.
	MaxWait time.Duration
}

// DefaultRetryPolicy is what zero RetryPolicy fields take.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, BaseDelay: time.Second, MaxDelay: 30 * time.Second, MaxWait: 15 * time.Minute}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultRetryPolicy.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultRetryPolicy.MaxWait
	}
	return p
}

// backoff is the wait after the given failed try (1 for the first):
// BaseDelay doubled per try, capped at MaxDelay, minus up to half of it at
// random (jitter spreads out clients that failed together).
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.MaxDelay
	if attempt < 32 {
		if b := p.BaseDelay << (attempt - 1); b > 0 && b < d {
			d = b
		}
	}
	return d - rand.N(d/2+1)
}

// ErrRateLimited is matched (errors.Is) by errors returned when GitHub's
// rate limits stopped a request for longer than the client would wait.
var ErrRateLimited = errors.New("github rate limit")

// RateLimitedError reports a request GitHub's rate limits stopped. It
// matches ErrRateLimited.
type RateLimitedError struct {
	Installation int64
	Request      string // "POST /repos/acme/app/check-runs"
	// Secondary is true for a secondary rate limit (too many requests, or
	// writes, in a short time), false when the hourly quota is used up.
	Secondary bool
	// RetryAt is when GitHub said requests may resume; zero when it did not say.
	RetryAt  time.Time
	Attempts int
	// Reason says why the client stopped waiting.
	Reason string
}

func (e *RateLimitedError) Error() string {
	kind := "its primary rate limit (the hourly request quota is used up)"
	if e.Secondary {
		kind = "GitHub's secondary rate limit (too many requests or writes in a short time)"
	}
	msg := fmt.Sprintf("installation %d hit %s on %s", e.Installation, kind, e.Request)
	if !e.RetryAt.IsZero() {
		msg += fmt.Sprintf("; GitHub asks to wait until %s (%s from now)",
			e.RetryAt.UTC().Format(time.RFC3339), time.Until(e.RetryAt).Round(time.Second))
	}
	return fmt.Sprintf("%s; gave up after %d attempt(s): %s", msg, e.Attempts, e.Reason)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

type callLabelKey struct{}

// WithCallLabel labels the GitHub API calls made with ctx, e.g.
// "execution/42": App.Calls counts calls by label. Unlabelled calls count
// under "".
func WithCallLabel(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, callLabelKey{}, label)
}

func callLabel(ctx context.Context) string {
	label, _ := ctx.Value(callLabelKey{}).(string)
	return label
}

// Calls returns how many HTTP requests the App sent to GitHub, by the label
// of their context (WithCallLabel). Every request sent counts: retries,
// installation-token requests and App (JWT) requests included, as each one
// counts against GitHub's rate limits.
func (a *App) Calls() map[string]int {
	a.callsMu.Lock()
	defer a.callsMu.Unlock()
	out := make(map[string]int, len(a.calls))
	for k, v := range a.calls {
		out[k] = v
	}
	return out
}

// countingTransport counts each request it sends under its context's label.
type countingTransport struct {
	app  *App
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.app.callsMu.Lock()
	c.app.calls[callLabel(req.Context())]++
	c.app.callsMu.Unlock()
	return c.next.RoundTrip(req)
}

// apiTransport carries an installation's API requests. It serialises the
// installation's writes (GitHub asks integrators not to send writes
// concurrently), waits as GitHub's rate limits ask, and retries 5xx answers,
// rate limits and network failures with exponential backoff, within
// RetryPolicy and the request's context. A request that may have reached
// GitHub is retried after a network error only if its method is idempotent:
// a POST or PATCH is never sent twice unless GitHub answered the first.
type apiTransport struct {
	installation int64
	tokens       *tokens           // gives the token of a request's scope (cached, refreshed)
	next         http.RoundTripper // the App's base transport
	policy       RetryPolicy
	writes       chan struct{} // capacity 1: the installation's write lock
}

func newAPITransport(installation int64, tokens *tokens, next http.RoundTripper, policy RetryPolicy) *apiTransport {
	return &apiTransport{installation: installation, tokens: tokens, next: next,
		policy: policy.withDefaults(), writes: make(chan struct{}, 1)}
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// idempotent methods may be sent again whatever happened to the first try.
// PATCH is not: a check-run update appends its annotations each time.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if _, ok := scopeOf(ctx); !ok {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errNoScope
	}
	getBody, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	if !isWrite(req.Method) {
		return t.send(ctx, req, getBody)
	}
	select {
	case t.writes <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	unlock := sync.OnceFunc(func() { <-t.writes })
	resp, err := t.send(ctx, req, getBody)
	if err != nil || resp.Body == nil {
		unlock()
		return resp, err
	}
	// The write lasts until its answer has been read.
	resp.Body = &unlockOnClose{ReadCloser: resp.Body, unlock: unlock}
	return resp, nil
}

// replayableBody returns a function giving a fresh copy of req's body for
// each try (nil when there is no body), and closes req.Body.
func replayableBody(req *http.Request) (func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	if req.GetBody != nil {
		return req.GetBody, nil
	}
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, nil
}

type unlockOnClose struct {
	io.ReadCloser
	unlock func()
}

func (u *unlockOnClose) Read(p []byte) (int, error) {
	n, err := u.ReadCloser.Read(p)
	if err != nil {
		u.unlock()
	}
	return n, err
}

func (u *unlockOnClose) Close() error {
	err := u.ReadCloser.Close()
	u.unlock()
	return err
}

// verdict is what to do after one try.
type verdict struct {
	retry     bool
	wait      time.Duration
	asked     bool      // the wait is GitHub's (Retry-After, reset), not a backoff
	rateLimit bool      // GitHub's rate limit answered
	secondary bool      // ... its secondary one
	retryAt   time.Time // when GitHub said to resume, if it did
}

func (t *apiTransport) send(ctx context.Context, req *http.Request, getBody func() (io.ReadCloser, error)) (*http.Response, error) {
	p := t.policy
	for attempt := 1; ; attempt++ {
		resp, sent, err := t.try(ctx, req, getBody)
		var v verdict
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, err
		case err != nil:
			v = t.judgeError(err, sent, req.Method, attempt)
		default:
			v = t.judgeStatus(resp, attempt)
		}
		if !v.retry {
			return resp, err
		}
		reason := ""
		switch {
		case attempt >= p.MaxAttempts:
			reason = fmt.Sprintf("at most %d attempts", p.MaxAttempts)
		case v.asked && v.wait > p.MaxWait:
			reason = fmt.Sprintf("the wait is longer than the %s the client waits at most", p.MaxWait)
		case pastDeadline(ctx, v.wait):
			reason = "the request's deadline comes sooner"
		}
		if reason != "" {
			if v.rateLimit {
				drain(resp)
				return nil, &RateLimitedError{Installation: t.installation, Request: req.Method + " " + req.URL.Path,
					Secondary: v.secondary, RetryAt: v.retryAt, Attempts: attempt, Reason: reason}
			}
			return resp, err // the last answer or error, as it is
		}
		drain(resp)
		if err := sleep(ctx, v.wait); err != nil {
			return nil, err
		}
	}
}

// try sends req once, with the token of its context's scope. sent is false
// when the request surely did not reach GitHub: no installation token, a
// failed dial, or nothing written.
func (t *apiTransport) try(ctx context.Context, req *http.Request, getBody func() (io.ReadCloser, error)) (resp *http.Response, sent bool, err error) {
	// Get the token first, as ghinstallation.Transport.RoundTrip would: an
	// error here means the request was not sent.
	s, _ := scopeOf(ctx)
	token, err := t.tokens.token(ctx, s)
	if err != nil {
		return nil, false, err
	}
	var gotConn, wrote atomic.Bool
	actx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { gotConn.Store(true) },
		WroteHeaders: func() { wrote.Store(true) },
	})
	areq := req.Clone(actx)
	areq.Header.Set("Authorization", "token "+token)
	if areq.Header.Get("Accept") == "" {
		areq.Header.Set("Accept", "application/vnd.github.v3+json")
	}
	if getBody != nil {
		if areq.Body, err = getBody(); err != nil {
			return nil, false, fmt.Errorf("reading the request body: %w", err)
		}
	}
	resp, err = t.next.RoundTrip(areq)
	if err != nil {
		notSent := isDialError(err) || (gotConn.Load() && !wrote.Load())
		return nil, !notSent, err
	}
	return resp, true, nil
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (t *apiTransport) judgeError(err error, sent bool, method string, attempt int) verdict {
	var he *ghinstallation.HTTPError
	if errors.As(err, &he) {
		// The token request failed, the request itself was not sent.
		if he.Response == nil {
			if he.RootCause == nil {
				return verdict{}
			}
			return verdict{retry: true, wait: t.policy.backoff(attempt)}
		}
		return t.judgeStatus(he.Response, attempt)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return verdict{}
	}
	if sent && !idempotent(method) {
		return verdict{} // GitHub may have done it: never do it twice
	}
	return verdict{retry: true, wait: t.policy.backoff(attempt)}
}

// judgeStatus decides on GitHub's answer: 5xx (but 501) and rate limits
// are tried again.
func (t *apiTransport) judgeStatus(resp *http.Response, attempt int) verdict {
	switch code := resp.StatusCode; {
	case code == http.StatusForbidden || code == http.StatusTooManyRequests:
		primary := resp.Header.Get("X-RateLimit-Remaining") == "0"
		if !primary && !isSecondaryRateLimit(resp) {
			return verdict{} // a plain 403: no permission
		}
		v := verdict{retry: true, rateLimit: true, secondary: !primary}
		if d, ok := retryAfter(resp.Header); ok {
			v.wait, v.asked, v.retryAt = d, true, time.Now().Add(d)
		} else if reset, ok := rateLimitReset(resp.Header); ok && primary {
			v.retryAt = reset
			v.wait, v.asked = max(time.Until(reset), 0), true
		} else {
			v.wait = t.policy.backoff(attempt)
		}
		return v
	case code >= 500 && code != http.StatusNotImplemented:
		if d, ok := retryAfter(resp.Header); ok {
			return verdict{retry: true, wait: d, asked: true}
		}
		return verdict{retry: true, wait: t.policy.backoff(attempt)}
	}
	return verdict{}
}

// isSecondaryRateLimit recognises a 403/429 from GitHub's secondary rate
// limit: a Retry-After header, a 429, or GitHub's message. It reads the body
// and puts it back.
func isSecondaryRateLimit(resp *http.Response) bool {
	if resp.StatusCode == http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "" {
		return true
	}
	if resp.Body == nil {
		return false
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), rest), rest}
	if err != nil {
		return false
	}
	var body struct {
		Message          string `json:"message"`
		DocumentationURL string `json:"documentation_url"`
	}
	_ = json.Unmarshal(data, &body)
	msg := strings.ToLower(body.Message)
	return strings.Contains(msg, "secondary rate limit") || strings.Contains(msg, "abuse detection") ||
		strings.HasSuffix(body.DocumentationURL, "secondary-rate-limits") || strings.HasSuffix(body.DocumentationURL, "#abuse-rate-limits")
}

// retryAfter reads Retry-After: seconds, or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0), true
	}
	return 0, false
}

// rateLimitReset reads X-RateLimit-Reset (epoch seconds).
func rateLimitReset(h http.Header) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

func pastDeadline(ctx context.Context, wait time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && time.Now().Add(wait).After(deadline)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain reads a little of an answer not handed on and closes it, so its
// connection can be reused.
func drain(resp *http.Response) {
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}
