package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/state"
)

// The chaos soak: real `stagehand serve` processes, the GitHub stand-in,
// sample repositories whose steps take random short times. A driver has
// the stand-in send pushes, button clicks (Promote Build, Confirm, Approve,
// …) and slash commands, once each, as GitHub does: a delivery that fails
// because the server is down comes back only through Stagehand's automatic
// redelivery. A killer SIGKILLs a server at random moments (often while it
// runs a deploy step) and starts it again; GitHub goes down now and then.
// Then everything is drained and every invariant checked (soak_check_test.go):
// every delivery sent is processed exactly once, directly or by automatic
// redelivery, no deploy ran twice for an
// execution and step, no execution is stuck, rule B held, every final check
// run matches its execution, and the stand-in saw no request outside
// GitHub's schemas. The test ends with one line, "soak summary: …", that
// RELIABILITY.md quotes.
//
// Without STAGEHAND_SOAK it is a short run for CI (45 s of chaos, about two
// minutes in all on a loaded 2-core machine). The long runs:
//
//	STAGEHAND_SOAK=100 go test ./cmd/stagehand -run 'Soak$' -v -timeout 60m        # until 100 kills
//	STAGEHAND_SOAK=10m go test ./cmd/stagehand -run 'Soak$' -v -timeout 60m        # 10 minutes of chaos
//	STAGEHAND_SOAK=30 STAGEHAND_TEST_POSTGRES_URL=… STAGEHAND_TEST_NATS_URL=… \
//	  go test ./cmd/stagehand -run SoakReplicas -v -timeout 60m                     # 3 replicas, 30 kills
//
// STAGEHAND_SOAK_SEED replays the random choices of a run (the seed is
// printed at the start and in the summary); the timing of a real machine
// still differs from run to run.

// soakRedeliverInterval is the servers' --redeliver-interval (default 5m).
const soakRedeliverInterval = 3 * time.Second

// soakConfig is the shape of one soak run.
type soakConfig struct {
	name     string
	replicas int
	programs int
	dbURL    string // empty: embedded SQLite and broker
	natsURL  string
	// The chaos lasts at least duration and until kills kills happened,
	// deployKills of them while the victim ran a deploy step (bounded by
	// maxChaos).
	duration    time.Duration
	kills       int
	deployKills int
	maxChaos    time.Duration
	seed        int64
}

// soakLength reads STAGEHAND_SOAK: a duration ("10m") or a number of
// kills ("100"); unset, the short run.
func soakLength(t *testing.T, c *soakConfig, deployShare int) {
	t.Helper()
	c.duration, c.maxChaos = 45*time.Second, 3*time.Minute
	v := os.Getenv("STAGEHAND_SOAK")
	if v == "" {
		return
	}
	if n, err := strconv.Atoi(v); err == nil {
		c.kills, c.deployKills = n, n*deployShare/100
		c.duration, c.maxChaos = 0, time.Duration(n)*30*time.Second
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("STAGEHAND_SOAK=%q: want a duration (10m) or a number of kills (100)", v)
	}
	c.duration, c.maxChaos = d, d
}

func soakSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("STAGEHAND_SOAK_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("STAGEHAND_SOAK_SEED=%q: %v", s, err)
		}
	}
	return seed
}

// TestSoak is the soak on the embedded database and broker: one server,
// killed and started again at random.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real server for minutes; skipped with -short")
	}
	c := soakConfig{name: "embedded", replicas: 1, programs: 3, seed: soakSeed(t)}
	soakLength(t, &c, 0)
	runSoak(t, c)
}

// TestSoakReplicas is the soak on PostgreSQL and NATS with three replicas,
// random ones killed, a third of the kills aimed at a replica running a
// deploy step.
func TestSoakReplicas(t *testing.T) {
	replSkip(t)
	c := soakConfig{name: "postgres+nats", replicas: 3, programs: 5, seed: soakSeed(t),
		dbURL: freshSchema(t), natsURL: os.Getenv("STAGEHAND_TEST_NATS_URL")}
	soakLength(t, &c, 34)
	runSoak(t, c)
}

