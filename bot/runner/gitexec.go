package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gitPassEnv lists the variables of the server's environment git may see:
// proxies and TLS trust settings. Everything else (HOME, XDG_*, GIT_*,
// credentials) stays out.
var gitPassEnv = []string{
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
	"TMPDIR",
}

// git runs git for one remote repository, isolated from the machine's git
// configuration: GIT_CONFIG_NOSYSTEM, no global config, a private empty
// HOME, no terminal prompts. Configuration, including the Authorization
// header, is passed as GIT_CONFIG_COUNT/KEY_n/VALUE_n environment variables
// so the token is in no process argument and in no file.
type git struct {
	url     string // clone URL, never with credentials
	file    bool   // file:// remote
	home    string
	env     []string
	secrets []string // strings redacted from every error
	// legacy disables the fetch-by-sha aids (protocol v2, the
	// allowAnySHA1InWant upload-pack on file:// remotes); tests use it to
	// reach the full-fetch fallback.
	legacy bool
}

func newGit(s CheckoutSpec) (*git, error) {
	base, clone, file, err := remoteURL(s)
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "stagehand-git-home-")
	if err != nil {
		return nil, err
	}
	g := &git{url: clone, file: file, home: home}
	cfg := [][2]string{
		{"protocol.version", "2"},
		{"advice.detachedHead", "false"},
		{"init.defaultBranch", "stagehand"},
		{"gc.auto", "0"},
		{"maintenance.auto", "false"},
		{"credential.helper", ""},
		// Environment config outranks a repository's own .git/config:
		// no hooks, no fsmonitor command, whatever that file says.
		{"core.hooksPath", os.DevNull},
		{"core.fsmonitor", "false"},
	}
	if s.Token != "" {
		basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + s.Token))
		// Scoped to the base URL: the header goes to that server only.
		cfg = append(cfg, [2]string{"http." + base + ".extraHeader", "Authorization: Basic " + basic})
		g.secrets = []string{basic, s.Token, base64.StdEncoding.EncodeToString([]byte(s.Token))}
		sort.Slice(g.secrets, func(i, j int) bool { return len(g.secrets[i]) > len(g.secrets[j]) })
	}
	g.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		// ResolveBranch runs in home: no repository above it may be used.
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(home),
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"LC_ALL=C",
		"GIT_CONFIG_COUNT=" + strconv.Itoa(len(cfg)),
	}
	for i, kv := range cfg {
		n := strconv.Itoa(i)
		g.env = append(g.env, "GIT_CONFIG_KEY_"+n+"="+kv[0], "GIT_CONFIG_VALUE_"+n+"="+kv[1])
	}
	for _, k := range gitPassEnv {
		if v, ok := os.LookupEnv(k); ok {
			g.env = append(g.env, k+"="+v)
		}
	}
	return g, nil
}

func (g *git) close() { os.RemoveAll(g.home) }

// run runs git in dir and returns its standard output. The whole process
// group (git and its helpers such as git-remote-https) is killed when ctx
// ends.
func (g *git) run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	var stdout bytes.Buffer
	stderr := &cappedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), &gitError{
			args:   g.redact(strings.Join(args, " ")),
			stderr: g.redact(strings.TrimSpace(stderr.String())),
			err:    err,
			ctxErr: ctx.Err(),
		}
	}
	return stdout.String(), nil
}

// redact replaces the token and its base64 forms with "***".
func (g *git) redact(s string) string {
	for _, secret := range g.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

type fetchMode int

const (
	fetchShallow   fetchMode = iota // --depth=1
	fetchFull                       // full history
	fetchUnshallow                  // full history of a shallow repository
)

// fetch fetches the given commits from the remote by sha. When that fails
// (servers that do not serve unadvertised objects), it fetches all
// branches and tags instead and checks that the commits arrived.
func (g *git) fetch(ctx context.Context, dir string, mode fetchMode, shas ...string) error {
	args := []string{"fetch", "-q", "--no-tags", "--no-recurse-submodules", "--no-write-fetch-head"}
	if mode == fetchUnshallow {
		args = append(args, "--unshallow")
	}
	byID := slices.Clone(args)
	if mode == fetchShallow {
		byID = append(byID, "--depth=1")
	}
	if g.file && !g.legacy {
		// Protocol v2 serves any object it has; for a v0 server the local
		// upload-pack is told to do the same. -c on our side would not
		// reach it: git clears GIT_CONFIG_* for local transports.
		byID = append(byID, "--upload-pack=git -c uploadpack.allowAnySHA1InWant=true upload-pack")
	}
	if g.legacy {
		byID = append([]string{"-c", "protocol.version=0"}, byID...)
	}
	byID = append(append(byID, g.url), shas...)
	// Objects fetched by sha have no ref; gc.auto=0 keeps them.
	_, firstErr := g.run(ctx, dir, byID...)
	if firstErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return firstErr
	}
	all := append(slices.Clone(args), g.url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
	if _, err := g.run(ctx, dir, all...); err != nil {
		return fmt.Errorf("%w (after fetch by sha: %v)", err, firstErr)
	}
	for _, sha := range shas {
		if !g.hasCommit(ctx, dir, sha) {
			return fmt.Errorf("commit %s not found in the repository (fetch by sha: %v)", sha, firstErr)
		}
	}
	return nil
}

func (g *git) hasCommit(ctx context.Context, dir, sha string) bool {
	_, err := g.run(ctx, dir, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

func (g *git) isShallow(ctx context.Context, dir string) (bool, error) {
	out, err := g.run(ctx, dir, "rev-parse", "--is-shallow-repository")
	return strings.TrimSpace(out) == "true", err
}

// gitError is a failed git command; its text holds git's standard error
// with the token redacted.
type gitError struct {
	args   string
	stderr string
	err    error
	ctxErr error
}

func (e *gitError) Error() string {
	msg := "git " + e.args + ": " + e.err.Error()
	if e.ctxErr != nil {
		msg += " (" + e.ctxErr.Error() + ")"
	}
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

// Unwrap lets errors.Is see context.Canceled and DeadlineExceeded.
func (e *gitError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.ctxErr, e.err}
	}
	return []error{e.err}
}

func (e *gitError) exitCode() int {
	var ee *exec.ExitError
	if errors.As(e.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
