package handlers

import (
	"os"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/runner"
)

// TestRelativeDataDir: with a relative data directory (the default is
// ./stagehand-data) the deploy still finds its artifact set: the
// workspace, and so HOME and STAGEHAND_ARTIFACTS, are absolute paths, valid
// from the checkout the script runs in.
func TestRelativeDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("stagehand-data", 0o750); err != nil {
		t.Fatal(err)
	}
	e := &pipelineEnv{t: t, repo: newSampleRepo(t, sampleConfig(splitPipelines)), dataDir: "stagehand-data", clock: &testClock{}}
	e.open()
	defer e.close()
	e.push()
	if ex := e.waitState(1, bot.ExecutionSucceeded); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("%s: %s", ex, ex.Message)
	}
	if got := e.repo.lines("deploys.log"); len(got) != 1 {
		t.Errorf("stage deploys = %q, want one", got)
	}
}

// TestStepsRunBelowTheServersPriority: the sample build records its
// niceness, which is runner.StepNice.
func TestStepsRunBelowTheServersPriority(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig(splitPipelines))
	defer e.close()
	e.push()
	if ex := e.waitState(1, bot.ExecutionSucceeded); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("%s: %s", ex, ex.Message)
	}
	if diff := cmp.Diff([]string{strconv.Itoa(runner.StepNice)}, e.repo.lines("niceness.log")); diff != "" {
		t.Errorf("the build's niceness (-want +got):\n%s", diff)
	}
}