// soak is the state of one run.
type soak struct {
	t       *testing.T
	c       soakConfig
	rng     *mrand.Rand // the driver's
	gh      *githubtest.Server
	github  *outageProxy
	rs      *replicaSet
	servers []*soakServer
	progs   []*soakProgram
	store   bot.Store
	ledger  *ledger
	stats   counters
	began   time.Time
}

func runSoak(t *testing.T, c soakConfig) {
	s := &soak{t: t, c: c, began: time.Now(), rng: mrand.New(mrand.NewPCG(uint64(c.seed), 1))}
	t.Logf("soak %s: seed %d (STAGEHAND_SOAK_SEED=%d replays its choices); chaos %v, kills ≥ %d (≥ %d during a deploy step)",
		c.name, c.seed, c.seed, c.duration, c.kills, c.deployKills)
	s.setUp()
	s.chaos()
	s.drain()
	s.check()
}

func (s *soak) setUp() {
	t := s.t
	s.gh = githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	s.gh.SetAppKey(testAppID, &key.PublicKey)
	s.gh.AddInstallation(replInst, replOwner)
	s.github = newOutageProxy(t, s.gh)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "git")
	s.progs = soakRepos(t, s.gh, root, s.c.programs)
	s.rs = &replicaSet{gh: s.gh, apiURL: s.github.URL(), keyFile: keyFile, gitURL: "file://" + root + "/",
		dbURL: s.c.dbURL, natsURL: s.c.natsURL, logDir: filepath.Join(dir, "logs"),
		// Automatic redelivery brings back what GitHub could not deliver:
		// every few seconds here instead of every 5 minutes.
		extra: []string{"--redeliver-interval", soakRedeliverInterval.String()}}
	if s.c.natsURL != "" {
		rnd := make([]byte, 4)
		_, _ = rand.Read(rnd)
		s.rs.prefix = "shsoak" + hex.EncodeToString(rnd)
		t.Cleanup(func() { replCleanNATS(t, s.c.natsURL, s.rs.prefix) })
	}
	if err := os.MkdirAll(s.rs.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	binary(t)
	for i := 0; i < s.c.replicas; i++ {
		srv := &soakServer{replica: &replica{name: fmt.Sprintf("server%d", i+1),
			dataDir: filepath.Join(dir, fmt.Sprintf("data%d", i+1)), addr: freeAddr(t)}}
		s.servers = append(s.servers, srv)
		s.rs.replicas = append(s.rs.replicas, srv.replica)
		s.rs.launch(t, srv)
		if i == 0 {
			// The first one migrates the schema alone.
			waitFor(t, 90*time.Second, srv.name+" to be ready", srv.ready)
		}
	}
	for _, srv := range s.servers {
		waitFor(t, 90*time.Second, srv.name+" to be ready", srv.ready)
	}
	t.Cleanup(func() {
		for _, srv := range s.servers {
			srv.stop()
		}
		if t.Failed() {
			s.rs.dumpLogs(t)
		}
		t.Logf("warnings and errors in the servers' logs (all starts):\n%s", soakWarnings(s.rs.warnSummary()))
	})
	webhook := s.servers[0].addr
	if len(s.servers) > 1 {
		webhook = newBalancer(t, s.servers).Listener.Addr().String()
	}
	// GitHub sends every delivery, and every redelivery Stagehand asks
	// for, to the server (or the balancer).
	s.gh.SetWebhook("http://"+webhook+"/webhooks", []byte(testSecret))
	s.ledger = newLedger(s.gh, webhook)
	s.store = s.openStore()
	s.ledger.stored = func(guid string) bool {
		rec := s.record(guid)
		return !rec.ProcessedAt.IsZero() || !rec.PoisonedAt.IsZero()
	}
	t.Cleanup(func() { s.store.Close() })
}

