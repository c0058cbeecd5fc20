package config

import (
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

// ruleCases are files that are well formed but break rule H or another
// constraint of (*bot.Config).Check, reported at the key Check names.
var ruleCases = []parseCase{
	{
		name: "rule H: prod-only without stage-only",
		yaml: `version: 1
environments:
  production: {deploy: ./deploy.sh}
pipelines:
  prod-only: {}
`,
		diags: bot.Diagnostics{errAt(5, 3, "pipelines.prod-only: a prod-only pipeline requires a stage-only pipeline: it deploys the artifacts of a stage-only execution")},
	},
	{
		name: "rule H: prod-only with a trigger",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
  prod-only:
    trigger: on-git-changes
`,
		diags: bot.Diagnostics{errAt(9, 5, "pipelines.prod-only.trigger: a prod-only pipeline cannot have a trigger: it starts only when a stage-only execution is promoted")},
	},
	{
		name: "rule H: prod-only with a trigger that is not even valid",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
  prod-only: {trigger: 5}
`,
		diags: bot.Diagnostics{errAt(8, 15, "pipelines.prod-only.trigger: a prod-only pipeline cannot have a trigger: it starts only when a stage-only execution is promoted")},
	},
	{
		name: "rule H: duplicate pipeline kind",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
  stage-only: {branch: develop, trigger: on-git-changes}
`,
		diags: bot.Diagnostics{errAt(7, 3, "pipelines.stage-only: duplicate pipeline kind: a program has at most one stage-only pipeline (the first is at line 6); remove one")},
	},
	{
		name: "branch on prod-only",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
  prod-only: {branch: main, approval: false}
`,
		diags: bot.Diagnostics{errAt(8, 15, "pipelines.prod-only.branch: a prod-only pipeline has no branch: it deploys the commit of the stage-only execution it promotes")},
	},
	{
		name: "approval on stage-only",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only:
    branch: main
    approval: true
`,
		diags: bot.Diagnostics{errAt(6, 3, "pipelines.stage-only: a stage-only pipeline ends after its stage tests; approval and scheduled apply to full-stack and prod-only only")},
	},
	{
		name: "scheduled on stage-only",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main, scheduled: true}
`,
		diags: bot.Diagnostics{errAt(6, 3, "pipelines.stage-only: a stage-only pipeline ends after its stage tests; approval and scheduled apply to full-stack and prod-only only")},
	},
	{
		name: "bad trigger value",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main, trigger: push}
`,
		diags: bot.Diagnostics{errAt(6, 39, `pipelines.stage-only.trigger: unknown trigger "push"; use manual or on-git-changes`)},
	},
	{
		name: "branch given as a ref",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: refs/heads/main}
`,
		diags: bot.Diagnostics{errAt(6, 24, "pipelines.stage-only.branch: write the branch name without refs/heads/: main")},
	},
	{
		name: "stage-only without a branch",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {trigger: on-git-changes}
`,
		diags: bot.Diagnostics{errAt(6, 3, "pipelines.stage-only: stage-only needs a branch (for example branch: main)")},
	},
	{
		name: "missing build for stage-only",
		yaml: `version: 1
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{errAt(5, 3, "pipelines.stage-only: stage-only builds the commit, so the file needs a build section with run and artifacts")},
	},
	{
		name: "missing stage environment",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  production: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{errAt(6, 3, "pipelines.stage-only: stage-only deploys to stage, so the file needs environments.stage")},
	},
	{
		name: "full-stack without environments falls back to the top of the file",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
pipelines:
  full-stack: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(1, 1, "environments: a pipeline that deploys to production needs environments.production"),
			errAt(4, 3, "pipelines.full-stack: full-stack deploys to stage, so the file needs environments.stage"),
		},
	},
	{
		name: "no pipeline",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines: {}
`,
		diags: bot.Diagnostics{errAt(5, 1, "pipelines: no pipeline is configured; add at least one of full-stack, stage-only or prod-only")},
	},
	{
		name: "pipelines as a list is one error",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines: [stage-only]
`,
		diags: bot.Diagnostics{errAt(5, 12, "pipelines: expected a mapping with keys full-stack, stage-only, prod-only, got a list")},
	},
}

func TestLookupFallsBackToParent(t *testing.T) {
	w := newWalker(RepoConfigPath)
	w.pos["pipelines"] = pos{5, 1}
	w.pos["pipelines.prod-only"] = pos{7, 3}
	tests := []struct {
		path      string
		line, col int
	}{
		{"pipelines.prod-only", 7, 3},
		{"pipelines.prod-only.trigger", 7, 3},
		{"pipelines.full-stack", 5, 1},
		{"environments", 1, 1},
		{"", 1, 1},
	}
	for _, tt := range tests {
		line, col := w.lookup(tt.path)
		if line != tt.line || col != tt.col {
			t.Errorf("lookup(%q) = %d:%d, want %d:%d", tt.path, line, col, tt.line, tt.col)
		}
	}
}
