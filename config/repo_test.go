package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stagehand-dev/stagehand/bot"
)

// parseCase is one file of the ParseRepoConfig table. want is nil for an
// invalid file; diags is the exact list of diagnostics, in order.
type parseCase struct {
	name  string
	yaml  string
	want  *bot.Config
	diags bot.Diagnostics
}

// errAt and warnAt build the expected diagnostics of the table.
func errAt(line, col int, msg string) bot.Diagnostic {
	return bot.Diagnostic{Path: RepoConfigPath, Line: line, Column: col, Message: msg}
}

func warnAt(line, col int, msg string) bot.Diagnostic {
	return bot.Diagnostic{Path: RepoConfigPath, Line: line, Column: col, Message: msg, Severity: bot.SeverityWarning}
}

// mixedWarning is Check's warning for full-stack next to split pipelines.
const mixedWarning = "pipelines.full-stack: full-stack together with stage-only/prod-only pipelines is allowed but not recommended: promoting older stage-only artifacts can roll production back"

const minimalYAML = `version: 1
build:
  run: make dist
  artifacts: [dist/**]
environments:
  stage:
    deploy: ./deploy.sh
pipelines:
  stage-only: {branch: main}
`

// minimalConfig is what minimalYAML parses to; tests change a copy.
func minimalConfig() *bot.Config {
	return &bot.Config{
		Version: 1,
		Build:   &bot.Build{Run: "make dist", Artifacts: []string{"dist/**"}, Timeout: bot.DefaultBuildTimeout},
		Stage:   &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout},
		Pipelines: map[bot.PipelineKind]bot.PipelineConfig{
			bot.StageOnly: {Branch: "main", Trigger: bot.TriggerManual},
		},
	}
}

// with returns minimalConfig changed by edit.
func with(edit func(c *bot.Config)) *bot.Config {
	c := minimalConfig()
	edit(c)
	return c
}