// openStore opens the servers' database next to them.
func (s *soak) openStore() bot.Store {
	ctx := context.Background()
	var store bot.Store
	var err error
	if s.c.dbURL != "" {
		store, err = state.OpenPostgres(ctx, s.c.dbURL)
	} else {
		store, err = state.OpenSQLite(ctx, filepath.Join(s.servers[0].dataDir, "stagehand.db"))
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return store
}

// chaos runs the driver, the killer and GitHub's outages until the run's
// length is reached.
func (s *soak) chaos() {
	t := s.t
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	killerRng := mrand.New(mrand.NewPCG(uint64(s.c.seed), 2))
	outageRng := mrand.New(mrand.NewPCG(uint64(s.c.seed), 3))
	wg.Add(2)
	go func() { defer wg.Done(); s.killer(ctx, killerRng) }()
	go func() { defer wg.Done(); s.outages(ctx, outageRng) }()
	s.github.lossy.Store(true)
	start := time.Now()
	lastLog := start
	for {
		s.drive()
		el := time.Since(start)
		if el >= s.c.duration && s.stats.get("kills") >= s.c.kills && s.stats.get("deploy kills") >= s.c.deployKills {
			break
		}
		if el >= s.c.maxChaos {
			t.Errorf("after %v of chaos: %d kills (%d during a deploy step), want %d (%d)", el.Round(time.Second),
				s.stats.get("kills"), s.stats.get("deploy kills"), s.c.kills, s.c.deployKills)
			break
		}
		if time.Since(lastLog) > 30*time.Second {
			t.Logf("chaos %v: %d kills (%d during a deploy step), %d outages, %s", el.Round(time.Second),
				s.stats.get("kills"), s.stats.get("deploy kills"), s.stats.get("outages"), s.ledger.summary())
			lastLog = time.Now()
		}
		time.Sleep(time.Duration(150+s.rng.IntN(250)) * time.Millisecond)
	}
	cancel()
	wg.Wait()
	s.github.down.Store(false)
	s.github.lossy.Store(false)
	for _, srv := range s.servers {
		if !srv.running() {
			s.rs.launch(t, srv)
		}
	}
	for _, srv := range s.servers {
		waitFor(t, 90*time.Second, srv.name+" to be ready after the chaos", srv.ready)
	}
	t.Logf("chaos over after %v: %d kills (%d during a deploy step), %d GitHub outages; %s", time.Since(start).Round(time.Second),
		s.stats.get("kills"), s.stats.get("deploy kills"), s.stats.get("outages"), s.ledger.summary())
}

// drive sends one delivery: a push, a slash command or a click.
func (s *soak) drive() {
	t := s.t
	p := s.progs[s.rng.IntN(len(s.progs))]
	var event, kind string
	var body []byte
	switch r := s.rng.IntN(100); {
	case r < 12:
		event, kind, body = "push", "push", p.push(t, s.gh)
	case r < 40:
		cmds := []string{"/stagehand promote", "/stagehand approve", "/stagehand status", "/stagehand promote"}
		if p.fullStack {
			cmds = append(cmds, "/stagehand run full-stack")
		}
		c := cmds[s.rng.IntN(len(cmds))]
		user := "alice"
		if c == "/stagehand approve" {
			user = "bob"
		}
		event, kind, body = "issue_comment", "comment", replCommentSoak(t, s.gh, p, user, c)
	default:
		cr, id, ok := s.button(p)
		if !ok {
			return
		}
		event, kind, body = "check_run", "click", replClickSoak(t, p, cr, id, "bob")
	}
	s.ledger.send(event, kind, body)
}

// button picks a button of the program's check runs: mostly one of the
// newest ones showing buttons (Reject and Dismiss seldom), sometimes a
// stale one.
func (s *soak) button(p *soakProgram) (githubtest.CheckRun, string, bool) {
	runs := s.gh.CheckRuns(replOwner, p.repo)
	var withButtons []githubtest.CheckRun
	for _, cr := range runs {
		if len(cr.Actions) > 0 && cr.ExternalID != "" {
			withButtons = append(withButtons, cr)
		}
	}
	if len(withButtons) == 0 {
		return githubtest.CheckRun{}, "", false
	}
	if s.rng.IntN(6) == 0 {
		cr := withButtons[s.rng.IntN(len(withButtons))]
		return cr, cr.Actions[s.rng.IntN(len(cr.Actions))].Identifier, true
	}
	cr := withButtons[len(withButtons)-1-s.rng.IntN(min(2, len(withButtons)))]
	var ids []string
	for _, a := range cr.Actions {
		if (a.Identifier == githubapp.ActionReject || a.Identifier == githubapp.ActionDismiss) && s.rng.IntN(8) != 0 {
			continue
		}
		ids = append(ids, a.Identifier)
	}
	if len(ids) == 0 {
		ids = []string{cr.Actions[0].Identifier}
	}
	return cr, ids[s.rng.IntN(len(ids))], true
}

func replCommentSoak(t *testing.T, gh *githubtest.Server, p *soakProgram, user, body string) []byte {
	return replComment(t, gh, &replProgram{repo: p.repo}, p.idx, user, body)
}

func replClickSoak(t *testing.T, p *soakProgram, cr githubtest.CheckRun, id, user string) []byte {
	return replClick(t, &replProgram{repo: p.repo}, p.idx, cr, id, user)
}

// killer SIGKILLs a server at random moments and starts it again. Half
// the kills (and, with a deploy-kill target, every kill until it is met)
// wait up to 8 s for a deploy script to run on the victim; one restart in
// eight is killed again before it is ready.
func (s *soak) killer(ctx context.Context, rng *mrand.Rand) {
	t := s.t
	var restarts sync.WaitGroup
	defer restarts.Wait()
	for ctx.Err() == nil {
		// Up for a while: 1 to 5 s after it is ready.
		if !sleepCtx(ctx, time.Duration(1000+rng.IntN(4000))*time.Millisecond) {
			return
		}
		var up []*soakServer
		for _, srv := range s.servers {
			if srv.running() && srv.ready() {
				up = append(up, srv)
			}
		}
		if len(up) == 0 || (len(s.servers) > 1 && len(up) == 1) {
			continue // keep one replica of several up
		}
		victim, during := up[rng.IntN(len(up))], ""
		if rng.IntN(2) == 0 || s.stats.get("deploy kills") < s.c.deployKills {
			deadline := time.Now().Add(8 * time.Second)
			for during == "" && time.Now().Before(deadline) && ctx.Err() == nil {
				for srv, what := range deploying(s.progs, up) {
					victim, during = srv, what
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		victim.sigkill()
		s.stats.add("kills", 1)
		if during != "" {
			s.stats.add("deploy kills", 1)
			t.Logf("SIGKILL %s while it deployed (%s)", victim.name, during)
		}
		down := time.Duration(rng.IntN(2500)) * time.Millisecond
		// One restart in eight is killed again while it starts.
		var startupKill time.Duration
		if rng.IntN(8) == 0 {
			startupKill = time.Duration(1+rng.IntN(1500)) * time.Millisecond
		}
		restarts.Add(1)
		go func() {
			defer restarts.Done()
			time.Sleep(down)
			s.rs.launch(t, victim)
			if startupKill > 0 {
				time.Sleep(startupKill)
				victim.sigkill()
				s.stats.add("kills", 1)
				s.stats.add("startup kills", 1)
				s.rs.launch(t, victim)
			}
			deadline := time.Now().Add(90 * time.Second)
			for !victim.ready() && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if len(s.servers) == 1 {
			restarts.Wait()
		}
	}
}

// outages takes GitHub down every 10 to 25 s: for 1 to 6 s, and every
// third time for 10 to 20 s, longer than the router's retries of a
// delivery last.
func (s *soak) outages(ctx context.Context, rng *mrand.Rand) {
	for i := 1; ; i++ {
		if !sleepCtx(ctx, time.Duration(10000+rng.IntN(15000))*time.Millisecond) {
			return
		}
		s.github.down.Store(true)
		s.stats.add("outages", 1)
		d := time.Duration(1000+rng.IntN(5000)) * time.Millisecond
		if i%3 == 0 {
			d = time.Duration(10000+rng.IntN(10000)) * time.Millisecond
		}
		ok := sleepCtx(ctx, d)
		s.github.down.Store(false)
		if !ok {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// soakWarnings sums warnSummary's lines over the starts of each server
// ("server1.003.log" → "server1"), leaving out the warnings every start
// of the soak's servers gives (no sandbox, no sign-in).
func soakWarnings(summary string) string {
	counts := map[string]int{}
	for _, l := range strings.Split(summary, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || strings.Contains(l, "sandbox") || strings.Contains(l, "sign-in with GitHub is not configured") {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		server, _, _ := strings.Cut(f[1], ".")
		counts[server+" "+strings.Join(f[2:], " ")] += n
	}
	var out []string
	for k, n := range counts {
		out = append(out, fmt.Sprintf("%5d %s", n, k))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
