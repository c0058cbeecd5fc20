package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Sandbox confines step commands with bubblewrap (bwrap). A sandboxed
// command runs in new user, PID, IPC, UTS and mount namespaces, sharing
// only the network with the host. It sees:
//
//   - the system's programs read-only: /usr (toolchains under /usr/local
//     included), /bin, /sbin and /lib*, and of /etc only what programs need
//     (users, the loader, name resolution, CA certificates, alternatives,
//     time zone; see etcEntries), never shadow files, SSH host keys, TLS
//     private keys or other services' configuration;
//   - its Writable directories (the step's workspace) and s.Writable,
//     read-write, at the same paths as on the host;
//   - a private /tmp, a minimal /dev, and a /proc of its own PID namespace,
//     in which the server does not exist;
//   - exactly the environment Run builds (the step's variables, PATH and
//     HOME), not the server's.
//
// Everything else of the host's file system (the data directory, other
// workspaces, the App's private key, /root, /home, /var, /run) is not
// there. Paths in Hide that lie under a directory the sandbox shows are
// covered with an empty read-only directory.
//
// The script runs as an unprivileged user without capabilities (the
// server's own uid, or nobody when the server runs as root), in a session
// of its own, and is killed when the server dies.
type Sandbox struct {
	// Bwrap is the bwrap program (LookBwrap finds it).
	Bwrap string
	// Hide lists directories and files that must stay out of sight even
	// when they lie under a directory the sandbox shows: the data
	// directory, the directories of the App's private key and of the
	// webhook secret.
	Hide []string
	// Writable lists directories every command may write besides its own
	// Command.Writable (the playground's sites).
	Writable []string
}

// ErrNoBwrap is LookBwrap's answer when bubblewrap is not installed.
var ErrNoBwrap = errors.New("bubblewrap (the bwrap program) is not installed")

// LookBwrap finds the bwrap program in the server's PATH.
func LookBwrap() (string, error) {
	p, err := exec.LookPath("bwrap")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBwrap, err)
	}
	return p, nil
}

