package reporter

import (
	"context"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// PassCause says why Run looked for unreported changes.
type PassCause string

const (
	// PassLeaseTaken: this reporter has just taken the lease (at start,
	// or from a replica that stopped): it looks at everything.
	PassLeaseTaken PassCause = "lease-taken"
	// PassWake: Wake said an execution changed.
	PassWake PassCause = "wake"
	// PassSafetyNet: the periodic pass, for wake-ups that were lost.
	PassSafetyNet PassCause = "safety-net"
	// PassFollowUp: a program's report ended (changes may have come
	// meanwhile), or a failed one is due again.
	PassFollowUp PassCause = "follow-up"
)

// retryDelay is how long a program whose report failed (GitHub down, say)
// waits before it is reported again, wake-ups or not.
const retryDelay = time.Second

// Run reports until ctx ends, on the replica holding the reporter lease
// (taken and renewed every LeaseTTL/3). It looks for executions with
// unreported changes when Wake says one changed (after Coalesce, so a
// burst is one look), every Interval (the safety net), when it takes the
// lease, and after a program's report ends. Each look starts a report of
// every program with changes that is not being reported already: a
// program is reported by one goroutine at a time, its executions in order,
// and a change that comes while it is reported is picked up by the look
// after it ends. Run returns once the reports it started have ended.
func (r *Reporter) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 15 * time.Second
	}
	coalesce := r.Coalesce
	if coalesce <= 0 {
		coalesce = 10 * time.Millisecond
	}
	l := &runLoop{r: r, busy: map[int64]bool{}, parked: map[int64]time.Time{}, done: make(chan programDone)}
	defer l.wg.Wait()
	safety := time.NewTicker(interval)
	defer safety.Stop()
	renew := time.NewTicker(r.leaseTTL() / 3)
	defer renew.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()

	cause := PassCause("")
	if l.lease(ctx) {
		cause = PassLeaseTaken
	}
	for {
		if cause != "" && l.held {
			if next, ok := l.look(ctx, cause); ok {
				retry.Reset(time.Until(next))
			}
		}
		cause = ""
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if l.lease(ctx) {
				cause = PassLeaseTaken
			}
		case <-safety.C:
			cause = PassSafetyNet
			if l.lease(ctx) {
				cause = PassLeaseTaken
			}
		case <-r.Wake:
			t := time.NewTimer(coalesce)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			select { // folded into this look: it reads what committed before it
			case <-r.Wake:
			default:
			}
			cause = PassWake
		case d := <-l.done:
			delete(l.busy, d.program)
			if d.err != nil {
				if ctx.Err() == nil {
					r.Logger.WarnContext(ctx, "reporting to GitHub; will retry", bot.LogError, d.err)
				}
				l.parked[d.program] = time.Now().Add(retryDelay)
			}
			cause = PassFollowUp
		case <-retry.C:
			cause = PassFollowUp
		}
	}
}

// runLoop is Run's state; only Run's goroutine touches it, but for done,
// which the report goroutines send on.
type runLoop struct {
	r      *Reporter
	held   bool
	busy   map[int64]bool      // programs being reported
	parked map[int64]time.Time // programs whose report failed: not before then
	done   chan programDone
	wg     sync.WaitGroup
}

type programDone struct {
	program int64
	err     error
}

// lease takes or renews the lease and reports whether this reporter has
// just taken it.
func (l *runLoop) lease(ctx context.Context) (taken bool) {
	held, err := l.r.acquireLease(ctx)
	if err != nil && ctx.Err() == nil {
		l.r.Logger.WarnContext(ctx, "the reporter lease; will retry", bot.LogError, err)
	}
	taken = held && !l.held
	if l.held && !held && err == nil {
		l.r.Logger.InfoContext(ctx, "another replica took the reporter lease", "holder", l.r.leaseHolder())
	}
	l.held = held
	return taken
}

// look reads the executions with unreported changes and starts a report of
// each program that is neither being reported nor parked. It returns the
// time the earliest parked program is due, if any is left parked.
func (l *runLoop) look(ctx context.Context, cause PassCause) (next time.Time, parked bool) {
	if l.r.OnPass != nil {
		l.r.OnPass(cause)
	}
	order, byProgram, err := l.r.pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.r.Logger.WarnContext(ctx, "reading what to report to GitHub; will retry", bot.LogError, err)
		}
		return time.Now().Add(retryDelay), true
	}
	now := time.Now()
	for _, id := range order {
		if l.busy[id] {
			continue
		}
		if due, ok := l.parked[id]; ok && now.Before(due) {
			if !parked || due.Before(next) {
				next, parked = due, true
			}
			continue
		}
		delete(l.parked, id)
		l.busy[id] = true
		execs := byProgram[id]
		l.wg.Go(func() {
			err := l.r.reportProgram(ctx, execs)
			select {
			case l.done <- programDone{program: id, err: err}:
			case <-ctx.Done():
			}
		})
	}
	return next, parked
}
