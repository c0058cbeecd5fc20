package reporter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// An execution's check runs, one per phase: created once (an intent ref
// first, so a lost answer is adopted rather than doubled), updated when
// their view changes, their buttons taken away when a gate is passed.

// currentPhase is the newest phase that has a check run (0 when none has).
func currentPhase(refs map[string]bot.GitHubRef) int {
	phase := 0
	for {
		if _, ok := refs[bot.CheckRunKey(phase+1)]; !ok {
			return phase
		}
		phase++
	}
}

// reportCheckRun creates or updates the check run of the current phase.
// A phase ends when its check run was completed at a gate (action
// required) and the execution has moved on: the gate's check run loses its
// buttons and the next phase gets a new check run of the same name.
//
// Before a check run is created, a ref without a GitHub id is stored (the
// intent). Finding such a ref means an earlier create may have reached
// GitHub without its answer reaching us: the reporter then looks the check
// run up instead of creating a second one.
func (r *Reporter) reportCheckRun(ctx context.Context, s *snapshot) error {
	phase := currentPhase(s.refs)
	s.in.Phase = phase
	view := githubapp.RenderCheckRun(s.in)
	gate := gateOf(view, s.in.Steps)
	last, haveLast := s.refs[bot.CheckRunKey(phase)]
	p := s.in.Program
	if haveLast && last.GitHubID == 0 {
		adopted, err := r.adopt(ctx, s, view, last)
		if err != nil {
			return err
		}
		last, haveLast = adopted, adopted.GitHubID != 0
	}
	if haveLast {
		prev := bot.ParseCheckRunReport(last.Reported)
		switch {
		case prev.Gate.At && prev.Gate != gate:
			// The gate was passed: its buttons go, a new check run goes on.
			if err := r.closeGate(ctx, s, last, view.Name, prev.Gate.Name()); err != nil {
				return err
			}
			phase++
			s.in.Phase = phase
			view = githubapp.RenderCheckRun(s.in)
			gate = gateOf(view, s.in.Steps)
			haveLast = false
		case prev.State == bot.CheckRunShown && prev.Hash == hashView(view):
			return nil
		}
	}
	shown := bot.CheckRunReport{State: bot.CheckRunShown, Hash: hashView(view), Gate: gate}
	if !haveLast {
		return r.createCheckRun(ctx, s, phase, view, shown)
	}
	err := r.GitHub.UpdateCheckRun(ctx, p.InstallationID, p.Owner, p.Repo, last.GitHubID, githubapp.UpdateOptions(view))
	if errors.Is(err, bot.ErrNotFound) {
		// The check run is gone from GitHub (deleted, or a stand-in that
		// restarted): the phase gets a new one rather than failing forever.
		r.Logger.WarnContext(ctx, "check run not found on GitHub; creating it again", "check_run", last.GitHubID, "phase", phase)
		return r.createCheckRun(ctx, s, phase, view, shown)
	}
	if err != nil {
		return fmt.Errorf("updating check run %d: %w", last.GitHubID, err)
	}
	last.Reported = shown.String()
	return r.putRef(ctx, last)
}

// createCheckRun creates the check run of phase, recording the intent
// first (see reportCheckRun) and then its GitHub id and what it shows.
func (r *Reporter) createCheckRun(ctx context.Context, s *snapshot, phase int, view githubapp.CheckRunView, shown bot.CheckRunReport) error {
	p := s.in.Program
	intent := bot.GitHubRef{ExecutionID: s.in.Execution.ID, Key: bot.CheckRunKey(phase), Reported: bot.CheckRunReport{State: bot.CheckRunCreating}.String()}
	if err := r.putRef(ctx, intent); err != nil {
		return err
	}
	id, err := r.GitHub.CreateCheckRun(ctx, p.InstallationID, p.Owner, p.Repo, githubapp.CreateOptions(view))
	if err != nil {
		return fmt.Errorf("creating check run %s: %w", view.Name, err)
	}
	r.Logger.DebugContext(ctx, "check run created", "check_run", id, "phase", phase, "status", view.Status)
	intent.GitHubID, intent.Reported = id, shown.String()
	return r.putRef(ctx, intent)
}

// adopt resolves a create whose answer was lost: a check run of this
// execution on GitHub that no ref knows is the one created then.
func (r *Reporter) adopt(ctx context.Context, s *snapshot, view githubapp.CheckRunView, intent bot.GitHubRef) (bot.GitHubRef, error) {
	p := s.in.Program
	ids, err := r.GitHub.CheckRunIDs(ctx, p.InstallationID, p.Owner, p.Repo, view.HeadSHA, view.Name, view.ExternalID)
	if err != nil {
		return intent, fmt.Errorf("looking for a check run created without an answer: %w", err)
	}
	known := map[int64]bool{}
	for _, ref := range s.refs {
		known[ref.GitHubID] = true
	}
	for _, id := range ids {
		if !known[id] {
			intent.GitHubID, intent.Reported = id, bot.CheckRunReport{State: bot.CheckRunAdopted}.String() // its content is unknown: update it
			r.Logger.InfoContext(ctx, "adopted a check run whose creation answer was lost", "check_run", id)
			return intent, r.putRef(ctx, intent)
		}
	}
	return intent, nil // never created: create it now
}

// closeGate takes the buttons off a passed gate's check run and says where
// the execution went on.
func (r *Reporter) closeGate(ctx context.Context, s *snapshot, ref bot.GitHubRef, name, gate string) error {
	p := s.in.Program
	title := gate + " passed"
	opts := github.UpdateCheckRunOptions{
		Name: name, Status: github.String(githubapp.StatusCompleted), Conclusion: github.String(githubapp.ConclusionSuccess),
		CompletedAt: &github.Timestamp{Time: r.Clock.Now()},
		Output: &github.CheckRunOutput{Title: github.String(title),
			Summary: github.String(fmt.Sprintf("%s: %s. %s goes on in the next `%s` check run.", s.in.Execution, title, s.in.Execution, name))},
		Actions: []*github.CheckRunAction{},
	}
	err := r.GitHub.UpdateCheckRun(ctx, p.InstallationID, p.Owner, p.Repo, ref.GitHubID, opts)
	switch {
	case errors.Is(err, bot.ErrNotFound):
		// Gone from GitHub: there are no buttons left to take off.
		r.Logger.WarnContext(ctx, "the passed gate's check run is not on GitHub any more", "check_run", ref.GitHubID, "gate", gate)
	case err != nil:
		return fmt.Errorf("closing the %s check run %d: %w", gate, ref.GitHubID, err)
	}
	ref.Reported = bot.CheckRunReport{State: bot.CheckRunClosed}.String()
	return r.putRef(ctx, ref)
}

func (r *Reporter) putRef(ctx context.Context, ref bot.GitHubRef) error {
	return r.update(ctx, func(tx Tx) error { return tx.PutGitHubRef(ctx, ref) })
}

// gateOf is the gate a view stops at (the zero CheckRunGate when it is not a
// gate): the check run of a gate is complete, and passing it starts a new
// one.
func gateOf(v githubapp.CheckRunView, steps []bot.Step) bot.CheckRunGate {
	if v.Status != githubapp.StatusCompleted || v.Conclusion != githubapp.ConclusionActionRequired {
		return bot.CheckRunGate{}
	}
	for _, s := range steps {
		if s.State == bot.StepWaiting {
			return bot.CheckRunGate{At: true, Step: s.Name}
		}
	}
	return bot.CheckRunGate{At: true}
}

func hashView(v githubapp.CheckRunView) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
