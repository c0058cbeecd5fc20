package router

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
)

// fakeForwarder records what the inbox forwards; while fail is set it
// refuses everything, and while hold is locked PublishBatch waits.
type fakeForwarder struct {
	mu    sync.Mutex
	got   []received
	fail  error
	calls int
	hold  sync.Mutex
}

func (f *fakeForwarder) PublishBatch(topic string, msgs []*message.Message) error {
	f.hold.Lock()
	defer f.hold.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	for _, m := range msgs {
		if topic != TopicWebhooks {
			return fmt.Errorf("topic %s", topic)
		}
		f.got = append(f.got, asReceived(m))
	}
	return nil
}

func (f *fakeForwarder) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeForwarder) uuids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.got {
		out = append(out, r.UUID)
	}
	return out
}

func openTestInbox(t *testing.T, path string, fwd Forwarder, opts InboxOptions) *Inbox {
	t.Helper()
	opts.Path = path
	ib, err := OpenInbox(t.Context(), opts, fwd)
	if err != nil {
		t.Fatalf("OpenInbox: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			if err := ib.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return ib
}

// inboxRows counts the rows of the inbox file at path, read with a
// connection of its own.
func inboxRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM inbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Deliveries that arrive while a commit is under way share the next one:
// the first commit is held until 63 more deliveries wait, and those 63 go
// to disk in one commit, not 63.
func TestInboxGroupCommit(t *testing.T) {
	const n = 64
	release := make(chan struct{})
	var started atomic.Bool
	var mu sync.Mutex
	var sizes []int
	opts := InboxOptions{beforeCommit: func(deliveries int) {
		mu.Lock()
		sizes = append(sizes, deliveries)
		mu.Unlock()
		if !started.Swap(true) {
			<-release
		}
	}}
	fwd := &fakeForwarder{}
	ib := openTestInbox(t, filepath.Join(t.TempDir(), "intake.db"), fwd, opts)
	errs := make(chan error, n)
	go func() { errs <- ib.Publish(TopicWebhooks, newDelivery("guid-0", "{}")) }()
	waitUntil(t, "the first commit to start", func() bool { return started.Load() })
	for i := 1; i < n; i++ {
		go func() { errs <- ib.Publish(TopicWebhooks, newDelivery(fmt.Sprintf("guid-%d", i), "{}")) }()
	}
	waitUntil(t, "the other deliveries to wait", func() bool { return len(ib.puts) == n-1 })
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, n - 1}, sizes[:min(2, len(sizes))]); diff != "" {
		t.Errorf("deliveries per commit (-want +got):\n%s", diff)
	}
	waitUntil(t, "every delivery to be forwarded", func() bool { return len(fwd.uuids()) == n })
}

// What was forwarded is deleted; what the broker refused stays, and is
// forwarded once the broker takes it, as it was stored.
func TestInboxForwardsThenDeletes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intake.db")
	fwd := &fakeForwarder{}
	fwd.setFail(errors.New("broker down"))
	ib := openTestInbox(t, path, fwd, InboxOptions{})
	msg := newDelivery("guid-a", `{"a":1}`)
	if err := ib.Publish(TopicWebhooks, msg); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a forward attempt", func() bool { fwd.mu.Lock(); defer fwd.mu.Unlock(); return fwd.calls > 0 })
	if got := inboxRows(t, path); got != 1 {
		t.Fatalf("inbox rows while the broker refuses = %d, want 1", got)
	}
	fwd.setFail(nil)
	waitUntil(t, "the retry to forward it", func() bool { return len(fwd.uuids()) == 1 })
	// The delete goes with the next commit, or on its own when idle.
	waitUntil(t, "the forwarded row to be deleted", func() bool { return inboxRows(t, path) == 0 })
	if diff := cmp.Diff([]received{asReceived(msg)}, fwd.got); diff != "" {
		t.Errorf("forwarded (-want +got):\n%s", diff)
	}
}

// A delivery the inbox accepted and had not forwarded when it stopped is
// forwarded by the next start, once, in the order of acceptance.
func TestInboxForwardsLeftoversAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intake.db")
	down := &fakeForwarder{}
	down.setFail(errors.New("broker down"))
	ib, err := OpenInbox(t.Context(), InboxOptions{Path: path}, down)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		guid := fmt.Sprintf("guid-%d", i)
		want = append(want, guid)
		if err := ib.Publish(TopicWebhooks, newDelivery(guid, "{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ib.Publish(TopicWebhooks, newDelivery("late", "{}")); err == nil {
		t.Errorf("Publish after Close succeeded")
	}
	up := &fakeForwarder{}
	openTestInbox(t, path, up, InboxOptions{})
	waitUntil(t, "the leftovers to be forwarded", func() bool { return len(up.uuids()) == len(want) })
	if diff := cmp.Diff(want, up.uuids()); diff != "" {
		t.Errorf("forwarded at start (-want +got):\n%s", diff)
	}
	waitUntil(t, "the inbox to be emptied", func() bool { return inboxRows(t, path) == 0 })
}

