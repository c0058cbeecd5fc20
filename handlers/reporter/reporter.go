package reporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// ChecksAPI is what the reporter asks of GitHub.
type ChecksAPI interface {
	CreateCheckRun(ctx context.Context, inst int64, owner, repo string, opts github.CreateCheckRunOptions) (int64, error)
	CheckRunIDs(ctx context.Context, inst int64, owner, repo, sha, name, externalID string) ([]int64, error)
	UpdateCheckRun(ctx context.Context, inst int64, owner, repo string, id int64, opts github.UpdateCheckRunOptions) error
	CreateDeployment(ctx context.Context, inst int64, owner, repo, ref, environment, description string, payload map[string]any) (int64, error)
	DeploymentIDs(ctx context.Context, inst int64, owner, repo, sha, environment, pipeline string, execution int) ([]int64, error)
	CreateDeploymentStatus(ctx context.Context, inst int64, owner, repo string, id int64, state, environmentURL, logURL, description string) error
}

// Reporter brings executions to GitHub: check runs (one per phase: a gate
// completes the current one with its buttons and a new one carries the
// execution on) and a GitHub Deployment per deploy step. It works from the
// store, not from events: it takes the executions whose Version is ahead
// of what was reported, renders them and sends what changed. So updates
// are coalesced (at most one per check run per look), a GitHub outage only
// delays them, and the final state always lands. What makes it look is a
// wake-up (Wake: the store says an execution changed) or, as a safety net
// for wake-ups that are lost, a periodic pass (Interval); see Run.
type Reporter struct {
	Store     bot.Transactor
	GitHub    ChecksAPI
	Clock     bot.Clock
	Logger    *slog.Logger
	PublicURL string
	// Wake receives when an execution changed (the store's
	// ExecutionChanges): the lease holder looks at once. Nil: only the
	// periodic passes look.
	Wake <-chan struct{}
	// Coalesce is how long Run waits after a wake-up before it looks
	// (default 10ms), so that a burst of changes (a push's transaction and
	// the engine's start of its execution a moment later) is reported as
	// one.
	Coalesce time.Duration
	// Interval between the periodic passes of Run (default 15s), the safety
	// net for wake-ups that never came.
	Interval time.Duration
	// ParseConfig reads an execution's configuration (environment URLs,
	// scheduled pipelines).
	ParseConfig bot.ConfigParser
	// Holder names this reporter in the "reporter" lease: of the replicas
	// sharing a store, only the one holding the lease reports, so two never
	// create the same check run or deployment status. Default: host name,
	// process id and a random suffix.
	Holder string
	// LeaseTTL is how long the lease lasts (default 10s): Run renews it
	// every third of that; when the holder stops, another replica takes
	// over once it expires. The replicas' clocks must agree to well within
	// it.
	LeaseTTL time.Duration
	// PerInstallation is how many programs of one GitHub installation are
	// reported at once (default 8); programs of different installations do
	// not wait for one another. GitHub counts its rate limits per
	// installation and asks for its writes one at a time (the githubapp
	// client sends an installation's writes in turn), so more programs of
	// one installation would only queue there. A program's executions are
	// reported one after the other, oldest change first, as a program's
	// check runs refer to one another.
	PerInstallation int
	// OnPass, when set, is told each time Run looks at the store, and why.
	OnPass func(PassCause)

	holderOnce sync.Once
	holder     string
	slotsMu    sync.Mutex
	slots      map[int64]chan struct{} // per installation: PerInstallation tokens
}

// reporterLease is the lease the reporting replica holds.
const reporterLease = "reporter"

// Tick takes (or renews) the reporter lease and, if this reporter holds
// it, reports once (ReportOnce), renewing the lease every third of
// LeaseTTL while it does: a tick slowed down by GitHub (an outage, retries
// with backoff) keeps the lease, so another replica does not report the
// same executions at the same time (found by the chaos soak: a second
// Deployment of one deploy, and a check run left "running" by the slow
// reporter's late update after the other had completed it). A renewal that
// fails or finds the lease taken stops the tick's work.
func (r *Reporter) Tick(ctx context.Context) error {
	held, err := r.acquireLease(ctx)
	if err != nil {
		return err
	}
	if !held {
		r.Logger.DebugContext(ctx, "another replica holds the reporter lease; not reporting", "holder", r.leaseHolder())
		return nil
	}
	work, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { r.keepLease(work, stop, r.leaseHolder(), r.leaseTTL()) })
	err = r.ReportOnce(work)
	stop()
	wg.Wait()
	return err
}

// keepLease renews the reporter lease every third of ttl until ctx ends;
// when a renewal fails or the lease is another's, it calls lost.
func (r *Reporter) keepLease(ctx context.Context, lost func(), holder string, ttl time.Duration) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var held bool
		err := r.update(ctx, func(tx Tx) (err error) {
			held, err = tx.AcquireLease(ctx, reporterLease, holder, r.Clock.Now(), ttl)
			return err
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil || !held {
			r.Logger.WarnContext(ctx, "lost the reporter lease during a tick; stopping its work", bot.LogError, err)
			lost()
			return
		}
	}
}

