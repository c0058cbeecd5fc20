package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// testLatestPolicy: a program has no latest policy until one is recorded;
// the next one replaces it; programs keep their own; an unknown program is
// not found.
func testLatestPolicy(t *testing.T, s bot.Store) {
	ctx := t.Context()
	p := newProgram(t, s, 1, "octo", "hello")
	other := newProgram(t, s, 1, "octo", "other")
	get := func(programID int64) bot.Policy {
		t.Helper()
		var pol bot.Policy
		view(t, s, func(tx bot.Tx) (err error) {
			pol, err = tx.LatestPolicy(ctx, programID)
			return err
		})
		return pol
	}
	set := func(programID int64, pol bot.Policy) {
		t.Helper()
		update(t, s, func(tx bot.Tx) error { return tx.SetLatestPolicy(ctx, programID, pol) })
	}
	if diff := cmp.Diff(bot.Policy{}, get(p.ID)); diff != "" {
		t.Errorf("LatestPolicy before any (-want +got):\n%s", diff)
	}
	first := bot.Policy{Branch: "main", Commit: "aaa", Raw: []byte("version: 1\n")}
	second := bot.Policy{Branch: "trunk", Commit: "bbb", Raw: []byte("version: 1\nenvironments: {}\n")}
	set(p.ID, first)
	set(other.ID, first)
	if diff := cmp.Diff(first, get(p.ID)); diff != "" {
		t.Errorf("LatestPolicy after the first (-want +got):\n%s", diff)
	}
	set(p.ID, second)
	if diff := cmp.Diff(second, get(p.ID)); diff != "" {
		t.Errorf("LatestPolicy after the second (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(first, get(other.ID)); diff != "" {
		t.Errorf("the other program's LatestPolicy (-want +got):\n%s", diff)
	}
	err := s.View(ctx, func(tx bot.Tx) error {
		_, err := tx.LatestPolicy(ctx, 9999)
		return err
	})
	if !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("LatestPolicy of an unknown program = %v, want ErrNotFound", err)
	}
	err = s.Update(ctx, func(tx bot.Tx) error { return tx.SetLatestPolicy(ctx, 9999, first) })
	if !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("SetLatestPolicy of an unknown program = %v, want ErrNotFound", err)
	}
}
