package handlers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// testSandbox is the bubblewrap sandbox hiding dataDir; without bwrap the
// test is skipped, unless STAGEHAND_TEST_SANDBOX=1 demands it (CI).
func testSandbox(t testing.TB, dataDir string) *runner.Sandbox {
	t.Helper()
	p, err := runner.LookBwrap()
	if err != nil {
		if os.Getenv("STAGEHAND_TEST_SANDBOX") == "1" {
			t.Fatalf("STAGEHAND_TEST_SANDBOX=1 but %v (apt-get install bubblewrap)", err)
		}
		t.Skipf("%v; install it (apt-get install bubblewrap) to run this test", err)
	}
	return &runner.Sandbox{Bwrap: p, Hide: []string{dataDir}}
}

// cacheAttackBuild is a hostile build: it tries to reach the kept
// checkouts in the data directory and to change them, and damages its own
// checkout (a changed script, a planted file, no .git objects), hoping the
// deploy and the test that follow get its version.
const cacheAttackBuild = `set -u
echo "== cache"; ls -la DATADIR/checkouts 2>&1
for d in DATADIR/checkouts/*/; do echo 'echo pwned' > "$d/check.sh" && echo "WROTE $d"; done 2>&1
echo 'echo pwned' > check.sh; echo planted > planted.txt; rm -rf .git/objects
mkdir -p dist && echo built > dist/app.txt
`

// cacheCheck fails unless the checkout is the commit as pushed.
const cacheCheck = `set -eu
test "$(git rev-parse HEAD)" = "$STAGEHAND_COMMIT"
test -z "$(git status --porcelain)"
test ! -e planted.txt
grep -q pristine check.sh
echo "checkout intact"
`

// TestCheckoutCacheAttack: a build that changes its checkout and goes for
// the kept checkouts leaves the deploy and the stage test of its execution
// (which copy the kept checkout) with the commit as pushed; in the
// sandbox it cannot even see the kept checkouts.
func TestCheckoutCacheAttack(t *testing.T) {
	dataDir := t.TempDir()
	cfg := `version: 1
build: {run: bash build.sh, artifacts: [dist/**]}
environments:
  stage:
    deploy: bash check.sh
    tests: [{name: intact, run: bash check.sh}]
  production: {deploy: "true"}
pipelines:
` + splitPipelines
	e := &pipelineEnv{t: t, repo: newSampleRepo(t, cfg), dataDir: dataDir, clock: &testClock{}}
	e.repo.commit("hostile", map[string]string{
		"build.sh": strings.ReplaceAll(cacheAttackBuild, "DATADIR", dataDir),
		"check.sh": "# pristine\n" + cacheCheck,
	})
	e.open()
	e.worker.Sandbox = testSandbox(t, dataDir)
	e.push()
	ex := e.waitFor(1, "ended", func(ex bot.Execution, _ []bot.Step) bool { return !ex.State.Active() })
	logs := worker.LogFiles{DataDir: dataDir}
	read := func(step bot.StepName) string {
		b, err := os.ReadFile(logs.File(ex.ID, step))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	build := read(bot.StepBuild)
	if ex.State != bot.ExecutionSucceeded {
		_, steps := e.execution(1)
		t.Fatalf("execution %s (%s), steps %s\nbuild log:\n%s\ndeploy log:\n%s", ex.State, ex.Message, describeSteps(steps), build, read(bot.StepDeployStage))
	}
	if strings.Contains(build, "WROTE") || !strings.Contains(build, "No such file or directory") {
		t.Errorf("the build saw the kept checkouts:\n%s", build)
	}
	for _, step := range []bot.StepName{bot.StepDeployStage, bot.StepStageTests} {
		if log := read(step); !strings.Contains(log, "checkout intact") {
			t.Errorf("%s log:\n%s", step, log)
		}
	}
	// The kept checkout itself is as fetched.
	kept, _ := filepath.Glob(filepath.Join(dataDir, "checkouts", "*", "check.sh"))
	if len(kept) != 1 {
		t.Fatalf("kept checkouts: %q, want one", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || !strings.HasPrefix(string(b), "# pristine") {
		t.Errorf("kept check.sh: %q, %v", b, err)
	}
}
