package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/router"
	"github.com/stagehand-dev/stagehand/state"
)

// redeliverFigure is how long the server stays down in
// TestServerDownPushesRunThroughRedelivery and how many pushes are sent
// meanwhile: 2 s and 3 in CI; STAGEHAND_TEST_REDELIVER_OUTAGE (a duration)
// and STAGEHAND_TEST_REDELIVER_PUSHES make the figure of RELIABILITY.md.
func redeliverFigure(t *testing.T) (outage time.Duration, pushes int) {
	outage, pushes = 2*time.Second, 3
	if v := os.Getenv("STAGEHAND_TEST_REDELIVER_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("STAGEHAND_TEST_REDELIVER_OUTAGE=%q: %v", v, err)
		}
		outage = d
	}
	if v := os.Getenv("STAGEHAND_TEST_REDELIVER_PUSHES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 || n > 60 {
			t.Fatalf("STAGEHAND_TEST_REDELIVER_PUSHES=%q: want 3 to 60", v)
		}
		pushes = n
	}
	return outage, pushes
}

// TestServerDownPushesRunThroughRedelivery is automatic redelivery with the
// real binary and the stand-in playing GitHub's webhook sender: pushes are
// sent while the server is down (connection refused) and through a proxy
// that answers 502 for it (an ingress in front of a stopped server). When
// the server is back, it asks GitHub to redeliver them and every push's
// pipeline runs to its end, once. A GUID the server processed whose only
// attempt GitHub lists failed (its answer timed out on GitHub's side) is
// never asked for and never handled twice.
func TestServerDownPushesRunThroughRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	outage, nDown := redeliverFigure(t)
	h := newHarness(t)
	root := t.TempDir()
	progs := replReposN(t, h.gh, root, nDown+1)
	h.gitURL = "file://" + root + "/"
	h.sandbox = "none" // the sample scripts append to the test's deploys.log
	direct := h.url("/webhooks")
	h.gh.SetWebhook(direct, []byte(testSecret))
	serveURL, _ := url.Parse("http://" + h.addr)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(serveURL)) // 502 while the server is down
	defer proxy.Close()

	// Up: a push the server takes, sent by the test so that the stand-in
	// lists no attempt of it yet. Redelivery is off in this run, so that
	// the test decides when the first pass comes: at the next start.
	h.extra = []string{"--redeliver-interval", "0"}
	first := h.start(t, "first")
	h.waitReady(t)
	pushes := make([][]byte, len(progs))
	for i, p := range progs {
		pushes[i] = replPush(t, p, i)
	}
	const taken = "taken-0000-4000-8000-000000000000"
	if code := h.send(t, "push", taken, pushes[0]); code != http.StatusAccepted {
		t.Fatalf("push while up answered %d", code)
	}
	waitFor(t, 60*time.Second, "the push sent while up to be processed", func() bool { return h.processed(t, taken) })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()

	// Down: every attempt fails, every third through the proxy.
	down := time.Now()
	lost := map[string]int{} // GUID -> program
	for i := 1; i < len(progs); i++ {
		guid := fmt.Sprintf("down-%04d-4000-8000-000000000000", i)
		lost[guid] = i
		hook := direct
		if i%3 == 0 {
			hook = proxy.URL + "/webhooks"
		}
		h.gh.SetWebhook(hook, []byte(testSecret))
		if d := h.gh.SendWebhook("push", guid, pushes[i]); d.OK() {
			t.Fatalf("push %s delivered while the server is down: %+v", guid, d)
		}
		time.Sleep(time.Until(down.Add(outage * time.Duration(i) / time.Duration(len(progs)))))
	}
	// GitHub's own attempt of the taken push, listed as failed (it timed
	// out on GitHub's side after the server had stored it).
	if d := h.gh.SendWebhook("push", taken, pushes[0]); d.OK() {
		t.Fatalf("attempt while down delivered: %+v", d)
	}
	time.Sleep(time.Until(down.Add(outage)))
	statuses := map[string]bool{}
	for _, d := range h.gh.HookDeliveries() {
		statuses[d.Status] = true
	}
	if !statuses["failed to connect to host"] || !statuses["Invalid HTTP Response: 502"] {
		t.Fatalf("attempts while down: %+v, want refused connections and a 502", h.gh.HookDeliveries())
	}

	// Back, with automatic redelivery.
	h.gh.SetWebhook(direct, []byte(testSecret))
	h.extra = []string{"--redeliver-interval", "1s"}
	back := time.Now()
	second := h.start(t, "second")
	h.waitReady(t)
	ready := time.Now()
	finished := func(guid string) bool {
		for _, e := range h.executions(t) {
			if e.DeliveryID == guid && replTerminal(e.State) {
				return true
			}
		}
		return false
	}
	waitFor(t, 180*time.Second, "every push sent while down to run", func() bool {
		for guid := range lost {
			if !finished(guid) {
				return false
			}
		}
		return finished(taken) // killed mid-pipeline: taken over after the restart
	})
	t.Logf("server down %v while %d pushes were sent; every one ran to its end %v after the server was back (ready after %v)",
		back.Sub(down).Round(time.Millisecond), nDown, time.Since(back).Round(time.Millisecond), ready.Sub(back).Round(time.Millisecond))
	// Two more passes, which must ask for nothing more.
	passes := func() int {
		n := 0
		for _, c := range h.gh.Calls() {
			if c.Operation == "GET /app/hook/deliveries" {
				n++
			}
		}
		return n
	}
	after := passes()
	waitFor(t, 30*time.Second, "two more redelivery passes", func() bool { return passes() >= after+2 })
	if _, metrics := h.get("/metrics"); !strings.Contains(metrics, fmt.Sprintf(`stagehand_redeliveries_requested_total{outcome="requested"} %d`, nDown)) {
		t.Errorf("/metrics does not count %d requested redeliveries:\n%s", nDown, grepLines(metrics, "stagehand_redeliveries"))
	}
	// The check runs follow: the reporter of a restarted server waits for
	// its killed predecessor's reporter lease to run out first (10 s),
	// which can be after the pipelines ended.
	reported := func(i int) bool {
		for _, cr := range h.gh.CheckRuns(replOwner, progs[i].repo) {
			if cr.HeadSHA == progs[i].commits[0] && cr.Conclusion == "success" {
				return true
			}
		}
		return false
	}
	waitFor(t, 60*time.Second, "every pipeline's successful check run", func() bool {
		for i := range progs {
			if !reported(i) {
				return false
			}
		}
		return true
	})
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = second.cmd.Wait()

	// Each lost GUID was redelivered once, and delivered; the taken one never.
	redelivered := map[string]int{}
	for _, d := range h.gh.HookDeliveries() {
		if d.Redelivery {
			redelivered[d.GUID]++
			if !d.OK() {
				t.Errorf("redelivery %+v failed", d)
			}
		}
	}
	want := map[string]int{}
	for guid := range lost {
		want[guid] = 1
	}
	if diff := cmp.Diff(want, redelivered); diff != "" {
		t.Errorf("redeliveries by GUID (-want +got):\n%s", diff)
	}
	// Every push's pipeline ran once, to the end, and deployed to stage once.
	byGUID := map[string][]bot.Execution{}
	for _, e := range h.executions(t) {
		byGUID[e.DeliveryID] = append(byGUID[e.DeliveryID], e)
	}
	all := map[string]int{taken: 0}
	for guid, i := range lost {
		all[guid] = i
	}
	for guid, i := range all {
		es := byGUID[guid]
		if len(es) != 1 || es[0].Pipeline != bot.StageOnly || es[0].State != bot.ExecutionSucceeded || es[0].Commit != progs[i].commits[0] {
			t.Errorf("executions of %s: %+v, want one stage-only that succeeded at %s", guid, es, progs[i].commits[0])
		}
		log, _ := os.ReadFile(filepath.Join(progs[i].record, "deploys.log"))
		if n := strings.Count(string(log), "deploy stage stage-only"); n != 1 {
			t.Errorf("%s deployed to stage %d times, want once:\n%s", progs[i].repo, n, log)
		}
	}
	if len(byGUID) != len(progs) {
		t.Errorf("executions from %d deliveries, want %d: %v", len(byGUID), len(progs), byGUID)
	}
	logs, _ := os.ReadFile(second.logs)
	for guid := range lost {
		if !strings.Contains(string(logs), "redelivery: asked GitHub to send a delivery Stagehand missed again") || !strings.Contains(string(logs), bot.LogDeliveryID+"="+guid) {
			t.Errorf("the server's log does not name the redelivery of %s", guid)
		}
	}
	h.gh.AssertNoErrors(t)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// redeliverParts are what startRedeliver needs: the stand-in with the App
