package githubtest

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitHub's answer to a request over a secondary rate limit: 403 (sometimes
// 429) with this message and a documentation_url ending in
// "secondary-rate-limits", which is what go-github recognises.
const (
	msgSecondaryRateLimit = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
		"If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000."
	docSecondaryRateLimit = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

// RateLimitNext makes the next n requests whose path starts with pathPrefix
// hit a secondary rate limit the way GitHub answers it: 403 with GitHub's
// message and documentation_url, and a Retry-After header of retryAfter in
// whole seconds (rounded up; no header when retryAfter <= 0, which GitHub
// also does at times). The primary rate-limit headers stay as usual
// (remaining above 0). Like FailNext, it is answered before authentication
// and shares FailNext's queue: the first matching fault in order of
// registration answers.
func (s *Server) RateLimitNext(pathPrefix string, n int, retryAfter time.Duration) {
	h := http.Header{}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(retryAfter.Seconds())), 10))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{prefix: pathPrefix, left: n, status: http.StatusForbidden, header: h,
		message: msgSecondaryRateLimit, docURL: docSecondaryRateLimit})
}

type slow struct {
	prefix string
	left   int
	delay  time.Duration
}

// SlowNext makes the next n requests whose path starts with pathPrefix wait
// delay before the stand-in looks at them (then they are answered as usual,
// faults included). A client that gives up meanwhile is recorded with status
// 0, as with Hold.
func (s *Server) SlowNext(pathPrefix string, n int, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slows = append(s.slows, &slow{prefix: pathPrefix, left: n, delay: delay})
}

// waitSlow delays r when a SlowNext matches it; false means the client or
// the server went away meanwhile.
func (s *Server) waitSlow(r *http.Request) bool {
	var delay time.Duration
	s.mu.Lock()
	for i, sl := range s.slows {
		if strings.HasPrefix(r.URL.Path, sl.prefix) {
			delay = sl.delay
			sl.left--
			if sl.left <= 0 {
				s.slows = slices.Delete(s.slows, i, i+1)
			}
			break
		}
	}
	s.mu.Unlock()
	if delay <= 0 {
		return true
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// isWrite reports whether method changes state on GitHub.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// startWrite counts r among the write requests of the installation whose
// token it carries (installation 0 when it carries none the stand-in
// issued, e.g. App JWT requests) and returns the function that stops
// counting it; calling that more than once is fine.
func (s *Server) startWrite(r *http.Request) (done func()) {
	if !isWrite(r.Method) {
		return func() {}
	}
	_, value := credentials(r)
	s.mu.Lock()
	var inst int64
	if tok := s.tokens[value]; tok != nil {
		inst = tok.installationID
	}
	s.writing[inst]++
	s.maxWriting[inst] = max(s.maxWriting[inst], s.writing[inst])
	s.mu.Unlock()
	finished := false
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !finished {
			finished = true
			s.writing[inst]--
		}
	}
}

// MaxConcurrentWrites returns the highest number of POST, PATCH, PUT and
// DELETE requests carrying a token of installationID that the stand-in was
// serving at the same moment (from arrival, holds and SlowNext delays
// included, until just before the answer is written). GitHub asks
// integrators not to send concurrent writes; a client that serialises them
// keeps this at 1.
func (s *Server) MaxConcurrentWrites(installationID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxWriting[installationID]
}

type hold struct {
	prefix   string
	released chan struct{}
}

type fault struct {
	prefix  string
	left    int
	status  int
	header  http.Header
	message string // GitHub's message for this fault; empty means the default
	docURL  string // documentation_url; empty means https://docs.github.com/rest
}

// Hold makes requests whose path starts with pathPrefix block until release
// is called, the request's context ends, or the server closes. Requests that
// arrive after release pass. release may be called more than once.
func (s *Server) Hold(pathPrefix string) (release func()) {
	h := &hold{prefix: pathPrefix, released: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.holds = slices.DeleteFunc(s.holds, func(x *hold) bool { return x == h })
			s.mu.Unlock()
			close(h.released)
		})
	}
}

// WaitHeld blocks until at least n requests whose path starts with pathPrefix
// are blocked in a Hold, or ctx ends.
func (s *Server) WaitHeld(ctx context.Context, pathPrefix string, n int) error {
	for {
		s.mu.Lock()
		count := 0
		for _, p := range s.held {
			if strings.HasPrefix(p, pathPrefix) {
				count++
			}
		}
		changed := s.heldChanged
		s.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("githubtest: %d of %d requests held under %s: %w", count, n, pathPrefix, ctx.Err())
		}
	}
}

// FailNext makes the next n requests whose path starts with pathPrefix fail
// with status, the given headers and a GitHub-style JSON error body. Faults
// are answered before authentication and are not schema-checked. With
// header X-RateLimit-Remaining: 0 the message is GitHub's rate-limit one.
func (s *Server) FailNext(pathPrefix string, n int, status int, headers http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := http.Header{}
	for k, v := range headers {
		h[http.CanonicalHeaderKey(k)] = slices.Clone(v)
	}
	s.faults = append(s.faults, &fault{prefix: pathPrefix, left: n, status: status, header: h})
}

// waitHolds blocks r while a matching hold exists; false means give up.
func (s *Server) waitHolds(r *http.Request) bool {
	s.mu.Lock()
	var hs []*hold
	for _, h := range s.holds {
		if strings.HasPrefix(r.URL.Path, h.prefix) {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		s.mu.Unlock()
		return true
	}
	s.setHeld(r, true)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.setHeld(r, false)
		s.mu.Unlock()
	}()
	for _, h := range hs {
		select {
		case <-h.released:
		case <-r.Context().Done():
			return false
		case <-s.closing:
			return false
		}
	}
	return true
}

func (s *Server) setHeld(r *http.Request, on bool) {
	if on {
		s.held[r] = r.URL.Path
	} else {
		delete(s.held, r)
	}
	close(s.heldChanged)
	s.heldChanged = make(chan struct{})
}

func (s *Server) takeFault(path string) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if strings.HasPrefix(path, f.prefix) {
			f.left--
			if f.left <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return f
		}
	}
	return nil
}
