package bot

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pipelines(ps map[PipelineKind]PipelineConfig) *Config {
	return &Config{Version: 1, Pipelines: ps}
}

// TestDecideTriggers is rule A: trigger priority on a push.
func TestDecideTriggers(t *testing.T) {
	onMain := PipelineConfig{Branch: "main", Trigger: TriggerOnGitChanges}
	onDev := PipelineConfig{Branch: "dev", Trigger: TriggerOnGitChanges}
	manualMain := PipelineConfig{Branch: "main", Trigger: TriggerManual}
	prod := PipelineConfig{Approval: true}
	pushMain := Push{Ref: "refs/heads/main", Before: "a1", After: "b2"}

	tests := []struct {
		name string
		cfg  *Config
		push Push
		want []TriggerDecision
	}{
		{
			name: "both on git changes on the pushed branch: only stage-only starts",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: onMain, ProdOnly: prod}),
			push: pushMain,
			want: []TriggerDecision{
				{Pipeline: FullStack, Reason: "full-stack not started: stage-only has priority on main"},
				{Pipeline: StageOnly, Start: true},
				{Pipeline: ProdOnly, Reason: "prod-only not started: it never starts on a push; promote a stage-only execution instead"},
			},
		},
		{
			name: "only full-stack configured",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain}),
			push: pushMain,
			want: []TriggerDecision{{Pipeline: FullStack, Start: true}},
		},
		{
			name: "only stage-only configured",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain}),
			push: pushMain,
			want: []TriggerDecision{{Pipeline: StageOnly, Start: true}},
		},
		{
			name: "full-stack on git changes, stage-only manual: full-stack starts",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: manualMain}),
			push: pushMain,
			want: []TriggerDecision{
				{Pipeline: FullStack, Start: true},
				{Pipeline: StageOnly, Reason: "stage-only not started: its trigger is manual (start it with /stagehand run stage-only)"},
			},
		},
		{
			name: "stage-only follows another branch: full-stack starts",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: onDev}),
			push: pushMain,
			want: []TriggerDecision{
				{Pipeline: FullStack, Start: true},
				{Pipeline: StageOnly, Reason: "stage-only not started: it follows branch dev, the push was to main"},
			},
		},
		{
			name: "push to another branch starts nothing",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: onMain}),
			push: Push{Ref: "refs/heads/feature/x", After: "c3"},
			want: []TriggerDecision{
				{Pipeline: FullStack, Reason: "full-stack not started: it follows branch main, the push was to feature/x"},
				{Pipeline: StageOnly, Reason: "stage-only not started: it follows branch main, the push was to feature/x"},
			},
		},
		{
			name: "tag push starts nothing",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain}),
			push: Push{Ref: "refs/tags/v1.0.0", After: "d4", Created: true},
			want: []TriggerDecision{
				{Pipeline: StageOnly, Reason: "stage-only not started: pushes of tags (refs/tags/v1.0.0) start nothing"},
			},
		},
		{
			name: "branch deletion starts nothing",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain, FullStack: onMain}),
			push: Push{Ref: "refs/heads/main", Before: "e5", After: "0000000000000000000000000000000000000000", Deleted: true},
			want: []TriggerDecision{
				{Pipeline: FullStack, Reason: "full-stack not started: the branch main was deleted"},
				{Pipeline: StageOnly, Reason: "stage-only not started: the branch main was deleted"},
			},
		},
		{
			name: "force push starts like any push",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain, FullStack: onMain}),
			push: Push{Ref: "refs/heads/main", Before: "f6", After: "a7", Forced: true},
			want: []TriggerDecision{
				{Pipeline: FullStack, Reason: "full-stack not started: stage-only has priority on main"},
				{Pipeline: StageOnly, Start: true},
			},
		},
		{
			name: "branch creation starts like any push",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onDev}),
			push: Push{Ref: "refs/heads/dev", Before: "0000000000000000000000000000000000000000", After: "b8", Created: true},
			want: []TriggerDecision{{Pipeline: StageOnly, Start: true}},
		},
		{
			name: "prod-only declaring a trigger still never starts on a push",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain, ProdOnly: onMain}),
			push: pushMain,
			want: []TriggerDecision{
				{Pipeline: StageOnly, Start: true},
				{Pipeline: ProdOnly, Reason: "prod-only not started: it never starts on a push; promote a stage-only execution instead"},
			},
		},
		{
			name: "manual full-stack alone",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: manualMain}),
			push: pushMain,
			want: []TriggerDecision{
				{Pipeline: FullStack, Reason: "full-stack not started: its trigger is manual (start it with /stagehand run full-stack)"},
			},
		},
		{
			name: "no pipelines: no decisions",
			cfg:  pipelines(nil),
			push: pushMain,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecideTriggers(tt.cfg, tt.push)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecideTriggers() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
