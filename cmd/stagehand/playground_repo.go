package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// playground is the tour's world: a GitHub stand-in, a bare repository
// with a push hook, a working copy, and the directories the sample deploy
// scripts publish stage and production to.
type playground struct {
	dir    string
	gh     *githubtest.Server
	keyPEM []byte
	secret []byte
	logger *slog.Logger
	bare   string // the repository GitHub would host
	work   string // your working copy
	sites  string // sites/stage and sites/production
	base   string // http://127.0.0.1:<port>, once listening
	store  bot.Store
	// sandboxNote says on the page that steps run without a sandbox.
	sandboxNote string
	// clientSecret is the stand-in App's client secret, made at every
	// start: the dashboard signs in through the stand-in's OAuth pages.
	clientSecret []byte

	// token is made anew at every start: the playground's forms carry it
	// and its push hook reads it from hookTokenFile; a state-changing
	// request without it is refused (see playground_guard.go).
	token string
	// publicHost is the host name of the URL the playground prints
	// (localhost unless --listen names another): a request addressed to it
	// comes from the playground's own pages.
	publicHost string

	mu      sync.Mutex // one push at a time
	changes int
}

const sampleConfigYAML = `# Stagehand's sample configuration: see the README for every key.
version: 1
build:
  run: bash build.sh          # makes dist/index.html, stamped with the commit
  artifacts: [dist/**]
  timeout: 5m
environments:
  stage:
    deploy: bash deploy.sh    # publishes $STAGEHAND_ARTIFACTS to the stage site
    url: %[1]s/playground/sites/stage/
    variables: {GREETING: "Hello from stage"}
    tests:
      - {name: smoke, run: bash smoke.sh, timeout: 1m}
  production:
    deploy: bash deploy.sh
    url: %[1]s/playground/sites/production/
    variables: {GREETING: "Hello from production"}
    secrets: [DEPLOY_TOKEN]   # its value comes from the server, never from GitHub (--secrets-dir)
pipelines:
  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {approval: true, scheduled: false}
commands:
  bare_aliases: true
`

const sampleBuildScript = `set -eu
mkdir -p dist
build_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
message=$(cat message.txt)
cat > dist/index.html <<HTML
<!doctype html>
<html><head><meta charset="utf-8"><title>Sample shop</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem;} .b{font-family:monospace;background:#eef;padding:.2rem .4rem}</style></head>
<body><h1>$message</h1>
<p>Commit <span class="b" id="commit">${STAGEHAND_COMMIT:0:7}</span>,
build <span class="b" id="build">$build_id</span> (made once by $STAGEHAND_PIPELINE #$STAGEHAND_EXECUTION).</p>
</body></html>
HTML
echo "built dist/index.html for ${STAGEHAND_COMMIT:0:7}: build $build_id"
`

const sampleDeployScript = `set -eu
site="SITES/$STAGEHAND_ENVIRONMENT"
mkdir -p "$site.new"
cp -R "$STAGEHAND_ARTIFACTS/dist/." "$site.new/"
printf '%s #%s %s\n' "$STAGEHAND_PIPELINE" "$STAGEHAND_EXECUTION" "$STAGEHAND_COMMIT" > "$site.new/deployed-by.txt"
rm -rf "$site.old"
if [ -d "$site" ]; then mv "$site" "$site.old"; fi
mv "$site.new" "$site"
echo "$GREETING: deployed ${STAGEHAND_COMMIT:0:7} to $STAGEHAND_ENVIRONMENT ($STAGEHAND_ENVIRONMENT_URL)"
if [ -n "${DEPLOY_TOKEN:-}" ]; then
  # A real deploy would hand it to its tool; Stagehand shows *** in the log.
  echo "authorized with DEPLOY_TOKEN=$DEPLOY_TOKEN"
fi
`

const sampleSmokeScript = `set -eu
grep -q 'id="build"' "$STAGEHAND_ARTIFACTS/dist/index.html"
grep -q "${STAGEHAND_COMMIT:0:7}" SITES/stage/index.html
echo "smoke test passed: stage serves ${STAGEHAND_COMMIT:0:7}"
`

