package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// acquire runs AcquireLease in its own Update.
func acquire(t *testing.T, s bot.Store, name, holder string, now time.Time, ttl time.Duration) bool {
	t.Helper()
	var held bool
	update(t, s, func(tx bot.Tx) (err error) {
		held, err = tx.AcquireLease(t.Context(), name, holder, now, ttl)
		return err
	})
	return held
}

// testLeases checks who gets a lease: the first to ask, then only its
// holder until it expires, then anyone; a holder renews it.
func testLeases(t *testing.T, s bot.Store) {
	const ttl = 10 * time.Second
	steps := []struct {
		step   string
		name   string
		holder string
		now    time.Time
		want   bool
	}{
		{"first acquisition", "reporter", "a", t0, true},
		{"another holder before expiry", "reporter", "b", t0.Add(time.Second), false},
		{"another holder just before expiry", "reporter", "b", t0.Add(ttl - time.Microsecond), false},
		{"another lease is apart", "janitor", "b", t0.Add(time.Second), true},
		{"the holder renews", "reporter", "a", t0.Add(5 * time.Second), true},
		{"another holder at the old expiry", "reporter", "b", t0.Add(ttl), false},
		{"another holder before the renewed expiry", "reporter", "b", t0.Add(15*time.Second - time.Microsecond), false},
		{"another holder at the renewed expiry", "reporter", "b", t0.Add(15 * time.Second), true},
		{"the old holder is refused", "reporter", "a", t0.Add(16 * time.Second), false},
		{"the new holder renews", "reporter", "b", t0.Add(20 * time.Second), true},
		{"the old holder after a long time", "reporter", "a", t0.Add(time.Hour), true},
		{"a time in another zone", "reporter", "b", t0.Add(time.Hour + time.Second).In(cet), false},
	}
	for _, st := range steps {
		if got := acquire(t, s, st.name, st.holder, st.now, ttl); got != st.want {
			t.Errorf("%s: AcquireLease(%s, %s, t0+%s) = %v, want %v", st.step, st.name, st.holder, st.now.Sub(t0), got, st.want)
		}
	}

	// A holder gives a lease back by renewing it for a nanosecond
	// (bot.GiveBack): the next to ask gets it at once, not a ttl later.
	if !acquire(t, s, "handover", "a", t0, ttl) || !acquire(t, s, "handover", "a", t0.Add(time.Second), time.Nanosecond) {
		t.Fatalf("handover: the holder could not take and renew its lease")
	}
	if !acquire(t, s, "handover", "b", t0.Add(time.Second+time.Microsecond), ttl) {
		t.Errorf("handover: a lease renewed for a nanosecond is still held a microsecond later")
	}

	// A rolled-back acquisition leaves no lease behind.
	errRollback := errors.New("roll back")
	err := s.Update(t.Context(), func(tx bot.Tx) error {
		if _, err := tx.AcquireLease(t.Context(), "rolled-back", "x", t0, ttl); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	if !acquire(t, s, "rolled-back", "y", t0, ttl) {
		t.Errorf("a lease acquired in a rolled-back transaction is held")
	}

	for _, bad := range []struct {
		step, name, holder string
		now                time.Time
		ttl                time.Duration
	}{
		{"empty name", "", "a", t0, ttl},
		{"empty holder", "reporter", "", t0, ttl},
		{"zero time", "reporter", "a", time.Time{}, ttl},
		{"zero ttl", "reporter", "a", t0, 0},
	} {
		err := s.Update(t.Context(), func(tx bot.Tx) error {
			_, err := tx.AcquireLease(t.Context(), bad.name, bad.holder, bad.now, bad.ttl)
			return err
		})
		if err == nil {
			t.Errorf("%s: AcquireLease succeeded, want an error", bad.step)
		}
	}
}

// testConcurrentLeases races 8 holders for one lease, each in its own
// Update: exactly one wins.
func testConcurrentLeases(t *testing.T, s bot.Store) {
	const n = 8
	var (
		wg   sync.WaitGroup
		won  [n]bool
		errs [n]error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(t.Context(), func(tx bot.Tx) (err error) {
				won[i], err = tx.AcquireLease(t.Context(), "reporter", string(rune('a'+i)), t0, 10*time.Second)
				return err
			})
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("holder %c: %v", 'a'+i, errs[i])
		}
		if won[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d holders acquired the lease, want exactly 1 (won: %v)", winners, n, won)
	}
}