// Check runs `true` in the sandbox, so a machine where bwrap cannot make
// one (user namespaces turned off) is told at start rather than at every
// step. The error holds what bwrap said.
func (s *Sandbox) Check(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "stagehand-sandbox-check-")
	if err != nil {
		return fmt.Errorf("checking the step sandbox: %w", err)
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	res, err := Run(ctx, Command{Script: "true", Dir: dir, Writable: []string{dir}, Path: "/usr/bin:/bin", Home: dir, Sandbox: s, Log: &out})
	if err != nil {
		return fmt.Errorf("checking the step sandbox: %w", err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("bwrap (%s) cannot make a sandbox on this machine (exit status %d): %s", s.Bwrap, res.ExitCode, strings.TrimSpace(out.String()))
	}
	return nil
}

// sandboxUID is the uid (and gid) scripts run as when the server runs as
// root: nobody, which every system's passwd names.
const sandboxUID = 65534

// etcEntries are the parts of /etc a sandbox shows (when they exist):
// what programs read to run, resolve names and trust TLS servers. The rest
// of /etc holds secrets (shadow, gshadow, ssh host keys, ssl/private) and
// other services' configuration, often with passwords (databases, brokers,
// npmrc, pip.conf, maven).
var etcEntries = []string{
	// users and the dynamic loader
	"passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	// names and the network
	"hosts", "hostname", "resolv.conf", "host.conf", "gai.conf", "services", "protocols", "networks",
	// TLS trust, without ssl/private
	"ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf", "pki/tls/certs", "pki/ca-trust",
	// the distribution's choice of programs (awk, java, editor) and the JVM's configuration
	"alternatives", "java-*",
	// time, locale, terminal, shells, file types, the system's name
	"localtime", "timezone", "locale.alias", "locale.conf", "terminfo", "profile", "bash.bashrc", "inputrc",
	"shells", "mime.types", "magic", "os-release", "debian_version", "lsb-release", "alpine-release",
}

// systemDirs are bound read-only; those that are symbolic links (merged
// /usr) are made the same links.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// sandboxRun is one sandboxed command: bwrap's options travel through a
// pipe (fd 3), so /proc/1/cmdline in the sandbox does not list the host
// paths it binds; bwrap writes the host pid of the sandbox's init to
// another (fd 4).
type sandboxRun struct {
	opts         []byte // NUL-separated
	argsR, argsW *os.File
	infoR, infoW *os.File
	initPid      atomic.Int64
	wg           sync.WaitGroup
}

// wrap turns cmd (bash with its arguments, directory and environment)
// into the same command inside the sandbox.
func (s *Sandbox) wrap(c Command, cmd *exec.Cmd) (*sandboxRun, error) {
	opts, err := s.options(c, cmd)
	if err != nil {
		return nil, err
	}
	sr := &sandboxRun{opts: []byte(strings.Join(opts, "\x00") + "\x00")}
	if sr.argsR, sr.argsW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if sr.infoR, sr.infoW, err = os.Pipe(); err != nil {
		sr.argsR.Close()
		sr.argsW.Close()
		return nil, err
	}
	cmd.Args = append([]string{"bwrap", "--args", "3", "--"}, append([]string{cmd.Path}, cmd.Args[1:]...)...)
	cmd.Path = s.Bwrap
	cmd.Dir = ""
	// bwrap's own environment is visible in the sandbox as its init's
	// /proc/1/environ: it gets none; the script's comes with --setenv.
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{sr.argsR, sr.infoW}
	return sr, nil
}

// options are bwrap's options for c; cmd holds the environment.
func (s *Sandbox) options(c Command, cmd *exec.Cmd) ([]string, error) {
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = sandboxUID, sandboxUID
	}
	o := []string{
		"--unshare-user", "--disable-userns", "--uid", strconv.Itoa(uid), "--gid", strconv.Itoa(gid),
		"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--info-fd", "4",
		"--clearenv",
	}
	for _, kv := range cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		o = append(o, "--setenv", k, v)
	}

	var shown []string // host directories and files the sandbox shows
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return nil, err
			}
			o = append(o, "--symlink", target, d)
		case fi.IsDir():
			o = append(o, "--ro-bind", d, d)
			shown = append(shown, d)
		}
	}
	for _, e := range etcEntries {
		matches, _ := filepath.Glob(filepath.Join("/etc", e))
		for _, m := range matches {
			o = append(o, "--ro-bind-try", m, m)
			shown = append(shown, m)
		}
	}
	o = append(o,
		"--symlink", "../proc/self/mounts", "/etc/mtab",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp")

	var writable []string
	for _, w := range append(slices.Clone(c.Writable), s.Writable...) {
		abs, err := filepath.Abs(w)
		if err != nil {
			return nil, err
		}
		writable = append(writable, abs)
	}
	shown = append(shown, writable...)
	masks := s.masks(shown)
	// Mounts in path order, so each lands after the one it lies under: a
	// mask under a writable directory, a workspace under a masked data
	// directory.
	var mounts []mount
	for _, w := range writable {
		mounts = append(mounts, mount{path: w, dir: true, writable: true})
	}
	mounts = append(mounts, masks...)
	slices.SortStableFunc(mounts, func(a, b mount) int { return strings.Compare(a.path, b.path) })
	for _, m := range mounts {
		switch {
		case m.writable:
			o = append(o, "--bind", m.path, m.path)
		case m.dir:
			o = append(o, "--tmpfs", m.path)
		default:
			o = append(o, "--ro-bind", os.DevNull, m.path)
		}
	}
	for _, m := range masks {
		if m.dir {
			o = append(o, "--remount-ro", m.path)
		}
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the working directory %s is not a directory", dir)
	}
	return append(o, "--remount-ro", "/", "--chdir", dir), nil
}

// mount is a writable directory, or a mask over a hidden path (an empty
// read-only directory, or an empty file).
type mount struct {
	path     string
	dir      bool
	writable bool
}

// masks lists the paths of s.Hide that lie under a shown path, each once,
// as they are named on the host and, when that differs, with symbolic
// links resolved.
func (s *Sandbox) masks(shown []string) []mount {
	var out []mount
	seen := map[string]bool{}
	for _, h := range s.Hide {
		abs, err := filepath.Abs(h)
		if err != nil {
			continue
		}
		names := []string{abs}
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			names = append(names, real)
		}
		for _, p := range names {
			fi, err := os.Stat(p)
			if err != nil || seen[p] || !under(p, shown) {
				continue
			}
			seen[p] = true
			out = append(out, mount{path: p, dir: fi.IsDir()})
		}
	}
	return out
}

// under reports whether p is one of roots or lies below one.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}

// started is called after cmd.Start: it closes the child's ends of the
// pipes, hands bwrap its options and listens for the init's pid.
func (sr *sandboxRun) started(ok bool) {
	sr.argsR.Close()
	sr.infoW.Close()
	if !ok {
		sr.argsW.Close()
		sr.infoR.Close()
		return
	}
	sr.wg.Add(2)
	go func() {
		defer sr.wg.Done()
		defer sr.argsW.Close()
		sr.argsW.Write(sr.opts) // a bwrap that died early gets EPIPE
	}()
	go func() {
		defer sr.wg.Done()
		var info struct {
			ChildPid int64 `json:"child-pid"`
		}
		if json.NewDecoder(sr.infoR).Decode(&info) == nil {
			sr.initPid.Store(info.ChildPid)
		}
		io.Copy(io.Discard, sr.infoR)
	}()
}

// finish unblocks and waits for started's goroutines; bwrap has exited.
func (sr *sandboxRun) finish() {
	sr.infoR.Close()
	sr.wg.Wait()
}
