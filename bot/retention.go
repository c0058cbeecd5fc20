package bot

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Retention says how long the files of finished executions are kept: their
// step logs and the artifact sets nothing needs any more. The executions
// themselves (their steps, log tails, events) are kept for good; they are
// small and they are the record.
type Retention struct {
	// Age: an execution that finished longer ago than Age loses its step
	// logs and, unless something below keeps it, its artifact set. Zero
	// keeps everything.
	Age time.Duration
	// KeepPromotable is how many of each program's newest successful
	// stage-only executions keep their artifact sets whatever their age:
	// they can still be promoted, or promoted again to roll back.
	KeepPromotable int
	// KeepDeployed is how many of each program's newest production
	// deploys keep the artifact sets they deployed whatever their age:
	// those builds can be restored (KeepRestorable).
	KeepDeployed int
}

// DefaultRetention is what `stagehand serve` uses unless told otherwise.
var DefaultRetention = Retention{Age: 30 * 24 * time.Hour, KeepPromotable: 10, KeepDeployed: 10}

// FormatDays writes a retention age as --retention and --audit-retention
// take it: whole days as "30d", anything else as a Go duration ("36h0m0s"),
// zero as "0s".
func FormatDays(d time.Duration) string {
	if d != 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// RetentionPlan is what a retention pass keeps and removes.
type RetentionPlan struct {
	// Keep names the artifact sets (by digest) that must stay.
	Keep map[string]bool
	// DropLogs lists the executions whose step logs go.
	DropLogs []int64
}

// Plan decides, for one program, what stays. An artifact set stays when it
// is deployed on an environment, used by an execution that has not
// finished (a prod-only's source included), built or used by an execution
// that finished within Age, or built by one of the KeepPromotable newest
// successful stage-only executions. Logs go when their execution finished
// longer than Age ago. With a zero Age everything stays.
func (r Retention) Plan(now time.Time, execs []Execution, deployed []Deployment) RetentionPlan {
	plan := RetentionPlan{Keep: map[string]bool{}}
	keep := func(digest string) {
		if digest != "" {
			plan.Keep[digest] = true
		}
	}
	for _, d := range deployed {
		keep(d.ArtifactDigest)
	}
	byID := make(map[int64]Execution, len(execs))
	for _, e := range execs {
		byID[e.ID] = e
	}
	cutoff := now.Add(-r.Age)
	var promotable []Execution
	for _, e := range execs {
		old := r.Age > 0 && !e.State.Active() && !e.FinishedAt.IsZero() && e.FinishedAt.Before(cutoff)
		if !old {
			keep(e.ArtifactDigest)
			if src, ok := byID[e.SourceID]; ok && e.State.Active() {
				keep(src.ArtifactDigest)
			}
		} else {
			plan.DropLogs = append(plan.DropLogs, e.ID)
		}
		if e.Pipeline == StageOnly && e.State == ExecutionSucceeded {
			promotable = append(promotable, e)
		}
	}
	sort.Slice(promotable, func(i, j int) bool { return promotable[i].Number > promotable[j].Number })
	for i, e := range promotable {
		if i >= r.KeepPromotable {
			break
		}
		keep(e.ArtifactDigest)
	}
	sort.Slice(plan.DropLogs, func(i, j int) bool { return plan.DropLogs[i] < plan.DropLogs[j] })
	return plan
}

// KeepRestorable adds to plan the artifact sets of the KeepDeployed newest
// of a program's production deploys (production: its history, newest
// first; deploys that failed or were cancelled count, they ran there too).
func (r Retention) KeepRestorable(plan RetentionPlan, production []EnvironmentDeployment) {
	for i, d := range production {
		if i >= r.KeepDeployed {
			break
		}
		if d.ArtifactDigest != "" {
			plan.Keep[d.ArtifactDigest] = true
		}
	}
}

// PruneStats is what removing unneeded artifact sets removed.
type PruneStats struct {
	Sets  int   // artifact sets (manifests) removed
	Blobs int   // distinct file contents removed
	Bytes int64 // bytes of those contents
	// Digests are the sets removed, for PruneTx.RecordPruned.
	Digests []string
}

// PruneTx records when retention removed artifact sets, so the history can
// say "pruned by retention on <date>" of a build it can no longer restore.
type PruneTx interface {
	// RecordPruned records that retention removed the artifact sets
	// digests at at (a set recorded before takes the new time: it was
	// kept again meanwhile, by an identical build).
	RecordPruned(ctx context.Context, digests []string, at time.Time) error
	// PrunedAt returns when each of digests was last recorded pruned; a
	// digest never recorded is not in the map.
	PrunedAt(ctx context.Context, digests []string) (map[string]time.Time, error)
}
