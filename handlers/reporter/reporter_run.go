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
// lease, and after a program's report ends if a look found it busy. Each
// look starts a report of every program with changes that is not being
// reported already: a program is reported by one goroutine at a time, its
// executions in order, and a change that comes while it is reported is
// picked up by a look after it ends. A report that fails is tried again
// after retryDelay; an execution a push queued and the engine has not
// looked at yet is held back (awaitEngineFor). Run returns once the
// reports it started have ended.
func (r *Reporter) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 15 * time.Second
	}
	coalesce := r.Coalesce
	if coalesce <= 0 {
		coalesce = 10 * time.Millisecond
	}
	l := &runLoop{r: r, busy: map[int64]bool{}, missed: map[int64]bool{}, parked: map[int64]time.Time{}, done: make(chan programDone),
		retry: time.NewTimer(time.Hour)}
	l.retry.Stop()
	defer l.retry.Stop()
	defer l.wg.Wait()
	safety := time.NewTicker(interval)
	defer safety.Stop()
	renew := time.NewTicker(r.leaseTTL() / 3)
	defer renew.Stop()

	cause := PassCause("")
	if l.lease(ctx) {
		cause = PassLeaseTaken
	}
	for {
		if cause != "" && l.held {
			l.look(ctx, cause)
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
				l.retryAt(l.parked[d.program])
			}
			if !d.due.IsZero() {
				l.retryAt(d.due)
			}
			if d.err == nil && (l.missed[d.program] || l.more) {
				// A look found changes of it while it was being reported,
				// or could not read every change at once.
				cause = PassFollowUp
			}
			delete(l.missed, d.program)
		case <-l.retry.C:
			l.retryOn = time.Time{}
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
	missed map[int64]bool      // busy programs a look found changes of
	more   bool                // the last look read scanLimit executions: there may be more
	parked map[int64]time.Time // programs whose report failed: not before then
	done   chan programDone
	wg     sync.WaitGroup
	// retry fires a follow-up look at retryOn (zero: not armed).
	retry   *time.Timer
	retryOn time.Time
}

type programDone struct {
	program int64
	err     error
	due     time.Time // an execution held back is to be reported then
}

// retryAt arms a follow-up look at t, unless one comes before.
func (l *runLoop) retryAt(t time.Time) {
	if !l.retryOn.IsZero() && !t.Before(l.retryOn) {
		return
	}
	l.retryOn = t
	l.retry.Reset(time.Until(t))
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
// each program that is neither being reported nor parked (a follow-up look
// is armed for the earliest parked one).
func (l *runLoop) look(ctx context.Context, cause PassCause) {
	if l.r.OnPass != nil {
		l.r.OnPass(cause)
	}
	order, byProgram, err := l.r.pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.r.Logger.WarnContext(ctx, "reading what to report to GitHub; will retry", bot.LogError, err)
		}
		l.retryAt(time.Now().Add(retryDelay))
		return
	}
	n := 0
	for _, execs := range byProgram {
		n += len(execs)
	}
	l.more = n >= scanLimit
	now := time.Now()
	for _, id := range order {
		if l.busy[id] {
			l.missed[id] = true
			continue
		}
		if due, ok := l.parked[id]; ok && now.Before(due) {
			l.retryAt(due)
			continue
		}
		delete(l.parked, id)
		l.busy[id] = true
		execs := byProgram[id]
		l.wg.Go(func() {
			due, err := l.r.reportProgram(ctx, execs, true)
			select {
			case l.done <- programDone{program: id, err: err, due: due}:
			case <-ctx.Done():
			}
		})
	}
}
