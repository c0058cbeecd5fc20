package worker

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// TestStepEnvDropsDeniedNames: a variable stored before names were checked
// (BASH_ENV, LD_PRELOAD, GIT_*) never reaches a step's environment.
func TestStepEnvDropsDeniedNames(t *testing.T) {
	c := bot.Claim{
		Program:   bot.Program{Owner: "acme", Repo: "app"},
		Execution: bot.Execution{Pipeline: bot.StageOnly, Number: 3, Commit: "c0ffee", Branch: "main"},
		Step:      bot.Step{Name: bot.StepDeployStage},
		Config:    &bot.Config{Stage: &bot.Environment{URL: "https://stage.example.com"}},
		Variables: map[string]string{"LOG_LEVEL": "debug", "BASH_ENV": "/tmp/evil", "LD_PRELOAD": "/tmp/evil.so", "GIT_SSH_COMMAND": "evil", "lower": "x"},
	}
	want := map[string]string{
		"STAGEHAND_REPOSITORY": "acme/app", "STAGEHAND_PIPELINE": "stage-only", "STAGEHAND_EXECUTION": "3",
		"STAGEHAND_COMMIT": "c0ffee", "STAGEHAND_BRANCH": "main", "STAGEHAND_ENVIRONMENT": "stage",
		"STAGEHAND_ENVIRONMENT_URL": "https://stage.example.com", "STAGEHAND_ARTIFACTS": "/artifacts",
		"LOG_LEVEL": "debug",
	}
	if diff := cmp.Diff(want, stepEnv(c, "/artifacts")); diff != "" {
		t.Errorf("stepEnv (-want +got):\n%s", diff)
	}
}
