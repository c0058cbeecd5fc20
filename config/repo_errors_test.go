package config

import "github.com/stagehand-dev/stagehand/bot"

// fileErrorCases are files the walk itself refuses: syntax, structure, keys,
// types and values. Each is otherwise valid, so the list is exactly the
// errors of the case.
var fileErrorCases = []parseCase{
	{
		name:  "empty file",
		yaml:  "",
		diags: bot.Diagnostics{errAt(1, 1, "the file is empty; write at least version: 1, a build section, environments and pipelines")},
	},
	{
		name:  "file of comments only",
		yaml:  "# stagehand config, to do\n\n",
		diags: bot.Diagnostics{errAt(1, 1, "the file is empty; write at least version: 1, a build section, environments and pipelines")},
	},
	{
		name:  "document is a list",
		yaml:  "- version: 1\n- build: {run: make}\n",
		diags: bot.Diagnostics{errAt(1, 1, "the file must be a mapping with keys such as version, build, environments and pipelines, got a list")},
	},
	{
		name:  "document is a string",
		yaml:  "# comment\nstagehand\n",
		diags: bot.Diagnostics{errAt(2, 1, `the file must be a mapping with keys such as version, build, environments and pipelines, got the string "stagehand"`)},
	},
	{
		name:  "syntax error: unclosed flow sequence",
		yaml:  "version: 1\nbuild: {run: make dist, artifacts: [dist/**}\n",
		diags: bot.Diagnostics{errAt(2, 44, "yaml syntax error: ',' or ']' must be specified")},
	},
	{
		name:  "syntax error: tab indentation",
		yaml:  "version: 1\n\tbuild: x\n",
		diags: bot.Diagnostics{errAt(2, 1, "yaml syntax error: found character '\t' that cannot start any token")},
	},
	{
		name:  "two documents",
		yaml:  minimalYAML + "---\nversion: 1\n",
		diags: bot.Diagnostics{errAt(11, 1, "the file holds 2 YAML documents; keep one and remove the others (and their --- lines)")},
	},
	{
		name: "missing version",
		yaml: `build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{errAt(1, 1, "version: required; add version: 1 at the top of the file")},
	},
	{
		name:  "wrong version",
		yaml:  "version: 2\n" + minimalYAML[len("version: 1\n"):],
		diags: bot.Diagnostics{errAt(1, 10, "version: unsupported version 2; this Stagehand reads version: 1")},
	},
	{
		name:  "version as a string",
		yaml:  "version: \"1\"\n" + minimalYAML[len("version: 1\n"):],
		diags: bot.Diagnostics{errAt(1, 10, `version: expected the integer 1, got the string "1"`)},
	},
	{
		name:  "tags are refused",
		yaml:  "version: !!int 1\n" + minimalYAML[len("version: 1\n"):],
		diags: bot.Diagnostics{errAt(1, 10, "version: expected the integer 1, got a value tagged !!int (tags are not supported; remove the tag)")},
	},
	{
		name: "empty and blank strings",
		yaml: `version: 1
build: {run: "", artifacts: [dist/**]}
environments:
  stage: {deploy: "   "}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(2, 14, "build.run: expected the build command as a string, such as make dist, got an empty string"),
			errAt(4, 19, "environments.stage.deploy: expected the deploy command as a string, such as ./deploy.sh, got an empty string"),
		},
	},
	{
		name:  "unknown top-level key",
		yaml:  minimalYAML + "notify: {slack: '#deploys'}\n",
		diags: bot.Diagnostics{errAt(10, 1, "notify: unknown top-level key; allowed here: version, build, environments, pipelines, commands, notifications")},
	},
	{
		name: "unknown nested keys",
		yaml: `version: 1
build:
  run: make dist
  artifacts: [dist/**]
  cache: true
environments:
  stage: {deploy: ./deploy.sh, tests: [{name: smoke, run: ./smoke.sh, retries: 2}]}
pipelines:
  stage-only: {branch: main, on: push}
`,
		diags: bot.Diagnostics{
			errAt(5, 3, "build.cache: unknown key; allowed here: run, artifacts, timeout"),
			errAt(7, 71, "environments.stage.tests[0].retries: unknown key; allowed here: name, run, timeout"),
			errAt(9, 30, "pipelines.stage-only.on: unknown key; allowed here: branch, trigger, approval, scheduled"),
		},
	},
	{
		name:  "unknown pipeline kind",
		yaml:  minimalYAML + "  prod_only: {}\n",
		diags: bot.Diagnostics{errAt(10, 3, "pipelines.prod_only: unknown pipeline kind; allowed here: full-stack, stage-only, prod-only")},
	},
	{
		name: "unknown environment name",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  staging: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{errAt(5, 3, "environments.staging: unknown environment; allowed here: stage, production")},
	},
	{
		name: "duplicate key",
		yaml: `version: 1
build:
  run: make
  artifacts: [dist/**]
  run: make dist
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{errAt(5, 3, "build.run: duplicate key (the first is at line 3); remove one")},
	},
	{
		name: "bad durations",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**], timeout: 30 minutes}
environments:
  stage:
    deploy: ./deploy.sh
    deploy_timeout: 30
    tests:
      - {name: smoke, run: ./smoke.sh, timeout: true}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(2, 56, `build.timeout: invalid duration "30 minutes": write a number with a unit, such as 90s, 30m or 1h30m`),
			errAt(6, 21, "environments.stage.deploy_timeout: expected a duration such as 30m, got the number 30"),
			errAt(8, 49, "environments.stage.tests[0].timeout: expected a duration such as 30m, got the boolean true"),
		},
	},
	{
		name: "negative and zero durations",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**], timeout: -5m}
environments:
  stage: {deploy: ./deploy.sh, deploy_timeout: 0s}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(2, 56, "build.timeout: the duration must be positive, got -5m"),
			errAt(4, 48, "environments.stage.deploy_timeout: the duration must be positive, got 0s"),
		},
	},
	{
		name: "bad globs",
		yaml: `version: 1
build:
  run: make dist
  artifacts:
    - "dist/[a-"
    - dist/../../etc/passwd
    - /tmp/out/**
    - ./dist/**
    - ""
    - 42
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(5, 7, `build.artifacts[0]: invalid artifact glob "dist/[a-": syntax error in pattern (see Go's path.Match for the syntax)`),
			errAt(6, 7, `build.artifacts[1]: invalid artifact glob "dist/../../etc/passwd": artifacts must stay inside the checkout; remove the .. segments`),
			errAt(7, 7, `build.artifacts[2]: invalid artifact glob "/tmp/out/**": globs are relative to the root of the checkout; remove the leading /`),
			errAt(8, 7, `build.artifacts[3]: invalid artifact glob "./dist/**": write it as "dist/**"`),
			errAt(9, 7, "build.artifacts[4]: expected artifact globs such as dist/**, got an empty string"),
			errAt(10, 7, "build.artifacts[5]: expected artifact globs such as dist/**, got the number 42"),
		},
	},
	{
		name: "empty artifacts and missing run",
		yaml: `version: 1
build:
  artifacts: []
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(2, 1, "build.run: required; add run: with the command that builds the commit, such as make dist"),
			errAt(3, 14, "build.artifacts: list at least one glob of the files the build produces, such as [dist/**]"),
		},
	},
	{
		name: "missing deploy and build section of the wrong type",
		yaml: `version: 1
build: make dist
environments:
  stage:
    url: https://stage.example.com
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(2, 8, `build: expected a mapping with keys run, artifacts, timeout, got the string "make dist"`),
			errAt(4, 3, "environments.stage.deploy: required; add deploy: with the command that deploys the artifacts, such as ./deploy.sh"),
		},
	},
	{
		name: "bad urls",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh, url: stage.example.com}
  production: {deploy: ./deploy.sh, url: "ftp://example.com"}
pipelines:
  stage-only: {branch: main}
  prod-only: {}
`,
		diags: bot.Diagnostics{
			errAt(4, 37, `environments.stage.url: expected an absolute http(s) URL such as https://stage.example.com, got "stage.example.com"`),
			errAt(5, 42, `environments.production.url: expected an absolute http(s) URL such as https://stage.example.com, got "ftp://example.com"`),
		},
	},
	{
		name: "bad variable names and values",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    variables:
      1ST: a
      MY-VAR: b
      STAGEHAND_COMMIT: c
      LIST: [a, b]
      UNSET:
      BASH_ENV: /tmp/x
      LD_PRELOAD: /tmp/x.so
      GIT_SSH_COMMAND: x
      lower: d
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(7, 7, `environments.stage.variables.1ST: "1ST" is not a valid variable name: use upper-case letters, digits and _, starting with a letter (^[A-Z][A-Z0-9_]*$)`),
			errAt(8, 7, `environments.stage.variables.MY-VAR: "MY-VAR" is not a valid variable name: use upper-case letters, digits and _, starting with a letter (^[A-Z][A-Z0-9_]*$)`),
			errAt(9, 7, `environments.stage.variables.STAGEHAND_COMMIT: "STAGEHAND_COMMIT" may not be set: names starting with STAGEHAND_ change how the loader or git behave, or are Stagehand's own`),
			errAt(10, 13, "environments.stage.variables.LIST: expected a string, number or boolean, got a list"),
			errAt(11, 7, `environments.stage.variables.UNSET: expected a string, number or boolean, got nothing; write UNSET: "" for an empty value`),
			errAt(12, 7, `environments.stage.variables.BASH_ENV: "BASH_ENV" may not be set: it changes how the shell, the loader, git or a language runtime behaves, or is set by Stagehand itself`),
			errAt(13, 7, `environments.stage.variables.LD_PRELOAD: "LD_PRELOAD" may not be set: names starting with LD_ change how the loader or git behave, or are Stagehand's own`),
			errAt(14, 7, `environments.stage.variables.GIT_SSH_COMMAND: "GIT_SSH_COMMAND" may not be set: names starting with GIT_ change how the loader or git behave, or are Stagehand's own`),
			errAt(15, 7, `environments.stage.variables.lower: "lower" is not a valid variable name: use upper-case letters, digits and _, starting with a letter (^[A-Z][A-Z0-9_]*$)`),
		},
	},
	{
		name: "secret names",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    secrets: [OK_TOKEN, LD_PRELOAD, lower, 42]
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(6, 25, `environments.stage.secrets[1]: "LD_PRELOAD" may not be set: names starting with LD_ change how the loader or git behave, or are Stagehand's own`),
			errAt(6, 37, `environments.stage.secrets[2]: "lower" is not a valid variable name: use upper-case letters, digits and _, starting with a letter (^[A-Z][A-Z0-9_]*$)`),
			errAt(6, 44, `environments.stage.secrets[3]: expected secret names such as DEPLOY_TOKEN, got the number 42`),
		},
	},
	{
		name: "duplicate test name and incomplete tests",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    tests:
      - name: smoke
        run: ./smoke.sh
      - name: smoke
        run: ./smoke-again.sh
      - run: ./e2e.sh
      - ./load.sh
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(9, 15, `environments.stage.tests[1].name: duplicate test name "smoke" (the first is at line 7); test names must be unique`),
			errAt(11, 9, "environments.stage.tests[2].name: required; give the test a name, such as name: smoke"),
			errAt(12, 9, `environments.stage.tests[3]: expected a mapping with keys name, run, timeout, got the string "./load.sh"`),
		},
	},
	{
		name: "approvers on stage",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    approvers: {users: [octocat]}
    prevent_self_approval: true
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(6, 5, "environments.stage.approvers: approvers is allowed on production only: stage deployments are never approved; move it to environments.production"),
			errAt(7, 5, "environments.stage.prevent_self_approval: prevent_self_approval is allowed on production only: stage deployments are never approved; move it to environments.production"),
		},
	},
	{
		name: "bad approvers",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production:
    deploy: ./deploy.sh
    approvers:
      users: ["@octocat", acme/ops]
      teams: [release-managers]
    prevent_self_approval: "yes"
pipelines:
  stage-only: {branch: main}
  prod-only: {}
`,
		diags: bot.Diagnostics{
			errAt(8, 15, `environments.production.approvers.users[0]: write the login "octocat" without the @`),
			errAt(8, 27, `environments.production.approvers.users[1]: "acme/ops" looks like a team; put it under teams`),
			errAt(9, 15, `environments.production.approvers.teams[0]: expected a team written org/team-slug, such as acme/release-managers, got "release-managers"`),
			errAt(10, 28, `environments.production.prevent_self_approval: expected true or false, got the string "yes"`),
		},
	},
	{
		name: "wrong scalar types",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: 2024, approval: yes}
commands: {bare_aliases: 1}
`,
		diags: bot.Diagnostics{
			errAt(6, 24, "pipelines.stage-only.branch: expected a branch name such as main, got the number 2024"),
			errAt(6, 40, `pipelines.stage-only.approval: expected true or false, got the string "yes"`),
			errAt(7, 26, "commands.bare_aliases: expected true or false, got the number 1"),
		},
	},
	{
		name: "merge keys are refused",
		yaml: `version: 1
build:
  <<: {run: make dist}
  artifacts: [dist/**]
environments:
  stage: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{
			errAt(2, 1, "build.run: required; add run: with the command that builds the commit, such as make dist"),
			errAt(3, 3, "build: merge keys (<<) are not supported; write the keys out"),
		},
	},
}
