package webhook

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// fakeHeads answers HeadCommit with head, counting its calls; while gate is
// set, each call waits for it to be closed.
type fakeHeads struct {
	mu    sync.Mutex
	head  string
	err   error
	calls int
	gate  chan struct{}
}

func (f *fakeHeads) HeadCommit(ctx context.Context, prog bot.Program, branch string) (string, error) {
	f.mu.Lock()
	f.calls++
	head, err, gate := f.head, f.err, f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return head, err
}

func (f *fakeHeads) set(head string, err error) {
	f.mu.Lock()
	f.head, f.err = head, err
	f.mu.Unlock()
}

func (f *fakeHeads) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestHeadSinceSharesOnlyLaterReads: a branch head read is shared by the
// deliveries received before it started, never by one received after (the
// branch may have moved since, in the push that delivery announces); a
// zero received time always reads anew, and a failed read is not kept.
func TestHeadSinceSharesOnlyLaterReads(t *testing.T) {
	prog := bot.Program{Owner: "acme", Repo: "app", DefaultBranch: "main"}
	type ask struct {
		received string // "before" / "after" the first read started, or "zero"
		head     string // what GitHub says when asked
		err      error
	}
	type answer struct {
		Head  string
		Err   bool
		Calls int // HeadCommit calls so far
	}
	boom := errors.New("ls-remote failed")
	tests := []struct {
		name string
		asks []ask
		want []answer
	}{
		{
			name: "received before the read started: shared",
			asks: []ask{{received: "zero", head: "c1"}, {received: "before", head: "c2"}},
			want: []answer{{Head: "c1", Calls: 1}, {Head: "c1", Calls: 1}},
		},
		{
			name: "received after the read started: read again",
			asks: []ask{{received: "zero", head: "c1"}, {received: "after", head: "c2"}, {received: "before", head: "c3"}},
			want: []answer{{Head: "c1", Calls: 1}, {Head: "c2", Calls: 2}, {Head: "c2", Calls: 2}},
		},
		{
			name: "zero received: always read",
			asks: []ask{{received: "zero", head: "c1"}, {received: "zero", head: "c2"}},
			want: []answer{{Head: "c1", Calls: 1}, {Head: "c2", Calls: 2}},
		},
		{
			name: "a failed read is not kept",
			asks: []ask{{received: "zero", err: boom}, {received: "before", head: "c1"}, {received: "before", head: "c2"}},
			want: []answer{{Err: true, Calls: 1}, {Head: "c1", Calls: 2}, {Head: "c1", Calls: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			heads := &fakeHeads{}
			p := &Policies{Heads: heads}
			before := time.Now().Add(-time.Hour)
			var got []answer
			var after time.Time
			for _, a := range tt.asks {
				heads.set(a.head, a.err)
				var since time.Time
				switch a.received {
				case "before":
					since = before
				case "after":
					since = after
				}
				head, err := p.headSince(context.Background(), prog, prog.DefaultBranch, since)
				got = append(got, answer{Head: head, Err: err != nil, Calls: heads.count()})
				if after.IsZero() {
					after = time.Now() // the first read has started
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeadSinceJoinsARead: deliveries received before a read in flight
// started wait for it instead of starting their own; one received after it
// started reads for itself.
func TestHeadSinceJoinsARead(t *testing.T) {
	prog := bot.Program{Owner: "acme", Repo: "app", DefaultBranch: "main"}
	gate := make(chan struct{})
	heads := &fakeHeads{head: "c1", gate: gate}
	p := &Policies{Heads: heads}
	received := time.Now()
	time.Sleep(time.Millisecond) // the first read starts after received
	ctx := context.Background()
	first := make(chan string)
	go func() {
		head, _ := p.headSince(ctx, prog, prog.DefaultBranch, time.Time{})
		first <- head
	}()
	for heads.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	joined := make(chan string)
	go func() {
		head, _ := p.headSince(ctx, prog, prog.DefaultBranch, received)
		joined <- head
	}()
	// A delivery received after the read in flight started: its own read.
	later := time.Now()
	own := make(chan string)
	go func() {
		head, _ := p.headSince(ctx, prog, prog.DefaultBranch, later)
		own <- head
	}()
	for heads.count() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	got := []string{<-first, <-joined, <-own}
	if diff := cmp.Diff([]string{"c1", "c1", "c1"}, got); diff != "" {
		t.Errorf("heads (-want +got):\n%s", diff)
	}
	if n := heads.count(); n != 2 {
		t.Errorf("%d reads of the head, want 2 (the one received before the first read joined it)", n)
	}
}
