package bot

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCheckVariableName: the names /stagehand env set and the
// configuration accept (SPEC §3), and the ones that would change how a
// step's shell, loader or git behave.
func TestCheckVariableName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"LOG_LEVEL", true},
		{"A", true},
		{"API_URL_2", true},
		{"lower", false},
		{"_LEADING", false},
		{"1ST", false},
		{"MY-VAR", false},
		{"", false},
		{"BASH_ENV", false},
		{"ENV", false},
		{"SHELLOPTS", false},
		{"BASHOPTS", false},
		{"PS4", false},
		{"PROMPT_COMMAND", false},
		{"IFS", false},
		{"PATH", false},
		{"HOME", false},
		{"LD_PRELOAD", false},
		{"LD_LIBRARY_PATH", false},
		{"GIT_SSH_COMMAND", false},
		{"GIT_CONFIG_GLOBAL", false},
		{"STAGEHAND_COMMIT", false},
		{"BASH_FUNC_X%%", false},
		{"NODE_OPTIONS", false},
		{"PYTHONSTARTUP", false},
	} {
		err := CheckVariableName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckVariableName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestMergePolicy: an execution takes only its commands from the commit
// being built; pipelines, gates, approvers, URLs and variables come from
// the default branch's policy, even when the commit's file says otherwise.
func TestMergePolicy(t *testing.T) {
	commands := &Config{
		Version: 1,
		Build:   &Build{Run: "make evil", Artifacts: []string{"dist/**"}},
		Stage:   &Environment{Deploy: "./deploy.sh stage", Variables: map[string]string{"LOG_LEVEL": "evil"}, Tests: []Test{{Name: "smoke", Run: "./smoke.sh"}}},
		Production: &Environment{Deploy: "./deploy.sh prod", URL: "https://evil.example.com",
			Approvers: Approvers{}, PreventSelfApproval: false},
		Pipelines:   map[PipelineKind]PipelineConfig{FullStack: {Branch: "evil", Trigger: TriggerOnGitChanges, Approval: false}},
		BareAliases: true,
	}
	policy := &Config{
		Version:    1,
		Build:      &Build{Run: "make dist"},
		Stage:      &Environment{Deploy: "./policy-deploy.sh", URL: "https://stage.example.com", Variables: map[string]string{"LOG_LEVEL": "debug"}},
		Production: &Environment{URL: "https://example.com", Approvers: Approvers{Users: []string{"octocat"}}, PreventSelfApproval: true},
		Pipelines:  map[PipelineKind]PipelineConfig{StageOnly: {Branch: "main", Trigger: TriggerOnGitChanges}, ProdOnly: {Approval: true}},
	}
	want := &Config{
		Version: 1,
		Build:   &Build{Run: "make evil", Artifacts: []string{"dist/**"}},
		Stage: &Environment{Deploy: "./deploy.sh stage", Tests: []Test{{Name: "smoke", Run: "./smoke.sh"}},
			URL: "https://stage.example.com", Variables: map[string]string{"LOG_LEVEL": "debug"}},
		Production: &Environment{Deploy: "./deploy.sh prod", URL: "https://example.com",
			Approvers: Approvers{Users: []string{"octocat"}}, PreventSelfApproval: true},
		Pipelines: map[PipelineKind]PipelineConfig{StageOnly: {Branch: "main", Trigger: TriggerOnGitChanges}, ProdOnly: {Approval: true}},
	}
	if diff := cmp.Diff(want, MergePolicy(commands, policy)); diff != "" {
		t.Errorf("MergePolicy (-want +got):\n%s", diff)
	}
	// Without a policy, nothing of the commit's policy survives.
	got := MergePolicy(commands, nil)
	if len(got.Pipelines) != 0 || got.BareAliases || got.Production.URL != "" || got.Stage.Variables != nil {
		t.Errorf("MergePolicy(commands, nil) kept policy from the commit: %+v", got)
	}
}
