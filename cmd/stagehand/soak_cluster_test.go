package main

import (
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

// The pieces of the soak (soak_test.go): servers that are SIGKILLed and
// started again, a GitHub that goes down, sample repositories whose steps
// record every run.

// soakServer is one `stagehand serve` of the soak, started again after
// every kill on the same data directory.
type soakServer struct {
	*replica
	exited    chan struct{} // closed when the current process has exited
	up        bool          // a process runs (it may not be ready yet)
	startedAt time.Time     // of the current process
}

func (s *soakServer) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

func (s *soakServer) since() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startedAt
}

// launch starts s's process; its log goes to a file of its own per start.
func (rs *replicaSet) launch(t *testing.T, s *soakServer) {
	t.Helper()
	logs := filepath.Join(rs.logDir, fmt.Sprintf("%s.%03d.log", s.name, len(s.logs)+1))
	f, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), rs.args(s.replica)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.up, s.startedAt = cmd, exited, true, time.Now()
	s.logs = append(s.logs, logs)
	s.mu.Unlock()
}

// sigkill kills s's process and waits until it is gone.
func (s *soakServer) sigkill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.up = false
	s.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop ends s's process gracefully (SIGKILL after 20 s).
func (s *soakServer) stop() {
	s.mu.Lock()
	cmd, exited, up := s.cmd, s.exited, s.up
	s.up = false
	s.mu.Unlock()
	if !up {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// outageProxy stands between the servers and the GitHub stand-in: while
// it is down, GitHub answers 503 or drops the connection, as during an
// outage. While lossy, one write in lossEvery is done by GitHub but its
// answer is lost (the connection drops), as when GitHub answers 502 or
// times out after the work was done.
type outageProxy struct {
	srv   *httptest.Server
	down  atomic.Bool
	drops atomic.Int64 // requests refused while down
	lossy atomic.Bool
	// writes counts write requests; lost those whose answer was lost.
	writes, lost atomic.Int64
}

const lossEvery = 40

func newOutageProxy(t *testing.T, gh *githubtest.Server) *outageProxy {
	t.Helper()
	target, err := url.Parse(gh.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.down.Load() {
			if p.lossy.Load() && isWriteMethod(r.Method) && p.writes.Add(1)%lossEvery == 0 {
				rp.ServeHTTP(httptest.NewRecorder(), r)
				p.lost.Add(1)
				dropConnection(w)
				return
			}
			rp.ServeHTTP(w, r)
			return
		}
		if p.drops.Add(1)%2 == 0 && dropConnection(w) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"Service Unavailable","documentation_url":"https://docs.github.com/rest"}`))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *outageProxy) URL() string { return p.srv.URL + "/" }

// dropConnection closes the request's connection without an answer.
func dropConnection(w http.ResponseWriter) bool {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return true
		}
	}
	return false
}

func isWriteMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPatch || m == http.MethodPut || m == http.MethodDelete
}

// newBalancer is a load balancer in front of the replicas: each request
// goes to one of them at random, up or not (a balancer learns of a dead
// replica only after it failed requests); a replica that does not answer
// makes it answer 502.
func newBalancer(t *testing.T, servers []*soakServer) *httptest.Server {
	t.Helper()
	var proxies []*httputil.ReverseProxy
	for _, s := range servers {
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: s.addr})
		rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
		proxies = append(proxies, rp)
	}
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[mrand.IntN(len(proxies))].ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	return lb
}

// soakScript is each sample repository's run.sh. Every run of a step
// leaves RECORD/<pipeline>.<execution>.<step>.<environment>.<pid>.start
// holding its working directory (which tells the server whose data
// directory ran it) and, when it ends, the same name with .end. Steps take
// random short times.
const soakScript = `set -eu
step=$1
id="$STAGEHAND_PIPELINE.$STAGEHAND_EXECUTION.$step.${STAGEHAND_ENVIRONMENT:-none}.$$"
echo "$PWD" > "RECORD/$id.start"
case "$step" in
build)
  mkdir -p dist
  echo "$STAGEHAND_COMMIT $(od -An -N8 -tx1 /dev/urandom)" > dist/app.txt
  sleep 0.$((RANDOM % 8)) ;;
deploy)
  sleep 0.$((RANDOM % 9 + 1))
  sleep $((RANDOM % 2)) ;;
test)
  test -n "$STAGEHAND_ARTIFACTS"
  sleep 0.$((RANDOM % 6)) ;;
