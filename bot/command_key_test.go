package bot_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

// A command run with a command key takes effect once: the same key again
// returns ErrAlreadyDone and changes nothing; a refused command records no
// key, so its key stays usable.
func TestCommandKey(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	store := openTestStore(t, clock)
	src := newFakeSource()
	src.set("acme/app", "c0ffee0000000000000000000000000000000000", nil) // no file: no policy, no pipelines
	eng := &bot.Engine{Store: store, Clock: clock, Jobs: &jobQueue{}, Source: src, Policy: src, ParseConfig: parseRepoConfig,
		Logger: slog.New(slog.DiscardHandler), PublicURL: "https://stagehand.test"}
	var prog bot.Program
	if err := store.Update(ctx, func(tx bot.Tx) (err error) {
		prog, err = tx.EnsureProgram(ctx, 1, bot.Repository{Owner: "acme", Name: "app"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	vars := func() map[string]string {
		t.Helper()
		v, err := eng.Variables(ctx, prog.ID, bot.Stage)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Refused inside its transaction: nothing waits for approval.
	k1 := bot.Request{Actor: "alice", Key: "delivery-1/command-1", Source: bot.FromStagehand}
	var re *bot.RuleError
	if _, err := eng.Approve(ctx, k1, prog.ID, 0); !errors.As(err, &re) {
		t.Fatalf("Approve with nothing waiting = %v, want a RuleError", err)
	}
	// The refusal recorded no key: the same key carries a command out.
	if _, err := eng.SetVariable(ctx, k1, prog.ID, bot.Stage, "K", "first"); err != nil {
		t.Fatalf("SetVariable with the refused command's key: %v", err)
	}
	if got := vars()["K"]; got != "first" {
		t.Fatalf("K = %q, want first", got)
	}
	// The same key again: already done, nothing changes.
	if _, err := eng.SetVariable(ctx, k1, prog.ID, bot.Stage, "K", "second"); !errors.Is(err, bot.ErrAlreadyDone) {
		t.Errorf("SetVariable with a used key = %v, want ErrAlreadyDone", err)
	}
	if got := vars()["K"]; got != "first" {
		t.Errorf("K = %q after the repeated key, want first (unchanged)", got)
	}
	// Another key, or no key, is a new command.
	if _, err := eng.SetVariable(ctx, bot.Request{Actor: "alice", Key: "delivery-1/command-2", Source: bot.FromStagehand}, prog.ID, bot.Stage, "K", "third"); err != nil {
		t.Errorf("SetVariable with a new key: %v", err)
	}
	if _, err := eng.SetVariable(ctx, bot.Internal("alice"), prog.ID, bot.Stage, "K", "fourth"); err != nil {
		t.Errorf("SetVariable without a key: %v", err)
	}
	if got := vars()["K"]; got != "fourth" {
		t.Errorf("K = %q, want fourth", got)
	}
}
