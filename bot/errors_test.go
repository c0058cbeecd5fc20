package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

func TestRefusalError(t *testing.T) {
	for _, tc := range []struct {
		r    *bot.Refusal
		want string
	}{
		{&bot.Refusal{Code: bot.RefusalWrongState, Message: "no execution is active"}, "no execution is active"},
		{&bot.Refusal{Code: bot.RefusalBlocked, Rule: "B", Message: "full-stack cannot start now"}, "full-stack cannot start now (rule B)"},
	} {
		if got := tc.r.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		wrapped := fmt.Errorf("handling a comment: %w", tc.r)
		if got := bot.Refused(wrapped); got != tc.r {
			t.Errorf("Refused(%v) = %v, want the refusal", wrapped, got)
		}
	}
	for _, err := range []error{nil, errors.New("database is locked"), fmt.Errorf("x: %w", bot.ErrNotFound)} {
		if got := bot.Refused(err); got != nil {
			t.Errorf("Refused(%v) = %v, want nil: a failure is not a refusal", err, got)
		}
	}
}

// Every refusal of a command carries the code that says what kind it is.
func TestRefusalCodes(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	store := openTestStore(t, clock)
	src := newFakeSource()
	src.set("acme/app", "c0ffee0000000000000000000000000000000000", pipelineYAML("", "approval: true"))
	eng := &bot.Engine{Store: store, Clock: clock, Jobs: &jobQueue{}, Source: src, Policy: src, ParseConfig: parseRepoConfig,
		Logger: slog.New(slog.DiscardHandler), PublicURL: "https://stagehand.test"}
	var prog bot.Program
	if err := store.Update(ctx, func(tx bot.Tx) (err error) {
		prog, err = tx.EnsureProgram(ctx, 1, bot.Repository{Owner: "acme", Name: "app"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	notApprover := bot.Request{Actor: "bob", Source: bot.FromComment, Authorization: &bot.Authorization{Approvers: "octocat"}}
	for _, tc := range []struct {
		name string
		run  func() error
		want bot.RefusalCode
		rule string
	}{
		{"unknown pipeline", func() error { _, err := eng.StartManual(ctx, bot.Internal("alice"), prog.ID, "nightly", 0); return err }, bot.RefusalBadRequest, ""},
		{"--from on stage-only", func() error {
			_, err := eng.StartManual(ctx, bot.Internal("alice"), prog.ID, bot.StageOnly, 3)
			return err
		}, bot.RefusalBadRequest, ""},
		{"nothing to promote", func() error { _, err := eng.Promote(ctx, bot.Internal("alice"), prog.ID, 0); return err }, bot.RefusalNotPromotable, "F"},
		{"nothing waiting", func() error { _, err := eng.Approve(ctx, bot.Internal("alice"), prog.ID, 0); return err }, bot.RefusalWrongState, ""},
		{"no such execution", func() error { _, err := eng.Cancel(ctx, bot.Internal("alice"), prog.ID, 42); return err }, bot.RefusalNoSuchExecution, ""},
		{"no such execution to re-run", func() error { _, err := eng.Rerun(ctx, bot.Internal("alice"), prog.ID, 42); return err }, bot.RefusalNoSuchExecution, ""},
		{"not an approver", func() error { _, err := eng.Approve(ctx, notApprover, prog.ID, 0); return err }, bot.RefusalNotApprover, ""},
		{"unknown environment", func() error {
			_, err := eng.SetVariable(ctx, bot.Internal("alice"), prog.ID, "qa", "K", "v")
			return err
		}, bot.RefusalBadRequest, ""},
		{"bad variable name", func() error {
			_, err := eng.SetVariable(ctx, bot.Internal("alice"), prog.ID, bot.Stage, "PATH", "v")
			return err
		}, bot.RefusalBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			r := bot.Refused(err)
			if r == nil {
				t.Fatalf("error = %v, want a refusal", err)
			}
			if r.Code != tc.want || r.Rule != tc.rule {
				t.Errorf("refusal %q has code %q, rule %q; want %q, %q", r, r.Code, r.Rule, tc.want, tc.rule)
			}
		})
	}
}
