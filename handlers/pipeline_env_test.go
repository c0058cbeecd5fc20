package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
	"github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/state"
)

// sampleRepo is a real git repository whose build writes a fresh random
// nonce into its artifact and whose deploy and test scripts record what
// they ran, where and with which artifact, in record/.
type sampleRepo struct {
	t      testing.TB
	root   string // the git base: file://<root>/
	dir    string // <root>/Codertocat/Hello-World
	record string
}

const sampleBuild = `set -eu
mkdir -p dist
nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf 'commit=%s nonce=%s\n' "$STAGEHAND_COMMIT" "$nonce" > dist/app.txt
echo "build $STAGEHAND_PIPELINE #$STAGEHAND_EXECUTION $STAGEHAND_COMMIT" >> RECORD/builds.log
echo $$ > RECORD/build.pid
awk '{print $19}' /proc/self/stat >> RECORD/niceness.log
while [ -f RECORD/hold-build ]; do sleep 0.05; done
`

const sampleDeploy = `set -eu
sum=$(sha256sum "$STAGEHAND_ARTIFACTS/dist/app.txt" | cut -c1-64)
echo "deploy $STAGEHAND_ENVIRONMENT $STAGEHAND_PIPELINE #$STAGEHAND_EXECUTION $STAGEHAND_COMMIT $sum LOG_LEVEL=${LOG_LEVEL:-}" >> RECORD/deploys.log
mkdir -p RECORD/$STAGEHAND_ENVIRONMENT
cp "$STAGEHAND_ARTIFACTS/dist/app.txt" RECORD/$STAGEHAND_ENVIRONMENT/app.txt
`

const sampleSmoke = `set -eu
echo "test $STAGEHAND_PIPELINE #$STAGEHAND_EXECUTION $STAGEHAND_ENVIRONMENT" >> RECORD/tests.log
while [ -f RECORD/hold-tests ]; do sleep 0.05; done
`

// sampleConfig has the three pipelines; the test picks triggers.
func sampleConfig(pipelines string) string {
	return `version: 1
build: {run: bash build.sh, artifacts: [dist/**], timeout: 2m}
environments:
  stage:
    deploy: bash deploy.sh
    variables: {LOG_LEVEL: debug}
    tests: [{name: smoke, run: bash smoke.sh}]
  production:
    deploy: bash deploy.sh
    variables: {LOG_LEVEL: info}
pipelines:
` + pipelines
}