// secretsDir is the playground's secret source: production's DEPLOY_TOKEN,
// a random value made at the first start, as an operator would provide it
// (<dir>/<owner>/<repo>/<environment>/<NAME>).
func (pg *playground) secretsDir() (string, error) {
	dir := filepath.Join(pg.dir, "secrets")
	file := filepath.Join(dir, playgroundOwner, playgroundRepo, "production", "DEPLOY_TOKEN")
	if _, err := os.Stat(file); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", fmt.Errorf("creating the playground's secrets directory: %w", err)
	}
	value := make([]byte, 16)
	if _, err := rand.Read(value); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte("pg_"+hex.EncodeToString(value)), 0o600); err != nil {
		return "", fmt.Errorf("writing the playground's sample secret: %w", err)
	}
	return dir, nil
}

// git runs git in dir with a fixed identity.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=You", "-c", "user.email=you@playground.invalid", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// initRepository creates the sample repository on the first start.
func (pg *playground) initRepository(public string) error {
	if _, err := os.Stat(pg.work); err == nil {
		return pg.configureWorkCopy() // made by an earlier start
	}
	for _, d := range []string{filepath.Dir(pg.bare), filepath.Dir(pg.work), pg.sites} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	if _, err := git(filepath.Dir(pg.bare), "init", "-q", "--bare", "-b", "main", pg.bare); err != nil {
		return err
	}
	if _, err := git(filepath.Dir(pg.work), "init", "-q", "-b", "main", pg.work); err != nil {
		return err
	}
	sites := func(s string) string { return strings.ReplaceAll(s, "SITES", pg.sites) }
	files := map[string]string{
		".github/stagehand.yml": fmt.Sprintf(sampleConfigYAML, strings.TrimRight(public, "/")),
		"build.sh":              sampleBuildScript,
		"deploy.sh":             sites(sampleDeployScript),
		"smoke.sh":              sites(sampleSmokeScript),
		"message.txt":           "Welcome to the sample shop",
		"README.md":             "# Sample shop\n\nEdit message.txt, commit and `git push`: Stagehand builds it once, deploys it to stage, tests it, and waits for you to promote it.\n",
	}
	for name, content := range files {
		p := filepath.Join(pg.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "Sample shop"}, {"remote", "add", "origin", pg.bare}, {"push", "-q", "-u", "origin", "main"}} {
		if _, err := git(pg.work, args...); err != nil {
			return err
		}
	}
	return pg.configureWorkCopy()
}

// configureWorkCopy makes a plain "git commit" and "git push" work in the
// working copy, as the README's tour says: an identity of its own (a machine
// without a global user.name and user.email refuses to commit otherwise)
// and main tracking origin/main. Working copies of earlier versions get it
// on their next start.
func (pg *playground) configureWorkCopy() error {
	for _, args := range [][]string{
		{"config", "user.name", "You"},
		{"config", "user.email", "you@playground.invalid"},
		{"branch", "--set-upstream-to=origin/main", "main"},
	} {
		if _, err := git(pg.work, args...); err != nil {
			return fmt.Errorf("preparing the working copy %s: %w", pg.work, err)
		}
	}
	return nil
}

// hookTokenFile is where the push hook finds the token of the running
// playground: a file only its user can read.
func (pg *playground) hookTokenFile() string { return filepath.Join(pg.dir, "hook-token") }

// installHook makes a real git push into the sample repository send the
// push webhook, through the "playground-hook" command of the stagehand
// binary exe, which proves itself with the token it reads from
// hookTokenFile.
func (pg *playground) installHook(exe string) error {
	if err := writePrivateFile(pg.hookTokenFile(), []byte(pg.token+"\n")); err != nil {
		return fmt.Errorf("writing the push hook's token: %w", err)
	}
	hook := fmt.Sprintf("#!/bin/sh\n# Installed by stagehand playground: tells it about every push, which sends GitHub's push webhook.\nexec %q playground-hook %q %q\n",
		exe, pg.base+"/playground/hook", pg.hookTokenFile())
	return os.WriteFile(filepath.Join(pg.bare, "hooks", "post-receive"), []byte(hook), 0o755)
}

// writePrivateFile replaces path with a file that only its owner can read
// (mode 0600 even when an earlier file had another mode).
func writePrivateFile(path string, content []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(content)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// pushChange commits a visible change in the working copy and pushes it:
// the push hook then sends the webhook, as on GitHub.
func (pg *playground) pushChange() (string, error) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	pg.changes++
	msg := fmt.Sprintf("Change %d at %s", pg.changes, time.Now().Format("15:04:05"))
	if err := os.WriteFile(filepath.Join(pg.work, "message.txt"), []byte(msg), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}, {"push", "-q", "origin", "main"}} {
		if _, err := git(pg.work, args...); err != nil {
			return "", err
		}
	}
	return git(pg.work, "rev-parse", "HEAD")
}
