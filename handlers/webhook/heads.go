package webhook

import (
	"context"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// Reading a branch's head costs a git ls-remote (processes, a token, a
// round trip to GitHub), and a push to a program's default branch needs one
// (latestPolicy), as does every push to another branch (the default
// branch's policy). In a burst of pushes most of them would read the same
// heads again. A read is valid for any delivery received before the read
// started: GitHub sends a push's delivery after the push, so a head read
// started after the delivery arrived shows the branch as it was after that
// push (or later), which is all latestPolicy and Policy ask. headSince shares
// reads on that condition and only on it; a delivery received after the
// last read started makes a new read.
//
// The received time is the intake's clock (router.MetaReceivedAt), the read's
// this process's: with several replicas their clocks must agree to well
// within the time GitHub takes to deliver a push (NTP does).

// headKey names a branch of a program in the shared reads.
func headKey(prog bot.Program, branch string) string {
	return prog.FullName() + ":" + branch
}

// headRead is a finished read: the head, and when its read started.
type headRead struct {
	sha     string
	started time.Time
}

// headCall is a read in flight; done is closed when sha and err are set.
type headCall struct {
	started time.Time
	done    chan struct{}
	sha     string
	err     error
}

// headSince returns the commit branch of prog points to, as read by a read
// that started after since: the last finished one or one in flight if it
// did, else a new one. A zero since means now: always a new read.
func (p *Policies) headSince(ctx context.Context, prog bot.Program, branch string, since time.Time) (string, error) {
	if since.IsZero() {
		since = time.Now()
	}
	key := headKey(prog, branch)
	p.mu.Lock()
	if r, ok := p.heads[key]; ok && r.started.After(since) {
		p.mu.Unlock()
		return r.sha, nil
	}
	if c, ok := p.reading[key]; ok && c.started.After(since) {
		p.mu.Unlock()
		select {
		case <-c.done:
			return c.sha, c.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	// A read of our own starts after the delivery was received whatever
	// the clocks say: it is being handled.
	c := &headCall{started: time.Now(), done: make(chan struct{})}
	if p.reading == nil {
		p.reading = map[string]*headCall{}
	}
	p.reading[key] = c
	p.mu.Unlock()

	c.sha, c.err = p.Heads.HeadCommit(ctx, prog, branch)

	p.mu.Lock()
	if p.reading[key] == c {
		delete(p.reading, key)
	}
	if c.err == nil {
		if p.heads == nil || len(p.heads) >= maxCachedPolicies {
			p.heads = map[string]headRead{}
		}
		if r, ok := p.heads[key]; !ok || c.started.After(r.started) {
			p.heads[key] = headRead{sha: c.sha, started: c.started}
		}
	}
	p.mu.Unlock()
	close(c.done)
	return c.sha, c.err
}

// headLater starts headSince and returns a function that waits for its
// answer, so the read overlaps the caller's other work. The read ends with
// ctx.
func (p *Policies) headLater(ctx context.Context, prog bot.Program, branch string, since time.Time) func() (string, error) {
	type result struct {
		sha string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		sha, err := p.headSince(ctx, prog, branch, since)
		ch <- result{sha, err}
	}()
	return sync.OnceValues(func() (string, error) {
		r := <-ch
		return r.sha, r.err
	})
}