func newSampleRepo(t testing.TB, cfg string) *sampleRepo {
	t.Helper()
	root := t.TempDir()
	r := &sampleRepo{t: t, root: root, dir: filepath.Join(root, "Codertocat", "Hello-World"), record: filepath.Join(root, "record")}
	if err := os.MkdirAll(r.record, 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main", r.dir)
	r.commit("initial", map[string]string{
		".github/stagehand.yml": cfg,
		"build.sh":              strings.ReplaceAll(sampleBuild, "RECORD", r.record),
		"deploy.sh":             strings.ReplaceAll(sampleDeploy, "RECORD", r.record),
		"smoke.sh":              strings.ReplaceAll(sampleSmoke, "RECORD", r.record),
	})
	return r
}

func (r *sampleRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.com"}, args...)...)
	if args[0] != "init" {
		cmd.Dir = r.dir
	}
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files and commits them; it returns the new commit's sha.
func (r *sampleRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func (r *sampleRepo) readRecord(name string) string {
	b, err := os.ReadFile(filepath.Join(r.record, name))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

func (r *sampleRepo) lines(name string) []string {
	s := strings.TrimSpace(r.readRecord(name))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (r *sampleRepo) hold(name string) (release func()) {
	p := filepath.Join(r.record, name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return func() { os.Remove(p) }
}

// FetchFile reads a file at a commit from the sample repository, as the
// contents API would.
func (r *sampleRepo) FetchFile(ctx context.Context, inst int64, owner, repo, path, ref string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", r.dir, "show", ref+":"+path).Output()
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", path, ref, bot.ErrNotFound)
	}
	return out, nil
}

// testClock is a clock the test moves; it starts at the real time.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// pipelineEnv is the engine, a step worker and the push handler on one
// SQLite store, with jobs handed straight to the worker.
type pipelineEnv struct {
	t       testing.TB
	repo    *sampleRepo
	dataDir string
	clock   *testClock
	store   *state.SQLite
	engine  *bot.Engine
	worker  *worker.StepWorker
	jobs    *directJobs
	hooks   *webhook.Webhooks
	prog    bot.Program
}

// directJobs gives each job to the worker in its own goroutine.
type directJobs struct {
	mu     sync.Mutex
	worker *worker.StepWorker
	// running counts the jobs handed out and not finished. A job's end
	// publishes the next step's job before it is counted out, so zero
	// means the work has come to rest.
	running atomic.Int64
}

func (d *directJobs) PublishJob(ctx context.Context, j bot.Job) error {
	d.mu.Lock()
	w := d.worker
	d.mu.Unlock()
	d.running.Add(1)
	go func() {
		defer d.running.Add(-1)
		// Errors show up as steps that never finish; logging here could
		// outlive the test.
		_ = w.Start(context.Background(), j)
	}()
	return nil
}

func parseConfig(data []byte) (*bot.Config, bot.Diagnostics) {
	return config.ParseRepoConfig(config.RepoConfigPath, data)
}

func newPipelineEnv(t *testing.T, cfg string) *pipelineEnv {
	t.Helper()
	e := &pipelineEnv{t: t, repo: newSampleRepo(t, cfg), dataDir: t.TempDir(), clock: &testClock{}}
	e.open()
	return e
}

// open builds the engine and worker on the data directory (again, after
// a restart).
func (e *pipelineEnv) open() {
	t := e.t
	ctx := context.Background()
	store, err := state.OpenSQLite(ctx, filepath.Join(e.dataDir, "state.db"), state.WithClock(e.clock))
	if err != nil {
		t.Fatal(err)
	}
	arts, err := state.OpenArtifacts(filepath.Join(e.dataDir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(bot.ContextLogHandler{Handler: slog.NewTextHandler(os.Stderr, nil)})
	}
	git := &worker.GitRepos{BaseURL: "file://" + e.repo.root + "/", Scratch: filepath.Join(e.dataDir, "tmp"),
		Cache: &runner.CheckoutCache{Dir: filepath.Join(e.dataDir, "checkouts")}}
	jobs := &directJobs{}
	e.store = store
	policies := &webhook.Policies{Heads: git, Files: e.repo, Parse: parseConfig}
	e.engine = &bot.Engine{
		Store: store, Clock: e.clock, Jobs: jobs, Source: worker.RepoSource{GitRepos: git, Files: e.repo},
		ParseConfig: parseConfig, Policy: policies, Logger: logger, PublicURL: "http://stagehand.test", Artifacts: arts,
	}
	e.worker = &worker.StepWorker{Engine: e.engine, Git: git, Artifacts: arts, DataDir: e.dataDir,
		Path: os.Getenv("PATH"), Logger: logger, Heartbeat: 100 * time.Millisecond}
	jobs.worker = e.worker
	e.jobs = jobs
	e.hooks = &webhook.Webhooks{Store: store, Engine: e.engine, Files: e.repo, Policies: policies, ParseConfig: parseConfig, Clock: e.clock, Logger: logger}
	t.Cleanup(e.close)
}

func (e *pipelineEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.worker.Shutdown(ctx)
	_ = e.store.Close()
}

// restart stops everything (commands in flight are stopped) and opens it
// again on the same data directory, as a restarted server would.
func (e *pipelineEnv) restart() {
	e.close()
	e.open()
	if err := e.engine.Reconcile(context.Background()); err != nil {
		e.t.Fatalf("reconcile after restart: %v", err)
	}
}

var pushCount int

// push sends the push webhook of the repository's current head on main.
func (e *pipelineEnv) push() string {
	e.t.Helper()
	sha := e.repo.git("rev-parse", "HEAD")
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload("push/branch-created.json"), &p); err != nil {
		e.t.Fatal(err)
	}
	p["ref"], p["after"], p["created"] = "refs/heads/main", sha, false
	p["repository"].(map[string]any)["default_branch"] = "main"
	body, _ := json.Marshal(p)
	pushCount++
	d := webhook.Delivery{GUID: fmt.Sprintf("push-%d-%s", pushCount, sha), Event: "push", Payload: body}
	if err := e.hooks.HandleDelivery(context.Background(), d); err != nil {
		e.t.Fatalf("push of %s: %v", sha, err)
	}
	if e.prog.ID == 0 {
		e.view(func(tx bot.Tx) error {
			var err error
			e.prog, err = tx.ProgramByName(context.Background(), "Codertocat", "Hello-World")
			return err
		})
	}
	return sha
}

func (e *pipelineEnv) view(fn func(tx bot.Tx) error) {
	e.t.Helper()
	if err := e.store.View(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *pipelineEnv) execution(n int) (bot.Execution, []bot.Step) {
	e.t.Helper()
	var ex bot.Execution
	var steps []bot.Step
	e.view(func(tx bot.Tx) error {
		var err error
		if ex, err = tx.ExecutionByNumber(context.Background(), e.prog.ID, n); err != nil {
			return err
		}
		steps, err = tx.Steps(context.Background(), ex.ID)
		return err
	})
	return ex, steps
}

// waitFor waits until execution n satisfies ok.
func (e *pipelineEnv) waitFor(n int, what string, ok func(bot.Execution, []bot.Step) bool) bot.Execution {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ex, steps := e.execution(n)
		if ok(ex, steps) {
			return ex
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("execution #%d never became %s; it is %s (%q), steps: %s", n, what, ex.State, ex.Message, describeSteps(steps))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *pipelineEnv) waitState(n int, st bot.ExecutionState) bot.Execution {
	e.t.Helper()
	return e.waitFor(n, string(st), func(ex bot.Execution, _ []bot.Step) bool { return ex.State == st })
}

// waitStep waits until a step of execution n is in a state.
func (e *pipelineEnv) waitStep(n int, name bot.StepName, st bot.StepState) {
	e.t.Helper()
	e.waitFor(n, fmt.Sprintf("at %s %s", name, st), func(_ bot.Execution, steps []bot.Step) bool {
		for _, s := range steps {
			if s.Name == name && s.State == st && (st != bot.StepRunning || s.Attempt > 0) {
				return true
			}
		}
		return false
	})
}

func describeSteps(steps []bot.Step) string {
	var parts []string
	for _, s := range steps {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", s.Name, s.State, s.Message))
	}
	return strings.Join(parts, " ")
}

func stepStates(steps []bot.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, string(s.Name)+":"+string(s.State))
	}
	return out
}