esac
touch "RECORD/$id.end"
`

// soakProgram is one sample repository, committed to as the soak goes.
type soakProgram struct {
	idx       int
	repo      string
	fullStack bool
	dir       string // the git repository
	record    string // the step runs
	commits   []string
	pushed    int
}

func soakRepos(t *testing.T, gh *githubtest.Server, root string, n int) []*soakProgram {
	t.Helper()
	var progs []*soakProgram
	for i := 0; i < n; i++ {
		p := &soakProgram{idx: i, repo: fmt.Sprintf("soak%02d", i), fullStack: i%2 == 1}
		p.dir = filepath.Join(root, replOwner, p.repo)
		p.record = filepath.Join(root, "record", p.repo)
		if err := os.MkdirAll(p.record, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, p.dir, map[string]string{
			".github/stagehand.yml": replConfig(p.fullStack),
			"run.sh":                strings.ReplaceAll(soakScript, "RECORD", p.record),
		})
		gitIn(t, p.dir)("init", "-q", "-b", "main")
		gh.AddRepo(replInst, replOwner, p.repo)
		gh.SetPermission(replOwner, p.repo, "alice", "write")
		gh.SetPermission(replOwner, p.repo, "bob", "admin")
		p.commit(t, gh)
		progs = append(progs, p)
	}
	return progs
}

// commit makes the program's next commit and gives the stand-in its
// configuration.
func (p *soakProgram) commit(t *testing.T, gh *githubtest.Server) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, "version.txt"), []byte(fmt.Sprintf("%s v%d\n", p.repo, len(p.commits))), 0o644); err != nil {
		t.Fatal(err)
	}
	git := gitIn(t, p.dir)
	git("add", "-A")
	git("commit", "-q", "-m", fmt.Sprintf("v%d", len(p.commits)))
	sha := git("rev-parse", "HEAD")
	gh.SetFile(replOwner, p.repo, sha, ".github/stagehand.yml", []byte(replConfig(p.fullStack)))
	p.commits = append(p.commits, sha)
	return sha
}

// push is the payload of a push of the program's next commit to main.
func (p *soakProgram) push(t *testing.T, gh *githubtest.Server) []byte {
	t.Helper()
	before := "0000000000000000000000000000000000000000"
	if p.pushed > 0 {
		before = p.commits[p.pushed-1]
	}
	if p.pushed == len(p.commits) {
		p.commit(t, gh)
	}
	sha := p.commits[p.pushed]
	pl := replPayload(t, "push/branch-created.json")
	pl["ref"], pl["after"], pl["before"], pl["created"] = "refs/heads/main", sha, before, p.pushed == 0
	pl["head_commit"].(map[string]any)["id"] = sha
	pl["commits"] = []any{}
	pl["compare"] = "https://github.com/" + replOwner + "/" + p.repo + "/compare/" + before[:12] + "..." + sha[:12]
	pl["sender"].(map[string]any)["login"] = "alice"
	replSetRepo(pl, p.repo, p.idx)
	p.pushed++
	return mustJSON(t, pl)
}

// stepRun is one run of a step's script, from its record files.
type stepRun struct {
	pipeline, step, env string
	execution           int
	pid                 int
	dir                 string // working directory: under the data directory of the server that ran it
	started             time.Time
	ended               bool
}

// key names the execution's step: "stage-only #3 deploy stage".
func (r stepRun) key() string {
	return fmt.Sprintf("%s #%d %s %s", r.pipeline, r.execution, r.step, r.env)
}

// stepRuns reads the record directory of a program.
func stepRuns(record string) []stepRun {
	ents, _ := os.ReadDir(record)
	ended := map[string]bool{}
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".end"); ok {
			ended[name] = true
		}
	}
	var out []stepRun
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".start")
		if !ok {
			continue
		}
		f := strings.Split(name, ".")
		if len(f) != 5 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		pid, _ := strconv.Atoi(f[4])
		b, _ := os.ReadFile(filepath.Join(record, e.Name()))
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, stepRun{pipeline: f[0], execution: n, step: f[2], env: f[3], pid: pid,
			dir: strings.TrimSpace(string(b)), started: info.ModTime(), ended: ended[name]})
	}
	return out
}

// deploying names, per server, a deploy script that server started and
// that still runs.
func deploying(progs []*soakProgram, servers []*soakServer) map[*soakServer]string {
	out := map[*soakServer]string{}
	for _, p := range progs {
		for _, r := range stepRuns(p.record) {
			if r.step != "deploy" || r.ended || !running(r.pid) {
				continue
			}
			for _, s := range servers {
				if s.running() && strings.HasPrefix(r.dir, s.dataDir+string(filepath.Separator)) && r.started.After(s.since()) {
					out[s] = p.repo + " " + r.key()
				}
			}
		}
	}
	return out
}

// mu guards a counter map shared by the soak's goroutines.
type counters struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counters) add(k string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k] += n
}

func (c *counters) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}
