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
		want []decisionWords
	}{
		{
			name: "both on git changes on the pushed branch: only stage-only starts",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: onMain, ProdOnly: prod}),
			push: pushMain,
			want: []decisionWords{
				{Pipeline: FullStack, Reason: "full-stack not started: stage-only has priority on main"},
				{Pipeline: StageOnly, Start: true},
				{Pipeline: ProdOnly, Reason: "prod-only not started: it never starts on a push; promote a stage-only execution instead"},
			},
		},
		{
			name: "only full-stack configured",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain}),
			push: pushMain,
			want: []decisionWords{{Pipeline: FullStack, Start: true}},
		},
		{
			name: "only stage-only configured",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain}),
			push: pushMain,
			want: []decisionWords{{Pipeline: StageOnly, Start: true}},
		},
		{
			name: "full-stack on git changes, stage-only manual: full-stack starts",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: manualMain}),
			push: pushMain,
			want: []decisionWords{
				{Pipeline: FullStack, Start: true},
				{Pipeline: StageOnly, Reason: "stage-only not started: its trigger is manual (start it with /stagehand run stage-only)"},
			},
		},
		{
			name: "stage-only follows another branch: full-stack starts",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: onDev}),
			push: pushMain,
			want: []decisionWords{
				{Pipeline: FullStack, Start: true},
				{Pipeline: StageOnly, Reason: "stage-only not started: it follows branch dev, the push was to main"},
			},
		},
		{
			name: "push to another branch starts nothing",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: onMain, StageOnly: onMain}),
			push: Push{Ref: "refs/heads/feature/x", After: "c3"},
			want: []decisionWords{
				{Pipeline: FullStack, Reason: "full-stack not started: it follows branch main, the push was to feature/x"},
				{Pipeline: StageOnly, Reason: "stage-only not started: it follows branch main, the push was to feature/x"},
			},
		},
		{
			name: "tag push starts nothing",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain}),
			push: Push{Ref: "refs/tags/v1.0.0", After: "d4", Created: true},
			want: []decisionWords{
				{Pipeline: StageOnly, Reason: "stage-only not started: pushes of tags (refs/tags/v1.0.0) start nothing"},
			},
		},
		{
			name: "branch deletion starts nothing",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain, FullStack: onMain}),
			push: Push{Ref: "refs/heads/main", Before: "e5", After: "0000000000000000000000000000000000000000", Deleted: true},
			want: []decisionWords{
				{Pipeline: FullStack, Reason: "full-stack not started: the branch main was deleted"},
				{Pipeline: StageOnly, Reason: "stage-only not started: the branch main was deleted"},
			},
		},
		{
			name: "force push starts like any push",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain, FullStack: onMain}),
			push: Push{Ref: "refs/heads/main", Before: "f6", After: "a7", Forced: true},
			want: []decisionWords{
				{Pipeline: FullStack, Reason: "full-stack not started: stage-only has priority on main"},
				{Pipeline: StageOnly, Start: true},
			},
		},
		{
			name: "branch creation starts like any push",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onDev}),
			push: Push{Ref: "refs/heads/dev", Before: "0000000000000000000000000000000000000000", After: "b8", Created: true},
			want: []decisionWords{{Pipeline: StageOnly, Start: true}},
		},
		{
			name: "prod-only declaring a trigger still never starts on a push",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{StageOnly: onMain, ProdOnly: onMain}),
			push: pushMain,
			want: []decisionWords{
				{Pipeline: StageOnly, Start: true},
				{Pipeline: ProdOnly, Reason: "prod-only not started: it never starts on a push; promote a stage-only execution instead"},
			},
		},
		{
			name: "manual full-stack alone",
			cfg:  pipelines(map[PipelineKind]PipelineConfig{FullStack: manualMain}),
			push: pushMain,
			want: []decisionWords{
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
			got := wordsOf(DecideTriggers(tt.cfg, tt.push))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecideTriggers() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// decisionWords is a TriggerDecision with its reason in words.
type decisionWords struct {
	Pipeline PipelineKind
	Start    bool
	Reason   string
}

func wordsOf(ds []TriggerDecision) []decisionWords {
	var out []decisionWords
	for _, d := range ds {
		out = append(out, decisionWords{Pipeline: d.Pipeline, Start: d.Start, Reason: d.Reason.String()})
	}
	return out
}

// TestDecideTriggersCodes: each decision not to start carries the code of
// its reason and the pipeline it is about; a start carries none.
func TestDecideTriggersCodes(t *testing.T) {
	onMain := PipelineConfig{Branch: "main", Trigger: TriggerOnGitChanges}
	cfg := pipelines(map[PipelineKind]PipelineConfig{
		FullStack: onMain, StageOnly: onMain, ProdOnly: {Approval: true},
	})
	codes := func(push Push) map[PipelineKind]ReasonCode {
		out := map[PipelineKind]ReasonCode{}
		for _, d := range DecideTriggers(cfg, push) {
			if d.Start != (d.Reason.Code == "") || d.Reason.Code != "" && d.Reason.Pipeline != d.Pipeline {
				t.Errorf("decision %+v: a start has no reason, a reason names its pipeline", d)
			}
			out[d.Pipeline] = d.Reason.Code
		}
		return out
	}
	tests := []struct {
		push Push
		want map[PipelineKind]ReasonCode
	}{
		{Push{Ref: "refs/heads/main", After: "a1"}, map[PipelineKind]ReasonCode{FullStack: ReasonPriority, StageOnly: "", ProdOnly: ReasonNeverOnPush}},
		{Push{Ref: "refs/heads/dev", After: "a1"}, map[PipelineKind]ReasonCode{FullStack: ReasonOtherBranch, StageOnly: ReasonOtherBranch, ProdOnly: ReasonNeverOnPush}},
		{Push{Ref: "refs/tags/v1", After: "a1"}, map[PipelineKind]ReasonCode{FullStack: ReasonTag, StageOnly: ReasonTag, ProdOnly: ReasonTag}},
		{Push{Ref: "refs/heads/main", Deleted: true}, map[PipelineKind]ReasonCode{FullStack: ReasonBranchDeleted, StageOnly: ReasonBranchDeleted, ProdOnly: ReasonBranchDeleted}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, codes(tt.push)); diff != "" {
			t.Errorf("push of %s: codes (-want +got):\n%s", tt.push.Ref, diff)
		}
	}
}

// TestTriggerReasonWords: the reasons about a whole push, in words.
func TestTriggerReasonWords(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	problems := Diagnostics{
		{Path: ".github/stagehand.yml", Line: 2, Column: 3, Message: "build.run: required"},
		{Path: ".github/stagehand.yml", Line: 4, Column: 1, Message: "unwise", Severity: SeverityWarning},
	}
	tests := []struct {
		r    TriggerReason
		want string
	}{
		{TriggerReason{}, ""},
		{TriggerReason{Code: ReasonQueued, Pipeline: StageOnly, Execution: "stage-only #4", Commit: sha}, "stage-only #4 queued by the push of 0123456"},
		{TriggerReason{Code: ReasonNoFile, Repo: "acme/app", Commit: sha}, "nothing started: acme/app has no .github/stagehand.yml at 0123456"},
		{TriggerReason{Code: ReasonNoCommands, Repo: "acme/app", Commit: sha}, "nothing started: acme/app has no .github/stagehand.yml at 0123456 to take the build and deploy commands from"},
		{TriggerReason{Code: ReasonInvalidFile, Commit: sha, Problems: problems}, "nothing started: .github/stagehand.yml at 0123456 is invalid (1 problems); fix it and push again:\n.github/stagehand.yml:2:3: build.run: required"},
		{TriggerReason{Code: ReasonNoPolicy, Repo: "acme/app", Policy: "main at 0123456"}, "nothing started: acme/app has no .github/stagehand.yml on its default branch (main at 0123456), which is where pipelines are declared"},
		{TriggerReason{Code: ReasonInvalidPolicy, Refusal: "the policy is invalid"}, "nothing started: the policy is invalid"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%s: String() = %q, want %q", tt.r.Code, got, tt.want)
		}
	}
}