var validCases = []parseCase{
	{
		name: "minimal stage-only",
		yaml: minimalYAML,
		want: minimalConfig(),
	},
	{
		name: "windows line endings",
		yaml: strings.ReplaceAll(minimalYAML, "\n", "\r\n"),
		want: minimalConfig(),
	},
	{
		name: "example of SPEC section 3 warns once",
		yaml: `version: 1
build:
  run: make dist          # bash -eo pipefail, in a fresh checkout of the commit
  artifacts: [dist/**]    # globs; a build that matches no file fails
  timeout: 30m
environments:
  stage:
    deploy: ./deploy.sh   # runs in a checkout of the commit; artifacts in $STAGEHAND_ARTIFACTS
    url: https://stage.example.com
    variables: {LOG_LEVEL: debug}
    tests:
      - {name: smoke, run: ./smoke.sh, timeout: 10m}
  production:
    deploy: ./deploy.sh
    url: https://example.com
    approvers: {users: [octocat], teams: [acme/release-managers]}  # default: write permission
    prevent_self_approval: true   # the person who triggered or promoted may not approve
pipelines:
  full-stack: {branch: main, trigger: manual}
  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {approval: true, scheduled: false}
commands:
  bare_aliases: true      # accept /promote as well as /stagehand promote
`,
		want: &bot.Config{
			Version: 1,
			Build:   &bot.Build{Run: "make dist", Artifacts: []string{"dist/**"}, Timeout: 30 * time.Minute},
			Stage: &bot.Environment{
				Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout, URL: "https://stage.example.com",
				Variables: map[string]string{"LOG_LEVEL": "debug"},
				Tests:     []bot.Test{{Name: "smoke", Run: "./smoke.sh", Timeout: 10 * time.Minute}},
			},
			Production: &bot.Environment{
				Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout, URL: "https://example.com",
				Approvers:           bot.Approvers{Users: []string{"octocat"}, Teams: []string{"acme/release-managers"}},
				PreventSelfApproval: true,
			},
			Pipelines: map[bot.PipelineKind]bot.PipelineConfig{
				bot.FullStack: {Branch: "main", Trigger: bot.TriggerManual, Approval: true},
				bot.StageOnly: {Branch: "main", Trigger: bot.TriggerOnGitChanges},
				bot.ProdOnly:  {Approval: true},
			},
			BareAliases: true,
		},
		diags: bot.Diagnostics{warnAt(19, 3, mixedWarning)},
	},
	{
		name: "stage-only and prod-only",
		yaml: `version: 1
build:
  run: make dist
  artifacts: [dist/**, "**/*.tar.gz"]
  timeout: 1h30m
environments:
  stage:
    deploy: ./deploy.sh
  production:
    deploy: ./deploy.sh
    deploy_timeout: 45m
    prevent_self_approval: true
pipelines:
  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {scheduled: true}
`,
		want: with(func(c *bot.Config) {
			c.Build.Artifacts = []string{"dist/**", "**/*.tar.gz"}
			c.Build.Timeout = 90 * time.Minute
			c.Production = &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: 45 * time.Minute, PreventSelfApproval: true}
			c.Pipelines[bot.StageOnly] = bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerOnGitChanges}
			c.Pipelines[bot.ProdOnly] = bot.PipelineConfig{Approval: true, Scheduled: true}
		}),
	},
	{
		name: "full-stack only",
		yaml: `version: 1
build: {run: make dist, artifacts: ['out/[a-z]*.zip']}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh, approvers: {teams: [acme/ops]}}
pipelines:
  full-stack:
    branch: release
    approval: false
`,
		want: with(func(c *bot.Config) {
			c.Build.Artifacts = []string{"out/[a-z]*.zip"}
			c.Production = &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout,
				Approvers: bot.Approvers{Teams: []string{"acme/ops"}}}
			c.Pipelines = map[bot.PipelineKind]bot.PipelineConfig{
				bot.FullStack: {Branch: "release", Trigger: bot.TriggerManual},
			}
		}),
	},
	{
		name: "numbers and booleans as variable values keep their text",
		yaml: `version: 1
build:
  run: make dist
  artifacts: [dist/**]
environments:
  stage:
    deploy: ./deploy.sh
    variables:
      REPLICAS: 3
      RATIO: 1.50
      MASK: 0x1F
      DEBUG: true
      NAME: "quoted"
      EMPTY: ""
      ANSWER_: yes
pipelines:
  stage-only: {branch: main}
`,
		want: with(func(c *bot.Config) {
			c.Stage.Variables = map[string]string{
				"REPLICAS": "3", "RATIO": "1.50", "MASK": "0x1F", "DEBUG": "true",
				"NAME": "quoted", "EMPTY": "", "ANSWER_": "yes",
			}
		}),
	},
	{
		name: "declared secrets",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    secrets: [DEPLOY_TOKEN, KUBECONFIG]
pipelines:
  stage-only: {branch: main}
`,
		want: with(func(c *bot.Config) {
			c.Stage.Secrets = []string{"DEPLOY_TOKEN", "KUBECONFIG"}
		}),
	},
	{
		name: "block strings, tests and their default timeout",
		yaml: `version: 1
build:
  run: |
    make deps
    make dist
  artifacts:
    - dist/**
environments:
  stage:
    deploy: >-
      ./deploy.sh
      --env stage
    url: http://localhost:8080/app
    tests:
      - name: smoke
        run: ./smoke.sh
      - name: e2e
        run: ./e2e.sh
        timeout: 1h
pipelines:
  stage-only:
    branch: main
    trigger: on-git-changes
commands:
  bare_aliases: false
`,
		want: with(func(c *bot.Config) {
			c.Build.Run = "make deps\nmake dist\n"
			c.Stage.Deploy = "./deploy.sh --env stage"
			c.Stage.URL = "http://localhost:8080/app"
			c.Stage.Tests = []bot.Test{
				{Name: "smoke", Run: "./smoke.sh", Timeout: bot.DefaultTestTimeout},
				{Name: "e2e", Run: "./e2e.sh", Timeout: time.Hour},
			}
			c.Pipelines[bot.StageOnly] = bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerOnGitChanges}
		}),
	},
	{
		name: "anchors and aliases are followed",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: &deploy ./deploy.sh
    variables: &vars {REGION: eu-west-1}
  production:
    deploy: *deploy
    variables: *vars
pipelines:
  stage-only: {branch: main}
  prod-only: {}
`,
		want: with(func(c *bot.Config) {
			c.Stage.Variables = map[string]string{"REGION": "eu-west-1"}
			c.Production = &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout,
				Variables: map[string]string{"REGION": "eu-west-1"}}
			c.Pipelines[bot.ProdOnly] = bot.PipelineConfig{Approval: true}
		}),
	},
	{
		name: "full-stack with stage-only is a warning",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh}
pipelines:
  full-stack: {branch: main}
  stage-only: {branch: main}
`,
		want: with(func(c *bot.Config) {
			c.Production = &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout}
			c.Pipelines[bot.FullStack] = bot.PipelineConfig{Branch: "main", Trigger: bot.TriggerManual, Approval: true}
		}),
		diags: bot.Diagnostics{warnAt(7, 3, mixedWarning)},
	},
	{
		name: "full-stack with stage-only and prod-only is a warning",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
  prod-only: {approval: false}
  full-stack: {branch: release, trigger: on-git-changes}
`,
		want: with(func(c *bot.Config) {
			c.Production = &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout}
			c.Pipelines[bot.ProdOnly] = bot.PipelineConfig{}
			c.Pipelines[bot.FullStack] = bot.PipelineConfig{Branch: "release", Trigger: bot.TriggerOnGitChanges, Approval: true}
		}),
		diags: bot.Diagnostics{warnAt(9, 3, mixedWarning)},
	},
	{
		name: "approval and scheduled written false on stage-only",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main, approval: false, scheduled: false}
`,
		want: minimalConfig(),
	},
	{
		name: "keys without values are empty sections",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    variables:
    tests:
pipelines:
  stage-only: {branch: main}
commands:
`,
		want: minimalConfig(),
	},
}

func TestParseRepoConfig(t *testing.T) {
	cases := append(append(append([]parseCase{}, validCases...), fileErrorCases...), ruleCases...)
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases are named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(tc.yaml))
			if diff := cmp.Diff(tc.diags, diags); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if tc.want == nil && cfg == nil && diags.Err() == nil {
				t.Errorf("no config and no error")
			}
		})
	}
}

func TestValidateFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(good, []byte(minimalYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("version: 1\nbuild: {run: make dist, artifacts: [dist/**]}\nbuidl: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ds, err := ValidateFile(good)
	if err != nil || len(ds) != 0 {
		t.Errorf("ValidateFile(good) = %v, %v; want no diagnostics", ds, err)
	}

	ds, err = ValidateFile(bad)
	if err != nil {
		t.Fatalf("ValidateFile(bad): %v", err)
	}
	want := bot.Diagnostics{
		{Path: bad, Line: 1, Column: 1, Message: "pipelines: no pipeline is configured; add at least one of full-stack, stage-only or prod-only"},
		{Path: bad, Line: 3, Column: 1, Message: "buidl: unknown top-level key; allowed here: version, build, environments, pipelines, commands, notifications"},
	}
	if diff := cmp.Diff(want, ds); diff != "" {
		t.Errorf("ValidateFile(bad) (-want +got):\n%s", diff)
	}

	missing := filepath.Join(dir, "missing.yml")
	_, err = ValidateFile(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("ValidateFile(missing) = %v, want an error naming the file and wrapping fs.ErrNotExist", err)
	}
}

// FuzzParseRepoConfig checks that no input panics, that a config comes back
// exactly when there is no error, and that every diagnostic has a position.
func FuzzParseRepoConfig(f *testing.F) {
	for _, cases := range [][]parseCase{validCases, fileErrorCases, ruleCases} {
		for _, tc := range cases {
			f.Add(tc.yaml)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(src))
		if (cfg == nil) != (diags.Err() != nil) {
			t.Fatalf("config %v with diagnostics %v", cfg, diags)
		}
		for _, d := range diags {
			if d.Line < 1 || d.Column < 1 || d.Message == "" {
				t.Fatalf("bad diagnostic %#v", d)
			}
		}
	})
}
