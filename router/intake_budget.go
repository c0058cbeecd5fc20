package router

import (
	"context"
	"sync"
	"time"
)

// byteBudget bounds the bytes that request bodies hold in memory together.
// A body reserves its bytes before it is read and gives them back once its
// delivery is stored or refused.
//
// It is deliberately not first-come-first-served: a small delivery that
// fits is let in even while a large one waits for room, so that a few large
// bodies (an attacker's, stalled) cannot queue every delivery behind them.
type byteBudget struct {
	mu   sync.Mutex
	free int64
	// freed is closed, and replaced, every time bytes are given back: the
	// requests waiting for room then look again.
	freed chan struct{}
	// waiting counts the reservations waiting for room (tests wait on it).
	waiting int
}

func newByteBudget(size int64) *byteBudget {
	return &byteBudget{free: size, freed: make(chan struct{})}
}

// reserve takes n bytes of the budget, waiting at most wait for them to be
// free. It reports false, having taken nothing, when they were not free in
// time or ctx ended first.
func (b *byteBudget) reserve(ctx context.Context, n int64, wait time.Duration) bool {
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if n <= b.free {
			b.free -= n
			b.mu.Unlock()
			return true
		}
		freed := b.freed
		first := timeout == nil
		if first {
			b.waiting++
		}
		b.mu.Unlock()
		if first {
			defer func() {
				b.mu.Lock()
				b.waiting--
				b.mu.Unlock()
			}()
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// release gives back n bytes taken by reserve.
func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