// registered, the App, and a store in dataDir (closed at the test's end).
func redeliverParts(t *testing.T, dataDir string) (*githubtest.Server, *githubapp.App, bot.Store) {
	t.Helper()
	gh := githubtest.New(t)
	pemBytes, key := githubtest.GenerateAppKey(t)
	gh.SetAppKey(testAppID, &key.PublicKey)
	app, err := githubapp.New(githubapp.Options{AppID: testAppID, PrivateKeyPEM: pemBytes, APIURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.OpenSQLite(context.Background(), filepath.Join(dataDir, "stagehand.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return gh, app, store
}

// TestRedeliverGivesTheLeaseBackOnStop: serve's automatic redelivery holds
// its lease from pass to pass, and a clean stop hands it over at once, so
// the next process (an upgrade, a restart) makes its first pass at start
// instead of minutes later.
func TestRedeliverGivesTheLeaseBackOnStop(t *testing.T) {
	ctx := context.Background()
	gh, app, store := redeliverParts(t, t.TempDir())
	other := func() bool {
		t.Helper()
		held, err := bot.StoreLease(store, redeliverLease, "another process", time.Now, time.Minute)(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	stop := startRedeliver(ctx, &config.Server{RedeliverInterval: time.Hour}, app, store, router.NewMetrics(nil), slog.New(slog.DiscardHandler))
	waitFor(t, 30*time.Second, "the first redelivery pass", func() bool {
		for _, c := range gh.Calls() {
			if c.Operation == "GET /app/hook/deliveries" {
				return true
			}
		}
		return false
	})
	if other() {
		t.Fatalf("another process took the redeliver lease while its holder runs")
	}
	stop()
	if !other() {
		t.Errorf("after a clean stop, another process cannot take the redeliver lease")
	}
	gh.AssertNoErrors(t)
}
