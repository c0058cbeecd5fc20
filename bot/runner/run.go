package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultKillGrace is how long Run waits between SIGTERM and SIGKILL.
const DefaultKillGrace = 2 * time.Second

// drainTimeout bounds the wait for the output pipe to reach end of file
// once the process group is gone: a process that left the group (setsid)
// may still hold the pipe open.
const drainTimeout = time.Second

// Command is one step command.
type Command struct {
	Script string // run as: bash -eo pipefail -c Script
	Dir    string // working directory (the checkout)
	// Env is the complete environment besides PATH and HOME (STAGEHAND_*
	// and the environment's variables). Nothing of the server's own
	// environment is passed.
	Env map[string]string
	// Path and Home become PATH and HOME when not empty, overriding the
	// same keys in Env.
	Path, Home string
	Timeout    time.Duration // 0: no timeout besides ctx
	KillGrace  time.Duration // SIGTERM to SIGKILL; 0: DefaultKillGrace
	Log        io.Writer     // standard output and error, interleaved; nil discards
	// Sandbox, when not nil, confines the script (see Sandbox): of the
	// host's file system it may write only Writable (its workspace) and
	// read only the system's programs.
	Sandbox  *Sandbox
	Writable []string
	// Nice is the niceness the script runs at (Linux, 0–19; 0 or below the
	// server's own: the server's). Steps run at StepNice.
	Nice int
}

// StepNice is the niceness of step commands: below the server's priority,
// so that on a busy host answering GitHub, reporting and starting the next
// step come before a build's CPU work. A step cannot undo it: raising a
// priority needs CAP_SYS_NICE, which the sandbox never has.
const StepNice = 10

// Result is how a command ended. ExitCode is 128+n when bash was killed by
// signal n, -1 when it never ran.
type Result struct {
	ExitCode  int
	TimedOut  bool // Timeout passed; the group was killed
	Cancelled bool // ctx ended; the group was killed
	Duration  time.Duration
}

// Run runs c.Script with bash in a new process group. When ctx ends or
// c.Timeout passes, it sends SIGTERM to the whole group (grandchildren
// included), then SIGKILL after c.KillGrace. Processes the script leaves
// behind in the group after it exits are stopped the same way. Run returns
// once the group is gone and the output is drained. The error is non-nil
// only when bash could not be started; a failing script has a non-zero
// ExitCode.
//
// With c.Sandbox, SIGTERM goes to the script's session inside the
// sandbox, and SIGKILL to the sandbox, whose end (or the script's) takes
// every process in it along, those that left the session included.
func Run(ctx context.Context, c Command) (Result, error) {
	start := time.Now()
	res := Result{ExitCode: -1}
	env, err := commandEnv(c)
	if err != nil {
		return res, fmt.Errorf("runner: run: %w", err)
	}
	bash, err := findBash(c.Path)
	if err != nil {
		return res, fmt.Errorf("runner: run: %w", err)
	}
	if ctx.Err() != nil {
		res.Cancelled = true
		return res, nil
	}
	grace := c.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	w := c.Log
	if w == nil {
		w = io.Discard
	}

	// Our own pipe rather than exec's copying goroutine: Wait then returns
	// when bash exits, and the read end can be closed if a stray process
	// keeps the write end open.
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("runner: run: %w", err)
	}
	defer pr.Close()
	cmd := &exec.Cmd{
		Path:        bash,
		Args:        []string{"bash", "-eo", "pipefail", "-c", c.Script},
		Dir:         c.Dir,
		Env:         env,
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	var sandbox *sandboxRun
	if c.Sandbox != nil {
		if sandbox, err = c.Sandbox.wrap(c, cmd); err != nil {
			pw.Close()
			return res, fmt.Errorf("runner: run: preparing the sandbox: %w", err)
		}
	}
	err = startNiced(cmd, c.Nice)
	pw.Close()
	if sandbox != nil {
		sandbox.started(err == nil)
	}
	if err != nil {
		return res, fmt.Errorf("runner: run: start %s: %w", cmd.Args[0], err)
	}
	g := group{pgid: cmd.Process.Pid, sandbox: sandbox}

	drained := make(chan struct{})
	go func() {
		defer close(drained)
		copyAll(w, pr)
	}()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()

	var timeout <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-exited:
	case <-ctx.Done():
		res.Cancelled = true
	case <-timeout:
		res.TimedOut = true
	}
	select {
	case <-exited: // it had ended anyway: report how
		res.Cancelled, res.TimedOut = false, false
	default:
	}
	stopGroup(g, grace, exited)

	select {
	case <-drained:
	case <-time.After(drainTimeout):
		pr.Close() // unblocks the reader
		<-drained
	}
	if sandbox != nil {
		sandbox.finish()
	}
	res.ExitCode = exitCode(cmd.ProcessState)
	res.Duration = time.Since(start)
	return res, nil
}

// copyAll copies r to w until r ends, reading on when w fails so the
// command never blocks on a full pipe.
func copyAll(w io.Writer, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// group is what Run started: bash's process group, or bwrap's, whose
// sandbox holds the script in a session of its own.
type group struct {
	pgid    int
	sandbox *sandboxRun // nil: not sandboxed
}

// signal sends sig to the script and everything it started. In a
// sandbox, SIGTERM goes to the script's session (the sandbox's init,
// which leads it, ignores it), so the script may clean up; a SIGTERM to
// bwrap would end the sandbox at once. Before bwrap has said which pid
// its init has, bwrap itself is signalled.
func (g group) signal(sig syscall.Signal) {
	var initPid int
	if g.sandbox != nil {
		initPid = int(g.sandbox.initPid.Load())
	}
	if initPid > 0 {
		syscall.Kill(-initPid, sig)
		if sig != syscall.SIGKILL {
			return
		}
	}
	syscall.Kill(-g.pgid, sig)
}

// stopGroup ends g, whose leader's exit closes exited: SIGTERM, up to
// grace for the group to be gone, then SIGKILL. It returns once the leader
// has been reaped and the group is gone (or, for zombies a non-reaping
// init leaves behind, shortly after SIGKILL). A sandbox's bwrap exits
// only after the script has; the kernel then kills what is left in it.
func stopGroup(g group, grace time.Duration, exited <-chan struct{}) {
	gone := func() bool {
		select {
		case <-exited:
			return !groupAlive(g.pgid)
		default:
			return false
		}
	}
	if gone() {
		return
	}
	g.signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for !gone() {
		if time.Now().After(deadline) {
			g.signal(syscall.SIGKILL)
			<-exited
			deadline = time.Now().Add(time.Second)
			for groupAlive(g.pgid) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupAlive reports whether process group pgid has a live member. kill(2)
// also succeeds for zombies, which an init that does not reap (common in
// containers) leaves behind forever, so where /proc exists the members'
// states are read too.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	pg := strconv.Itoa(pgid)
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[2] != pg {
			continue
		}
		if f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// commandEnv builds the environment: Env, then PATH and HOME.
func commandEnv(c Command) ([]string, error) {
	m := make(map[string]string, len(c.Env)+2)
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("invalid environment variable %q", k)
		}
		m[k] = v
	}
	if c.Path != "" {
		m["PATH"] = c.Path
	}
	if c.Home != "" {
		m["HOME"] = c.Home
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, nil
}

// findBash looks for bash in the absolute directories of path, then in the
// server's PATH.
func findBash(path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, "bash")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath("bash")
}
