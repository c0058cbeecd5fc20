package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// quorumConfig is what quorumYAML parses to with production changed by edit.
func quorumConfig(edit func(*bot.Environment)) *bot.Config {
	c := minimalConfig()
	c.Production = &bot.Environment{Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout}
	c.Pipelines[bot.ProdOnly] = bot.PipelineConfig{Approval: true}
	edit(c.Production)
	return c
}

// quorumCases are the approval quorum (approvers.required) and the
// break-glass switch (break_glass), valid and invalid, with the exact
// position of every diagnostic.
var quorumCases = []parseCase{
	{
		name: "quorum of two users and a team, break-glass off",
		yaml: calendarYAML("    approvers: {users: [alice, bob], teams: [acme/release], required: 3}\n    break_glass: false\n"),
		want: quorumConfig(func(e *bot.Environment) {
			e.Approvers = bot.Approvers{Users: []string{"alice", "bob"}, Teams: []string{"acme/release"}, Required: 3}
			e.BreakGlassOff = true
		}),
	},
	{
		name: "quorum of anyone with write permission, break-glass on",
		yaml: calendarYAML("    approvers: {required: 2}\n    break_glass: true\n"),
		want: quorumConfig(func(e *bot.Environment) { e.Approvers.Required = 2 }),
	},
	{
		name: "quorum of every listed user",
		yaml: calendarYAML("    approvers:\n      users: [alice, bob]\n      required: 2\n"),
		want: quorumConfig(func(e *bot.Environment) { e.Approvers = bot.Approvers{Users: []string{"alice", "bob"}, Required: 2} }),
	},
	{
		name: "quorum of every listed user, who may not approve what they promote",
		yaml: calendarYAML("    approvers:\n      users: [alice, bob]\n      required: 2\n    prevent_self_approval: true\n"),
		want: quorumConfig(func(e *bot.Environment) {
			e.Approvers = bot.Approvers{Users: []string{"alice", "bob"}, Required: 2}
			e.PreventSelfApproval = true
		}),
		diags: bot.Diagnostics{warnAt(9, 7, "environments.production.approvers.required: required: 2 is every listed user and prevent_self_approval is on: a deploy promoted or started by one of them can never gather 2 approvals (they may not approve it); list more users or a team")},
	},
	{
		name:  "required larger than the users listed",
		yaml:  calendarYAML("    approvers:\n      users: [alice, bob]\n      required: 3\n"),
		diags: bot.Diagnostics{errAt(9, 17, "environments.production.approvers.required: required: 3 needs 3 distinct approvers, but users lists only 2 (alice, bob) and no team; list more users or teams, or lower required")},
	},
	{
		name: "the same user twice does not make two approvers",
		yaml: calendarYAML("    approvers:\n      users: [alice, Alice]\n      required: 2\n"),
		diags: bot.Diagnostics{
			errAt(8, 22, "environments.production.approvers.users[1]: Alice is listed twice (the first at line 8); each approver counts once"),
		},
	},
	{
		name:  "required zero",
		yaml:  calendarYAML("    approvers: {required: 0}\n"),
		diags: bot.Diagnostics{errAt(7, 27, "environments.production.approvers.required: required must be a whole number from 1 to 20, got 0")},
	},
	{
		name:  "required negative",
		yaml:  calendarYAML("    approvers: {required: -1}\n"),
		diags: bot.Diagnostics{errAt(7, 27, "environments.production.approvers.required: required must be a whole number from 1 to 20, got -1")},
	},
	{
		name:  "required too large",
		yaml:  calendarYAML("    approvers: {teams: [acme/all], required: 21}\n"),
		diags: bot.Diagnostics{errAt(7, 46, "environments.production.approvers.required: required must be a whole number from 1 to 20, got 21")},
	},
	{
		name:  "required as words",
		yaml:  calendarYAML("    approvers: {required: two}\n"),
		diags: bot.Diagnostics{errAt(7, 27, `environments.production.approvers.required: expected the number of approvals a production deploy needs, such as 2, got the string "two"`)},
	},
	{
		name:  "required as a fraction",
		yaml:  calendarYAML("    approvers: {required: 1.5}\n"),
		diags: bot.Diagnostics{errAt(7, 27, "environments.production.approvers.required: expected the number of approvals a production deploy needs, such as 2, got the number 1.5")},
	},
	{
		name:  "required without a value",
		yaml:  calendarYAML("    approvers:\n      required:\n"),
		diags: bot.Diagnostics{errAt(8, 7, "environments.production.approvers.required: expected the number of approvals a production deploy needs, such as 2, got nothing")},
	},
	{
		name:  "break_glass not a boolean",
		yaml:  calendarYAML("    break_glass: no-way\n"),
		diags: bot.Diagnostics{errAt(7, 18, `environments.production.break_glass: expected true or false, got the string "no-way"`)},
	},
	{
		name: "break_glass on stage",
		yaml: `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh, break_glass: false}
pipelines:
  stage-only: {branch: main}
`,
		diags: bot.Diagnostics{errAt(4, 32, "environments.stage.break_glass: break_glass is allowed on production only: the break-glass override (/stagehand deploy-now --override) is a production action; move it to environments.production")},
	},
	{
		name:  "an unknown key beside required",
		yaml:  calendarYAML("    approvers: {users: [alice], quorum: 2}\n"),
		diags: bot.Diagnostics{errAt(7, 33, "environments.production.approvers.quorum: unknown key; allowed here: users, teams, required")},
	},
}

func TestParseQuorumAndBreakGlass(t *testing.T) {
	for _, tc := range quorumCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(tc.yaml))
			if diff := cmp.Diff(tc.diags, diags); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}
