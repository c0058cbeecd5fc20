package runner_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

// benchModes are the ways a step command runs: directly, as with
// --step-sandbox none, and in the bubblewrap sandbox.
func benchModes(b *testing.B) []struct {
	name    string
	sandbox *runner.Sandbox
} {
	return []struct {
		name    string
		sandbox *runner.Sandbox
	}{{"none", nil}, {"bwrap", testSandbox(b)}}
}

// runBench runs script in ws and fails the benchmark unless it exits 0.
func runBench(b *testing.B, sandbox *runner.Sandbox, ws, script string, env map[string]string) {
	var log strings.Builder
	src := filepath.Join(ws, "src")
	res, err := runner.Run(context.Background(), runner.Command{
		Script: script, Dir: src, Env: env, Path: os.Getenv("PATH"), Home: ws,
		Sandbox: sandbox, Writable: []string{ws}, Log: &log,
	})
	if err != nil || res.ExitCode != 0 {
		b.Fatalf("%q: %+v, %v\n%s", script, res, err, log.String())
	}
}

// BenchmarkStepStart is the cost of starting a step command: `true` run
// directly and in the sandbox (bwrap's namespaces, binds and /proc).
func BenchmarkStepStart(b *testing.B) {
	for _, m := range benchModes(b) {
		b.Run(m.name, func(b *testing.B) {
			ws := b.TempDir()
			if err := os.Mkdir(filepath.Join(ws, "src"), 0o755); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				runBench(b, m.sandbox, ws, "true", nil)
			}
		})
	}
}

// BenchmarkStageOnlySteps is the runner's part of a stage-only execution:
// its three steps (build, deploy to stage, a stage test), each a fresh
// checkout of a local repository and its command, as the step worker runs
// them. The engine, the store and the artifact store are not included.
func BenchmarkStageOnlySteps(b *testing.B) {
	base := b.TempDir()
	dir := filepath.Join(base, "acme", "app")
	files := map[string]string{
		"build.sh":  "mkdir -p dist && for i in 1 2 3; do echo \"$STAGEHAND_COMMIT $i\" > dist/part-$i.txt; done\n",
		"deploy.sh": "mkdir -p \"$HOME/site\" && cp -R dist/. \"$HOME/site/\" 2>/dev/null || true; echo deployed\n",
		"smoke.sh":  "grep -q . build.sh && echo ok\n",
	}
	for name, content := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "app"}} {
		cmd := exec.Command("git", append([]string{"-c", "user.name=B", "-c", "user.email=b@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		b.Fatal(err)
	}
	sha := strings.TrimSpace(string(out))
	env := map[string]string{"STAGEHAND_COMMIT": sha, "STAGEHAND_REPOSITORY": "acme/app"}
	for _, m := range benchModes(b) {
		b.Run(m.name, func(b *testing.B) {
			root := b.TempDir()
			n := 0
			for b.Loop() {
				for _, script := range []string{"bash build.sh", "bash deploy.sh", "bash smoke.sh"} {
					n++
					ws := filepath.Join(root, fmt.Sprint(n))
					spec := runner.CheckoutSpec{GitURL: "file://" + base + "/", Owner: "acme", Repo: "app", Commit: sha, Dir: filepath.Join(ws, "src")}
					if err := runner.Checkout(context.Background(), spec); err != nil {
						b.Fatal(err)
					}
					runBench(b, m.sandbox, ws, script, env)
					os.RemoveAll(ws)
				}
			}
		})
	}
}