// acquireLease takes or renews the reporter lease for LeaseTTL.
func (r *Reporter) acquireLease(ctx context.Context) (bool, error) {
	var held bool
	err := r.update(ctx, func(tx Tx) (err error) {
		held, err = tx.AcquireLease(ctx, reporterLease, r.leaseHolder(), r.Clock.Now(), r.leaseTTL())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("acquire the %s lease: %w", reporterLease, err)
	}
	return held, nil
}

func (r *Reporter) leaseTTL() time.Duration {
	if r.LeaseTTL <= 0 {
		return 10 * time.Second
	}
	return r.LeaseTTL
}

// leaseHolder is Holder, or a name for this process made once.
func (r *Reporter) leaseHolder() string {
	r.holderOnce.Do(func() {
		r.holder = r.Holder
		if r.holder == "" {
			host, err := os.Hostname()
			if err != nil || host == "" {
				host = "unknown-host"
			}
			r.holder = fmt.Sprintf("%s/%d/%016x", host, os.Getpid(), rand.Uint64())
		}
	})
	return r.holder
}

// scanLimit is how many executions with unreported changes one look reads.
const scanLimit = 200

// pending reads the executions with unreported changes (at most
// scanLimit), one queue per program in the order the store gave (oldest
// change first), and the programs in the order of their oldest change.
func (r *Reporter) pending(ctx context.Context) (order []int64, byProgram map[int64][]bot.Execution, err error) {
	var execs []bot.Execution
	err = r.view(ctx, func(tx Tx) error {
		var err error
		execs, err = tx.ExecutionsToReport(ctx, scanLimit)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	byProgram = map[int64][]bot.Execution{}
	for _, ex := range execs {
		if _, ok := byProgram[ex.ProgramID]; !ok {
			order = append(order, ex.ProgramID)
		}
		byProgram[ex.ProgramID] = append(byProgram[ex.ProgramID], ex)
	}
	return order, byProgram, nil
}

// ReportOnce reports every execution with unreported changes, the programs
// side by side (PerInstallation), and returns when all are done.
func (r *Reporter) ReportOnce(ctx context.Context) error {
	order, byProgram, err := r.pending(ctx)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, id := range order {
		wg.Go(func() {
			if _, err := r.reportProgram(ctx, byProgram[id], false); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// awaitEngineFor is how long Run holds back an execution a push queued
// that the engine has not looked at yet (bot.AwaitsEngine): the push's
// handler asks the engine right after its transaction, and the engine
// either starts it or says what it waits for, a change that wakes the
// reporter again. Its check run so begins with the engine's answer, and
// GitHub gets no queued → in_progress update a moment later. Beyond this
// (the engine failed to look, and the reconcile loop's look every 2 s did
// not come either) it is reported as it is.
const awaitEngineFor = 5 * time.Second

// reportProgram reports execs, executions of one program, in order, once
// the program's installation has a free slot. With hold, an execution
// that awaits the engine is left for later (see awaitEngineFor); due is
// when the earliest such one is to be reported anyway, zero when none was
// left.
func (r *Reporter) reportProgram(ctx context.Context, execs []bot.Execution, hold bool) (due time.Time, err error) {
	var inst int64
	err = r.view(ctx, func(tx Tx) error {
		p, err := tx.Program(ctx, execs[0].ProgramID)
		inst = p.InstallationID
		return err
	})
	if err != nil {
		return due, fmt.Errorf("program %d: %w", execs[0].ProgramID, err)
	}
	slots := r.installationSlots(inst)
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return due, ctx.Err()
	}
	defer func() { <-slots }()
	var errs []error
	for _, ex := range execs {
		if hold && bot.AwaitsEngine(ex) {
			if wait := ex.CreatedAt.Add(awaitEngineFor).Sub(r.Clock.Now()); wait > 0 {
				if at := time.Now().Add(wait); due.IsZero() || at.Before(due) {
					due = at
				}
				continue
			}
		}
		if err := r.report(ctx, ex.ID); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ex, err))
		}
	}
	return due, errors.Join(errs...)
}

// installationSlots is installation inst's semaphore: PerInstallation
// programs at once.
func (r *Reporter) installationSlots(inst int64) chan struct{} {
	r.slotsMu.Lock()
	defer r.slotsMu.Unlock()
	if r.slots == nil {
		r.slots = map[int64]chan struct{}{}
	}
	s, ok := r.slots[inst]
	if !ok {
		n := r.PerInstallation
		if n <= 0 {
			n = 8
		}
		s = make(chan struct{}, n)
		r.slots[inst] = s
	}
	return s
}

// snapshot is what the reporter reads about one execution.
type snapshot struct {
	in   githubapp.RenderInput
	refs map[string]bot.GitHubRef
	// again are executions whose check runs must be rendered again: the
	// succeeded stage-only execution that was the latest one before this
	// one (its Promote Build button must go), or, when this execution
	// deployed production successfully, the latest successful stage-only
	// execution (its check run shows whether production is pinned by a
	// restore, which that deploy may have begun or ended).
	again []int64
	cfg   *bot.Config
}

func (r *Reporter) load(ctx context.Context, id int64) (snapshot, error) {
	var s snapshot
	err := r.view(ctx, func(tx Tx) error {
		ex, err := tx.Execution(ctx, id)
		if err != nil {
			return err
		}
		if s.in.ExecutionDetail, err = bot.LoadExecutionDetail(ctx, tx, ex); err != nil {
			return err
		}
		if err := s.in.NeedSource(); err != nil {
			return err
		}
		refs, err := tx.GitHubRefs(ctx, id)
		if err != nil {
			return err
		}
		s.refs = map[string]bot.GitHubRef{}
		for _, ref := range refs {
			s.refs[ref.Key] = ref
		}
		pipes, err := tx.Pipelines(ctx, ex.ProgramID)
		if err != nil {
			return err
		}
		for _, p := range pipes {
			if p.Kind == bot.ProdOnly {
				s.in.HasProdOnly = true
			}
		}
		if ex.State != bot.ExecutionSucceeded {
			return nil
		}
		if s.in.RestorePin, err = bot.ReadRestorePin(ctx, tx, ex.ProgramID); err != nil {
			return err
		}
		latest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: ex.ProgramID, Pipeline: bot.StageOnly, States: []bot.ExecutionState{bot.ExecutionSucceeded}, Limit: 2})
		if err != nil {
			return err
		}
		switch {
		case ex.Pipeline != bot.StageOnly: // prod-only and full-stack deploy production
			if len(latest) > 0 {
				s.again = append(s.again, latest[0].ID)
			}
		case len(latest) > 0 && latest[0].ID == ex.ID:
			s.in.LatestSuccessfulStageOnly = true
			if len(latest) > 1 {
				s.again = append(s.again, latest[1].ID)
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if r.ParseConfig != nil {
		if cfg, err := bot.ExecutionConfig(r.ParseConfig.Config, s.in.Execution); err == nil {
			s.cfg = cfg
			if p, ok := cfg.Pipelines[s.in.Execution.Pipeline]; ok {
				s.in.Scheduled = p.Scheduled
			}
			s.in.RequiredApprovals = bot.RequiredApprovals(cfg)
			s.in.BreakGlassOff = cfg.Production != nil && cfg.Production.BreakGlassOff
		}
	}
	s.in.PromoteRequested = bot.PromoteRequested(s.in.Events)
	s.in.DetailsURL = bot.ExecutionURL(r.PublicURL, s.in.Program, s.in.Execution.Number)
	s.in.Now = lastChange(s.in.Execution, s.in.Steps)
	return s, nil
}

// lastChange is the time of the execution's last recorded move. Check runs
// show durations up to it rather than up to the clock, so a check run
// changes only when the execution does: no update every second while a
// step runs.
func lastChange(ex bot.Execution, steps []bot.Step) time.Time {
	t := ex.CreatedAt
	for _, c := range []time.Time{ex.StartedAt, ex.FinishedAt} {
		if c.After(t) {
			t = c
		}
	}
	for _, s := range steps {
		for _, c := range []time.Time{s.StartedAt, s.FinishedAt} {
			if c.After(t) {
				t = c
			}
		}
	}
	return t
}

func (r *Reporter) report(ctx context.Context, id int64) error {
	s, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	ex := s.in.Execution
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, s.in.Program.FullName()), slog.Int(bot.LogExecution, ex.Number))
	ctx = githubapp.WithCallLabel(ctx, fmt.Sprintf("execution/%d", ex.ID))
	if err := r.reportCheckRun(ctx, &s); err != nil {
		return err
	}
	if err := r.reportDeployments(ctx, &s); err != nil {
		return err
	}
	return r.update(ctx, func(tx Tx) error {
		for _, id := range s.again {
			if err := tx.Touch(ctx, id); err != nil {
				return err
			}
		}
		return tx.MarkReported(ctx, ex.ID, ex.Version)
	})
}

// Buttons says what the execution's check run shows now. A click that is
// not on that check run, or not on one of those buttons, is stale.
func (r *Reporter) Buttons(ctx context.Context, executionID int64) (bot.ButtonsShown, error) {
	s, err := r.load(ctx, executionID)
	if err != nil {
		return bot.ButtonsShown{}, err
	}
	s.in.Phase = currentPhase(s.refs)
	shown := bot.ButtonsShown{Events: len(s.in.Events)}
	if last, ok := s.refs[bot.CheckRunKey(s.in.Phase)]; ok && bot.ParseCheckRunReport(last.Reported).State != bot.CheckRunClosed {
		shown.CheckRunID = last.GitHubID
	}
	for _, a := range githubapp.RenderCheckRun(s.in).Actions {
		shown.Identifiers = append(shown.Identifiers, a.Identifier)
	}
	return shown, nil
}
