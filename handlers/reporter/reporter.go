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
// store, not from events: every tick it takes the executions whose Version
// is ahead of what was reported, renders them and sends what changed. So
// updates are coalesced (at most one per check run per tick), a GitHub
// outage only delays them, and the final state always lands.
type Reporter struct {
	Store     bot.Transactor
	GitHub    ChecksAPI
	Clock     bot.Clock
	Logger    *slog.Logger
	PublicURL string
	// Interval between ticks (default 1s).
	Interval time.Duration
	// ParseConfig reads an execution's configuration (environment URLs,
	// scheduled pipelines).
	ParseConfig bot.ConfigParser
	// Holder names this reporter in the "reporter" lease: of the replicas
	// sharing a store, only the one holding the lease reports, so two never
	// create the same check run or deployment status. Default: host name,
	// process id and a random suffix.
	Holder string
	// LeaseTTL is how long a tick's lease lasts (default 10s): when the
	// holder stops ticking, another replica takes over once it expires. It
	// must be well above Interval, so the holder renews it in time, and
	// the replicas' clocks must agree to well within it.
	LeaseTTL time.Duration
	// Concurrency is how many programs are reported at once (default 4).
	// A program's executions are reported one after the other, oldest
	// change first, as a program's check runs refer to one another.
	Concurrency int

	holderOnce sync.Once
	holder     string
}

// reporterLease is the lease the reporting replica holds.
const reporterLease = "reporter"

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	interval := r.Interval
	if interval == 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := r.Tick(ctx); err != nil && ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "reporting to GitHub; will retry", bot.LogError, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick is one turn of Run: it takes (or renews) the reporter lease and, if
// this reporter holds it, reports. A tick that runs longer than LeaseTTL
// may overlap with the next holder's; Interval and LeaseTTL keep that rare.
func (r *Reporter) Tick(ctx context.Context) error {
	ttl := r.LeaseTTL
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	holder := r.leaseHolder()
	var held bool
	err := r.update(ctx, func(tx Tx) (err error) {
		held, err = tx.AcquireLease(ctx, reporterLease, holder, r.Clock.Now(), ttl)
		return err
	})
	if err != nil {
		return fmt.Errorf("acquire the %s lease: %w", reporterLease, err)
	}
	if !held {
		r.Logger.DebugContext(ctx, "another replica holds the reporter lease; not reporting", "holder", holder)
		return nil
	}
	return r.ReportOnce(ctx)
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

// ReportOnce reports every execution with unreported changes.
func (r *Reporter) ReportOnce(ctx context.Context) error {
	var pending []bot.Execution
	err := r.view(ctx, func(tx Tx) error {
		var err error
		pending, err = tx.ExecutionsToReport(ctx, 100)
		return err
	})
	if err != nil {
		return err
	}
	// One queue per program, in the order the store gave (oldest change
	// first); the programs are reported side by side.
	var order []int64
	byProgram := map[int64][]bot.Execution{}
	for _, ex := range pending {
		if _, ok := byProgram[ex.ProgramID]; !ok {
			order = append(order, ex.ProgramID)
		}
		byProgram[ex.ProgramID] = append(byProgram[ex.ProgramID], ex)
	}
	workers := r.Concurrency
	if workers <= 0 {
		workers = 4
	}
	programs := make(chan []bot.Execution)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(workers, len(order)) {
		wg.Go(func() {
			for execs := range programs {
				for _, ex := range execs {
					if err := r.report(ctx, ex.ID); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s: %w", ex, err))
						mu.Unlock()
					}
				}
			}
		})
	}
	for _, id := range order {
		programs <- byProgram[id]
	}
	close(programs)
	wg.Wait()
	return errors.Join(errs...)
}

// snapshot is what the reporter reads about one execution.
type snapshot struct {
	in   githubapp.RenderInput
	refs map[string]bot.GitHubRef
	// previous is the succeeded stage-only execution that was the latest
	// one before this one: its Promote Build button must go.
	previous int64
	cfg      *bot.Config
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
		if ex.State == bot.ExecutionSucceeded {
			if s.in.RestorePin, err = bot.ReadRestorePin(ctx, tx, ex.ProgramID); err != nil {
				return err
			}
		}
		if ex.Pipeline == bot.StageOnly && ex.State == bot.ExecutionSucceeded {
			latest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: ex.ProgramID, Pipeline: bot.StageOnly, States: []bot.ExecutionState{bot.ExecutionSucceeded}, Limit: 2})
			if err != nil {
				return err
			}
			s.in.LatestSuccessfulStageOnly = len(latest) > 0 && latest[0].ID == ex.ID
			if s.in.LatestSuccessfulStageOnly && len(latest) > 1 {
				s.previous = latest[1].ID
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
		if s.previous != 0 {
			if err := tx.Touch(ctx, s.previous); err != nil {
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