// Close answers every Publish that started before it: each returns, and
// each that returned nil is in the inbox file.
func TestInboxCloseAnswersEveryPublish(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intake.db")
	down := &fakeForwarder{}
	down.setFail(errors.New("broker down")) // keep every row
	ib, err := OpenInbox(t.Context(), InboxOptions{Path: path}, down)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	type result struct {
		guid string
		err  error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			guid := fmt.Sprintf("guid-%d", i)
			results <- result{guid, ib.Publish(TopicWebhooks, newDelivery(guid, "{}"))}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	var accepted []string
	for range n {
		r := <-results
		if r.err == nil {
			accepted = append(accepted, r.guid)
		}
	}
	up := &fakeForwarder{}
	openTestInbox(t, path, up, InboxOptions{})
	waitUntil(t, "the accepted deliveries to be forwarded", func() bool { return len(up.uuids()) >= len(accepted) })
	got := up.uuids()
	slices.Sort(got)
	slices.Sort(accepted)
	if diff := cmp.Diff(accepted, got); diff != "" {
		t.Errorf("forwarded after the restart (-accepted +forwarded):\n%s", diff)
	}
}

// While the broker takes nothing, the inbox holds at most MaxPending
// deliveries and then refuses, so that GitHub shows a failed delivery
// rather than the disk filling up.
func TestInboxRefusesBeyondMaxPending(t *testing.T) {
	down := &fakeForwarder{}
	down.setFail(errors.New("broker down"))
	ib := openTestInbox(t, filepath.Join(t.TempDir(), "intake.db"), down, InboxOptions{MaxPending: 3})
	for i := range 3 {
		if err := ib.Publish(TopicWebhooks, newDelivery(fmt.Sprintf("guid-%d", i), "{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := ib.Publish(TopicWebhooks, newDelivery("guid-3", "{}")); err == nil {
		t.Errorf("the fourth delivery was accepted beyond MaxPending 3")
	}
}

// Through the real embedded broker: deliveries go in atomic batches, and
// a second forward of the same deliveries (a restart before the inbox
// deleted them) leaves one copy of each in the stream.
func TestInboxForwardsToBrokerOnce(t *testing.T) {
	b := openBroker(t, BrokerOptions{DataDir: t.TempDir()})
	var msgs []*message.Message
	for i := range 20 {
		msgs = append(msgs, newDelivery(fmt.Sprintf("guid-%d", i), fmt.Sprintf(`{"n":%d}`, i)))
	}
	if err := b.PublishBatch(TopicWebhooks, msgs); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	waitStreamMsgs(t, b, TopicWebhooks, 20)
	// The same again, plus one new: the batch holds copies, so it is
	// refused and published one at a time, the copies dropped.
	again := append(slices.Clone(msgs[10:]), newDelivery("guid-new", "{}"))
	if err := b.PublishBatch(TopicWebhooks, again); err != nil {
		t.Fatalf("PublishBatch again: %v", err)
	}
	waitStreamMsgs(t, b, TopicWebhooks, 21)

	path := filepath.Join(t.TempDir(), "intake.db")
	ib := openTestInbox(t, path, b, InboxOptions{})
	if err := ib.Publish(TopicWebhooks, newDelivery("guid-inbox", `{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	waitStreamMsgs(t, b, TopicWebhooks, 22)
	waitUntil(t, "the inbox to be emptied", func() bool { return inboxRows(t, path) == 0 })
}

// Publish returns only after the commit that holds its delivery: while the
// commit is held it has not returned, and when it returns the delivery is
// in the file, read by another connection.
func TestInboxAnswersOnlyAfterCommit(t *testing.T) {
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	opts := InboxOptions{beforeCommit: func(deliveries int) {
		if deliveries == 0 {
			return
		}
		once.Do(func() { close(reached) })
		<-release
	}}
	path := filepath.Join(t.TempDir(), "intake.db")
	down := &fakeForwarder{}
	down.setFail(errors.New("broker down")) // keep the row
	ib := openTestInbox(t, path, down, opts)
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before the inbox closes, also when the test fails
	result := make(chan error, 1)
	go func() { result <- ib.Publish(TopicWebhooks, newDelivery("guid-a", "{}")) }()
	select {
	case <-reached:
	case err := <-result:
		t.Fatalf("Publish returned (%v) before its commit began", err)
	}
	select {
	case err := <-result:
		t.Fatalf("Publish returned (%v) while its commit was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	unhold()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if got := inboxRows(t, path); got != 1 {
		t.Errorf("after Publish returned the inbox file holds %d rows, want 1", got)
	}
}

// A delivery that arrives after the inbox was emptied is forwarded too.
// The inbox used to number rows with SQLite's plain rowid, which starts
// again at 1 in an empty table: the forwarder, which reads the rows after
// the last one it forwarded, never saw the second delivery of a quiet
// server (the playground's Promote Build click was lost this way).
func TestInboxForwardsAfterItWasEmptied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intake.db")
	fwd := &fakeForwarder{}
	ib := openTestInbox(t, path, fwd, InboxOptions{})
	for i := range 3 {
		guid := fmt.Sprintf("guid-%d", i)
		if err := ib.Publish(TopicWebhooks, newDelivery(guid, "{}")); err != nil {
			t.Fatalf("Publish %s: %v", guid, err)
		}
		waitUntil(t, guid+" to be forwarded", func() bool { return len(fwd.uuids()) == i+1 })
		// The writer deletes what was forwarded: wait for the table to be
		// empty, so that the next delivery lands in an empty table.
		waitUntil(t, "the inbox to be emptied", func() bool { return inboxRows(t, path) == 0 })
	}
	if diff := cmp.Diff([]string{"guid-0", "guid-1", "guid-2"}, fwd.uuids()); diff != "" {
		t.Errorf("forwarded (-want +got):\n%s", diff)
	}
}

// The writer hands each committed batch to the forwarder in memory: once
// the forwarder caught up (the read at start, perhaps one more if the
// first delivery raced it), it never reads the file while it keeps up.
func TestInboxHandsCommittedBatchesOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intake.db")
	fwd := &fakeForwarder{}
	ib := openTestInbox(t, path, fwd, InboxOptions{})
	var want []string
	var caughtUp int64
	for i := range 10 {
		guid := fmt.Sprintf("guid-%d", i)
		want = append(want, guid)
		if err := ib.Publish(TopicWebhooks, newDelivery(guid, "{}")); err != nil {
			t.Fatalf("Publish %s: %v", guid, err)
		}
		waitUntil(t, guid+" to be forwarded", func() bool { return len(fwd.uuids()) == i+1 })
		if i == 0 {
			// Let a read that found nothing more end.
			for prev := int64(-1); prev != ib.reads.Load(); time.Sleep(50 * time.Millisecond) {
				prev = ib.reads.Load()
			}
			caughtUp = ib.reads.Load()
		}
	}
	if diff := cmp.Diff(want, fwd.uuids()); diff != "" {
		t.Errorf("forwarded (-want +got):\n%s", diff)
	}
	if n := ib.reads.Load(); n != caughtUp {
		t.Errorf("the forwarder read the file %d times for the 9 deliveries after the first, want 0", n-caughtUp)
	}
}

// Batches that do not fit in memory while the broker is slow are not
// handed over; the forwarder finds them in the file, and forwards every
// delivery once, in order, whichever way it came.
func TestInboxForwardsWhatWasNotHandedOver(t *testing.T) {
	for _, tt := range []struct {
		name     string
		maxFresh int64
	}{
		{"none handed over", 1},
		{"some handed over", 3 * int64(len(`{"n":0}`))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "intake.db")
			fwd := &fakeForwarder{}
			ib := openTestInbox(t, path, fwd, InboxOptions{maxFreshBytes: tt.maxFresh})
			waitUntil(t, "the read at start", func() bool { return ib.reads.Load() == 1 })
			fwd.hold.Lock() // the broker is slow: the forwarder waits in PublishBatch
			var want []string
			for i := range 20 {
				guid := fmt.Sprintf("guid-%02d", i)
				want = append(want, guid)
				if err := ib.Publish(TopicWebhooks, newDelivery(guid, fmt.Sprintf(`{"n":%d}`, i%10))); err != nil {
					t.Fatalf("Publish %s: %v", guid, err)
				}
			}
			fwd.hold.Unlock()
			waitUntil(t, "every delivery to be forwarded", func() bool { return len(fwd.uuids()) >= len(want) })
			time.Sleep(100 * time.Millisecond) // a copy would show by now
			if diff := cmp.Diff(want, fwd.uuids()); diff != "" {
				t.Errorf("forwarded (-want +got):\n%s", diff)
			}
			if ib.reads.Load() < 2 {
				t.Errorf("the forwarder read the file %d times: the batches not handed over must have been read from it", ib.reads.Load())
			}
			waitUntil(t, "the inbox to be emptied", func() bool { return inboxRows(t, path) == 0 })
		})
	}
}
