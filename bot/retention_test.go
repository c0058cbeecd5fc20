package bot

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetentionPlan(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	finished := func(id int64, n int, kind PipelineKind, st ExecutionState, digest string, ago time.Duration) Execution {
		return Execution{ID: id, Number: n, Pipeline: kind, State: st, ArtifactDigest: digest, FinishedAt: now.Add(-ago)}
	}
	active := func(id int64, n int, kind PipelineKind, st ExecutionState, digest string, source int64) Execution {
		return Execution{ID: id, Number: n, Pipeline: kind, State: st, ArtifactDigest: digest, SourceID: source}
	}
	policy := Retention{Age: 30 * day, KeepPromotable: 2}

	tests := []struct {
		name     string
		policy   Retention
		execs    []Execution
		deployed []Deployment
		wantKeep []string
		wantLogs []int64
	}{
		{
			name:   "recent executions keep everything",
			policy: policy,
			execs: []Execution{
				finished(1, 1, StageOnly, ExecutionFailed, "a", 29*day),
				finished(2, 2, FullStack, ExecutionSucceeded, "b", time.Hour),
			},
			wantKeep: []string{"a", "b"},
		},
		{
			name:   "old executions lose logs and artifacts",
			policy: policy,
			execs: []Execution{
				finished(1, 1, StageOnly, ExecutionFailed, "a", 31*day),
				finished(2, 2, FullStack, ExecutionSucceeded, "b", 40*day),
				finished(3, 3, FullStack, ExecutionCancelled, "", 40*day),
			},
			wantLogs: []int64{1, 2, 3},
		},
		{
			name:   "deployed sets stay whatever their age",
			policy: policy,
			execs: []Execution{
				finished(1, 1, FullStack, ExecutionSucceeded, "on-stage", 90*day),
				finished(2, 2, ProdOnly, ExecutionSucceeded, "in-production", 90*day),
			},
			deployed: []Deployment{
				{Environment: Stage, ArtifactDigest: "on-stage"},
				{Environment: Production, ArtifactDigest: "in-production"},
			},
			wantKeep: []string{"in-production", "on-stage"},
			wantLogs: []int64{1, 2},
		},
		{
			name:   "the newest successful stage-only sets stay promotable",
			policy: policy,
			execs: []Execution{
				finished(1, 1, StageOnly, ExecutionSucceeded, "s1", 100*day),
				finished(2, 2, StageOnly, ExecutionSucceeded, "s2", 90*day),
				finished(3, 3, StageOnly, ExecutionFailed, "s3", 80*day),
				finished(4, 4, StageOnly, ExecutionSucceeded, "s4", 70*day),
			},
			wantKeep: []string{"s2", "s4"},
			wantLogs: []int64{1, 2, 3, 4},
		},
		{
			name:   "an active prod-only keeps its old source's set",
			policy: Retention{Age: 30 * day},
			execs: []Execution{
				finished(1, 1, StageOnly, ExecutionSucceeded, "src", 60*day),
				active(2, 2, ProdOnly, ExecutionWaiting, "", 1),
				active(3, 3, StageOnly, ExecutionRunning, "", 0),
			},
			wantKeep: []string{"src"},
			wantLogs: []int64{1},
		},
		{
			name:   "zero age keeps everything",
			policy: Retention{},
			execs: []Execution{
				finished(1, 1, StageOnly, ExecutionFailed, "a", 3000*day),
			},
			wantKeep: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := tt.policy.Plan(now, tt.execs, tt.deployed)
			var keep []string
			for d := range plan.Keep {
				keep = append(keep, d)
			}
			sort.Strings(keep)
			if diff := cmp.Diff(tt.wantKeep, keep); diff != "" {
				t.Errorf("kept sets (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLogs, plan.DropLogs); diff != "" {
				t.Errorf("logs dropped (-want +got):\n%s", diff)
			}
		})
	}
}
