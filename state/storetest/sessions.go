package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testSessions checks dashboard sessions: stored and read back whole,
// replaced by ID (a refreshed token), deleted once or twice, and swept when
// they expire, with times in any zone meaning the same instant.
func testSessions(t *testing.T, s bot.Store) {
	ctx := t.Context()
	alice := bot.Session{ID: "a1", UserID: 101, Login: "alice", Tokens: []byte{0, 1, 2, 0xff}, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	bob := bot.Session{ID: "b2", UserID: 202, Login: "bob", Tokens: []byte("sealed"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour).In(cet)}
	update(t, s, func(tx bot.Tx) error {
		if err := tx.PutSession(ctx, alice); err != nil {
			return err
		}
		return tx.PutSession(ctx, bob)
	})
	read := func(id string) (bot.Session, error) {
		var got bot.Session
		err := s.View(ctx, func(tx bot.Tx) (err error) {
			got, err = tx.Session(ctx, id)
			return err
		})
		return got, err
	}
	bobUTC := bob
	bobUTC.ExpiresAt = bob.ExpiresAt.UTC()
	for _, want := range []bot.Session{alice, bobUTC} {
		got, err := read(want.ID)
		if err != nil {
			t.Fatalf("Session(%s): %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Session(%s) (-want +got):\n%s", want.ID, diff)
		}
	}

	// A refresh replaces the tokens of the same session.
	refreshed := alice
	refreshed.Tokens = []byte("new tokens")
	update(t, s, func(tx bot.Tx) error { return tx.PutSession(ctx, refreshed) })
	if got, err := read("a1"); err != nil || string(got.Tokens) != "new tokens" {
		t.Errorf("after PutSession again: %+v, %v; want the new tokens", got, err)
	}

	// Sweeping at bob's expiry removes bob only; a second sweep nothing.
	for i, want := range []int{1, 0} {
		var n int
		update(t, s, func(tx bot.Tx) (err error) {
			n, err = tx.DeleteExpiredSessions(ctx, t0.Add(time.Hour))
			return err
		})
		if n != want {
			t.Errorf("sweep %d: DeleteExpiredSessions = %d, want %d", i+1, n, want)
		}
	}
	if _, err := read("b2"); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Session(b2) after its expiry was swept: %v, want ErrNotFound", err)
	}

	// Signing out deletes; doing it twice is not an error.
	for range 2 {
		update(t, s, func(tx bot.Tx) error { return tx.DeleteSession(ctx, "a1") })
	}
	if _, err := read("a1"); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Session(a1) after DeleteSession: %v, want ErrNotFound", err)
	}

	// What cannot be a session is refused.
	for _, bad := range []bot.Session{
		{Login: "x", CreatedAt: t0, ExpiresAt: t0},
		{ID: "c", CreatedAt: t0, ExpiresAt: t0},
		{ID: "c", Login: "x", CreatedAt: t0},
	} {
		err := s.Update(ctx, func(tx bot.Tx) error { return tx.PutSession(ctx, bad) })
		if err == nil {
			t.Errorf("PutSession(%+v) = nil, want an error", bad)
		}
	}
}
