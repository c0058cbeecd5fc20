package handlers

import (
	"os"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
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
