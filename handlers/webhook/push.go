package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

var _ = handles("push", (*Webhooks).push)

// push decides which pipelines a push starts (rule A) against the policy
// of the default branch (SPEC §3), records a queued execution for each with
// the commands of the pushed commit, and records why the others did not
// start.
func (h *Webhooks) push(ctx context.Context, d Delivery, ev *github.PushEvent) (outcome, error) {
	r := ev.GetRepo()
	repoRef := bot.Repository{ID: r.GetID(), Owner: r.GetOwner().GetLogin(), Name: r.GetName(), DefaultBranch: r.GetDefaultBranch()}
	if repoRef.Owner == "" {
		repoRef.Owner = r.GetOwner().GetName()
	}
	owner, repo := repoRef.Owner, repoRef.Name
	inst := ev.GetInstallation().GetID()
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, owner+"/"+repo), slog.Int64(bot.LogInstallationID, inst))
	if inst == 0 {
		return outcome{after: func(ctx context.Context) {
			h.Logger.WarnContext(ctx, "push ignored", bot.LogError, errNoInstallation)
		}}, nil
	}
	push := bot.Push{
		Ref: ev.GetRef(), Before: ev.GetBefore(), After: ev.GetAfter(),
		Created: ev.GetCreated(), Deleted: ev.GetDeleted(), Forced: ev.GetForced(),
	}
	branch := push.Branch()
	// Tags and deletions start nothing: no need to read the configuration.
	if branch == "" || push.Deleted {
		return ignored("push starts nothing", slog.String("ref", push.Ref), slog.Bool("deleted", push.Deleted)), nil
	}
	prog := bot.Program{InstallationID: inst, GitHubID: repoRef.ID, Owner: owner, Repo: repo, DefaultBranch: repoRef.DefaultBranch}

	// A push to the default branch needs its head (latestPolicy): read
	// meanwhile.
	var head func() (string, error)
	if branch == prog.DefaultBranch && h.Policies != nil {
		head = h.Policies.headLater(ctx, prog, prog.DefaultBranch, d.Received)
	}
	// The commands come from the pushed commit; its file's problems are
	// shown on the commit, to help its author.
	own, ownRaw, ownDiags, err := h.readCommands(ctx, prog, push.After)
	if err != nil {
		return outcome{}, err
	}
	ownInvalid := ownDiags.Err() != nil
	// Policy comes from the default branch, whatever was pushed (SPEC §3);
	// a push to the default branch brings its new policy itself.
	var pol bot.Policy
	var why bot.TriggerReason // why nothing starts, when nothing does
	if branch == prog.DefaultBranch {
		pol = bot.Policy{Branch: branch, Commit: push.After, Raw: ownRaw, Config: own}
		if own == nil && !ownInvalid {
			why = bot.TriggerReason{Code: bot.ReasonNoFile, Repo: prog.FullName(), Commit: push.After}
		}
	} else if pol, why, err = h.sideBranchPolicy(ctx, prog, d.Received); err != nil {
		return outcome{}, err
	}
	var decisions []bot.TriggerDecision // rule A, against the default branch's pipeline set
	switch {
	case ownInvalid:
		// An invalid file never starts anything (SPEC §3); when it is the
		// default branch's, there is no valid policy either.
		why = bot.TriggerReason{Code: bot.ReasonInvalidFile, Commit: push.After, Problems: ownDiags}
	case why.Code == "":
		decisions = bot.DecideTriggers(pol.Config, push)
		if own == nil && startsAny(decisions) {
			why = bot.TriggerReason{Code: bot.ReasonNoCommands, Repo: prog.FullName(), Commit: push.After}
			decisions = nil
		}
	}
	var latest *bot.Policy // what the push records as the program's latest policy
	if branch == prog.DefaultBranch {
		if latest, err = h.latestPolicy(ctx, prog, pol, head); err != nil {
			return outcome{}, err
		}
	}
	now := h.Clock.Now()
	audit := bot.AuditRecord{At: now, Actor: ev.GetSender().GetLogin(), Delivery: d.GUID}
	var started []bot.Execution
	effects := func(tx bot.Tx) error {
		prog, err := tx.EnsureProgram(ctx, inst, repoRef)
		if err != nil {
			return err
		}
		// The pipeline set is the default branch's, read just now: a
		// default branch without the file has none; an invalid policy
		// changes nothing.
		switch {
		case pol.Config != nil:
			err = tx.SetPipelines(ctx, prog.ID, bot.PipelinesOf(prog.ID, pol.Config))
		case branch == prog.DefaultBranch && own == nil && !ownInvalid:
			err = tx.SetPipelines(ctx, prog.ID, nil)
		}
		if err != nil {
			return err
		}
		if branch == prog.DefaultBranch {
			if err := auditPolicy(ctx, tx, prog.ID, audit, push.After, ownRaw, ownInvalid); err != nil {
				return err
			}
		}
		// The deploy calendar gate of executions already queued or
		// waiting reads the latest policy's windows and freezes.
		if latest != nil {
			if err := tx.SetLatestPolicy(ctx, prog.ID, *latest); err != nil {
				return err
			}
		}
		record := bot.TriggerRecord{ProgramID: prog.ID, DeliveryID: d.GUID, Commit: push.After, Branch: branch, CreatedAt: now}
		if why.Code != "" {
			record.Code, record.Reason = why.Code, why.String()
			if err := auditTrigger(ctx, tx, audit, record); err != nil {
				return err
			}
			return tx.AddTriggerRecord(ctx, record)
		}
		started = started[:0] // the transaction may be retried
		for _, dec := range decisions {
			r := record
			r.Pipeline, r.Code, r.Reason = dec.Pipeline, dec.Reason.Code, dec.Reason.String()
			if dec.Start {
				e, err := bot.QueuePushStart(ctx, tx, bot.PushStart{
					Program: prog, Pipeline: dec.Pipeline, Commit: push.After, Branch: branch,
					Pusher: ev.GetSender().GetLogin(), DeliveryID: d.GUID, Config: ownRaw, Policy: pol.Raw, At: now,
				})
				if err != nil {
					return err
				}
				queued := bot.TriggerReason{Code: bot.ReasonQueued, Pipeline: e.Pipeline, Execution: e.String(), Commit: push.After}
				r.ExecutionID, r.Code, r.Reason = e.ID, queued.Code, queued.String()
				started = append(started, e)
			}
			if err := auditTrigger(ctx, tx, audit, r); err != nil {
				return err
			}
			if err := tx.AddTriggerRecord(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}
	return outcome{effects: effects, after: func(ctx context.Context) {
		h.afterPush(ctx, prog, branch, push.After, why, pushExplanation{decisions: decisions, own: own, ownDiags: ownDiags}, started)
	}}, nil
}

// afterPush says on GitHub and in the log what a recorded push did, and
// starts what it queued.
func (h *Webhooks) afterPush(ctx context.Context, prog bot.Program, branch, sha string, why bot.TriggerReason, explain pushExplanation, started []bot.Execution) {
	if why.Code != "" {
		h.Logger.InfoContext(ctx, "push starts nothing", "reason", why.String(), "reason_code", string(why.Code))
	}
	h.explainPush(ctx, prog, branch, sha, explain)
	for _, e := range started {
		h.Logger.InfoContext(ctx, "execution queued", bot.LogPipeline, string(e.Pipeline), bot.LogExecution, e.Number, "commit", bot.ShortSHA(e.Commit))
	}
	if len(started) > 0 && h.Engine != nil {
		// The executions are stored; if this fails the reconcile loop
		// starts them, so the delivery is not retried for it.
		if err := h.Engine.Advance(ctx, started[0].ProgramID); err != nil {
			h.Logger.WarnContext(ctx, "starting the queued executions; the reconcile loop will retry", bot.LogError, err)
		}
	}
}

// repositoryOf is a payload's repository as Stagehand keys it.
func repositoryOf(r *github.Repository) bot.Repository {
	return bot.Repository{ID: r.GetID(), Owner: r.GetOwner().GetLogin(), Name: r.GetName(), DefaultBranch: r.GetDefaultBranch()}
}

// readCommands fetches and parses the configuration at the pushed commit,
// where the commands come from. A missing file gives a nil config and no
// diagnostics; an invalid one a nil config and its diagnostics (errors and
// warnings); a valid one its config and its warnings. Errors are for
// failures worth a retry.
func (h *Webhooks) readCommands(ctx context.Context, prog bot.Program, sha string) (*bot.Config, []byte, bot.Diagnostics, error) {
	data, err := h.Files.FetchFile(ctx, prog.InstallationID, prog.Owner, prog.Repo, bot.ConfigPath, sha)
	if errors.Is(err, bot.ErrNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading %s of %s at %s: %w", bot.ConfigPath, prog.FullName(), bot.ShortSHA(sha), err)
	}
	cfg, diags := h.ParseConfig(data)
	if diags.Err() != nil {
		return nil, nil, diags, nil
	}
	return cfg, data, diags, nil
}

// latestPolicy is what a push to the default branch records as the
// program's latest policy, or nil: the pushed file when valid; but when the
// branch has moved on since (this delivery is handled late, or again), the
// valid file at its head now, so a late delivery never brings an older
// policy back (a lifted freeze, say). An invalid or missing file records
// nothing: the last valid policy stays (an invalid file never lifts a
// freeze), and a push to another branch never records one (SPEC §3). When
// the head cannot be read, the pushed file is taken (deliveries mostly
// arrive in order). head gives the branch's head, read after the delivery
// was received (Policies.headLater; nil when h has no Policies).
func (h *Webhooks) latestPolicy(ctx context.Context, prog bot.Program, pushed bot.Policy, head func() (string, error)) (*bot.Policy, error) {
	valid := func(p bot.Policy) *bot.Policy {
		if p.Config == nil || len(p.Raw) == 0 {
			return nil
		}
		return &p
	}
	if h.Policies == nil || head == nil {
		return valid(pushed), nil
	}
	sha, err := head()
	if err != nil || sha == "" || sha == pushed.Commit {
		return valid(pushed), nil
	}
	pol, err := h.Policies.At(ctx, prog, prog.DefaultBranch, sha)
	switch {
	case bot.Refused(err) != nil:
		return nil, nil
	case err != nil:
		return nil, err
	}
	return valid(pol), nil
}

// sideBranchPolicy reads the policy a push to a branch other than the
// default one is decided by: the default branch's. A policy that is missing
// or invalid is not an error of the handler: why says that nothing starts,
// and why. Errors are for failures worth a retry. The head is read after
// received, as in latestPolicy.
func (h *Webhooks) sideBranchPolicy(ctx context.Context, prog bot.Program, received time.Time) (pol bot.Policy, why bot.TriggerReason, err error) {
	pol, err = h.Policies.PolicySince(ctx, prog, received)
	re := bot.Refused(err)
	switch {
	case re != nil:
		return pol, bot.TriggerReason{Code: bot.ReasonInvalidPolicy, Refusal: re.Message}, nil
	case err != nil:
		return pol, why, err
	case pol.Config == nil:
		return pol, bot.TriggerReason{Code: bot.ReasonNoPolicy, Repo: prog.FullName(), Policy: pol.Describe()}, nil
	}
	return pol, why, nil
}

func startsAny(ds []bot.TriggerDecision) bool {
	for _, d := range ds {
		if d.Start {
			return true
		}
	}
	return false
}

// pushExplanation is what explainPush shows on a pushed commit.
type pushExplanation struct {
	decisions []bot.TriggerDecision
	own       *bot.Config     // the pushed commit's file, if valid
	ownDiags  bot.Diagnostics // its errors (then own is nil) and warnings
}

// explainPush shows on the pushed commit what the push did not start, and
// what is unwise in its file: a stagehand/config check run, failed with one
// annotation per error of an invalid file (and per warning), neutral when a
// branch other than the default one declares pipelines (policy is read from
// the default branch only) or when a valid file has warnings (one warning
// annotation each); and a skipped check run for full-stack when stage-only
// had priority (rule A).
// It is best effort: GitHub being down does not fail the delivery, whose
// executions are already recorded.
func (h *Webhooks) explainPush(ctx context.Context, prog bot.Program, branch, sha string, x pushExplanation) {
	if h.Checks == nil {
		return
	}
	var views []githubapp.CheckRunView
	switch {
	case x.ownDiags.Err() != nil:
		views = append(views, githubapp.ConfigCheckRun(sha, x.ownDiags))
	case x.own != nil && len(x.own.Pipelines) > 0 && branch != prog.DefaultBranch:
		views = append(views, githubapp.PolicyElsewhereCheckRun(sha, branch, prog.DefaultBranch, x.ownDiags.Warnings()))
	case len(x.ownDiags.Warnings()) > 0:
		views = append(views, githubapp.ConfigCheckRun(sha, x.ownDiags))
	}
	for _, d := range x.decisions {
		if d.Reason.Code == bot.ReasonPriority {
			views = append(views, githubapp.NotStartedView(d.Pipeline, sha, d.Reason, bot.ProgramURL(h.PublicURL, prog)))
		}
	}
	for _, v := range views {
		if _, err := h.Checks.CreateCheckRun(ctx, prog.InstallationID, prog.Owner, prog.Repo, githubapp.CreateOptions(v)); err != nil {
			h.Logger.WarnContext(ctx, "creating the check run that explains the push", "check_run", v.Name, bot.LogError, err)
		}
	}
}
