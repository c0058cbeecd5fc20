package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// ArtifactPruner removes the artifact sets a retention pass does not keep.
type ArtifactPruner interface {
	Prune(ctx context.Context, keep func(digest string) bool, spare time.Time) (bot.PruneStats, error)
}

// Retainer keeps the data directory from growing without end: it removes
// the step logs of executions that finished longer ago than the policy's
// age, and the artifact sets nothing needs any more (bot.Retention.Plan
// says what stays: what is deployed, what runs, what can be promoted; and
// KeepRestorable: what production ran in its last KeepDeployed deploys).
// The executions, their log tails and events stay in the database. With
// AuditAge set it also removes the audit records older than that, and
// records that it did.
type Retainer struct {
	// Store is read for what stays, and records when sets were pruned
	// (bot.PruneTx), for the history's "pruned by retention on <date>".
	Store     bot.Transactor
	Artifacts ArtifactPruner // nil: artifact sets are not pruned
	DataDir   string         // step logs are under DataDir/logs/<execution id>/
	Policy    bot.Retention
	// AuditAge is how long audit records are kept (--audit-retention);
	// 0 keeps them forever.
	AuditAge time.Duration
	Clock    bot.Clock
	Logger   *slog.Logger
	// Spare is how recent a file must be to be spared whatever the plan
	// says (a build may be writing it); default one hour.
	Spare time.Duration
}

// RetentionStats is what one pass removed.
type RetentionStats struct {
	Logs  int // executions whose step logs were removed
	Audit int // audit records removed (older than AuditAge)
	bot.PruneStats
}

// Run makes a pass at once and then every interval, until ctx ends.
func (r *Retainer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "retention pass failed; trying again later", bot.LogError, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce makes one retention pass: the files, then the audit records.
func (r *Retainer) RunOnce(ctx context.Context) (RetentionStats, error) {
	var st RetentionStats
	err := r.pruneFiles(ctx, &st)
	if aerr := r.pruneAudit(ctx, &st); aerr != nil {
		err = errors.Join(err, aerr)
	}
	return st, err
}

// pruneAudit removes the audit records older than AuditAge and, in the
// same transaction, appends one record of Stagehand's saying how many it
// removed from before which time (none when it removed none).
func (r *Retainer) pruneAudit(ctx context.Context, st *RetentionStats) error {
	if r.AuditAge <= 0 {
		return nil
	}
	now := r.Clock.Now().UTC()
	before := now.Add(-r.AuditAge)
	var removed int
	err := r.Store.Update(ctx, func(tx bot.Tx) (err error) {
		if removed, err = tx.PruneAudit(ctx, before); err != nil || removed == 0 {
			return err
		}
		_, err = tx.AddAudit(ctx, bot.AuditRecord{At: now, Action: bot.AuditPrune, Outcome: bot.AuditDone,
			Reason: fmt.Sprintf("audit retention removed %d records from before %s", removed, before.Format(time.RFC3339)),
			Detail: "--audit-retention " + bot.FormatDays(r.AuditAge)})
		return err
	})
	if err != nil {
		return fmt.Errorf("retention: removing old audit records: %w", err)
	}
	st.Audit = removed
	if removed > 0 {
		r.Logger.InfoContext(ctx, "retention: removed old audit records", "before", before, "records", removed)
	}
	return nil
}

// pruneFiles removes the step logs and artifact sets Policy does not keep.
func (r *Retainer) pruneFiles(ctx context.Context, st *RetentionStats) error {
	if r.Policy.Age <= 0 {
		return nil
	}
	keep := map[string]bool{}
	var dropLogs []int64
	err := r.Store.View(ctx, func(tx bot.Tx) error {
		return bot.EachProgram(ctx, tx, func(p bot.Program, execs []bot.Execution) error {
			var deployed []bot.Deployment
			for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
				d, err := tx.Deployment(ctx, p.ID, env)
				if errors.Is(err, bot.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				deployed = append(deployed, d)
			}
			plan := r.Policy.Plan(r.Clock.Now(), execs, deployed)
			if r.Policy.KeepDeployed > 0 {
				production, err := tx.EnvironmentHistory(ctx, bot.HistoryQuery{ProgramID: p.ID, Environment: bot.Production, Limit: r.Policy.KeepDeployed})
				if err != nil {
					return err
				}
				r.Policy.KeepRestorable(plan, production)
			}
			for d := range plan.Keep {
				keep[d] = true
			}
			dropLogs = append(dropLogs, plan.DropLogs...)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("retention: reading what stays: %w", err)
	}
	// One listing of the log directories, rather than a look for each old
	// execution at every pass (most had theirs removed passes ago).
	present, err := os.ReadDir(LogFiles{r.DataDir}.Root())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("retention: listing the step logs: %w", err)
	}
	drop := make(map[string]bool, len(dropLogs))
	for _, id := range dropLogs {
		drop[strconv.FormatInt(id, 10)] = true
	}
	for _, d := range present {
		if !d.IsDir() || !drop[d.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(LogFiles{r.DataDir}.Root(), d.Name())); err != nil {
			return fmt.Errorf("retention: removing the logs of execution %s: %w", d.Name(), err)
		}
		st.Logs++
	}
	if r.Artifacts != nil {
		spare := r.Spare
		if spare <= 0 {
			spare = time.Hour
		}
		ps, err := r.Artifacts.Prune(ctx, func(d string) bool { return keep[d] }, r.Clock.Now().Add(-spare))
		st.PruneStats = ps
		// What was removed is recorded even when the pass then failed.
		if len(ps.Digests) > 0 {
			if rerr := r.Store.Update(ctx, func(tx bot.Tx) error { return tx.RecordPruned(ctx, ps.Digests, r.Clock.Now()) }); rerr != nil {
				err = errors.Join(err, fmt.Errorf("recording when artifact sets were pruned: %w", rerr))
			}
		}
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	if st.Logs > 0 || st.Sets > 0 || st.Blobs > 0 {
		r.Logger.InfoContext(ctx, "retention: removed what finished executions no longer need",
			"older_than", r.Policy.Age.String(), "logs", st.Logs, "artifact_sets", st.Sets, "contents", st.Blobs, "bytes", st.Bytes)
	}
	return nil
}
