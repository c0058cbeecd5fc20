package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

// calendarPolicy is a default branch's file whose production deploys
// start only mon–thu 09:00–16:00 Berlin time, never during the year-end
// freeze. pipeline is the full-stack pipeline's extra settings.
func calendarPolicy(pipeline string) []byte {
	return []byte(`version: 1
build: {run: make dist, artifacts: ["dist/**"]}
environments:
  stage: {deploy: ./deploy.sh stage}
  production:
    deploy: ./deploy.sh production
    windows:
      - {days: [mon, tue, wed, thu], from: "09:00", to: "16:00", timezone: Europe/Berlin}
    freezes:
      - {from: 2026-12-20T00:00:00+01:00, to: 2027-01-04T00:00:00+01:00, reason: "year-end freeze"}
pipelines:
  full-stack: {branch: main, trigger: on-git-changes, approval: false` + pipeline + `}
`)
}

// sideBranchFile is a commit's own file that declares no windows and no
// freezes (and a stage window of its own, which must not count either).
var sideBranchFile = []byte(`version: 1
build: {run: make dist, artifacts: ["dist/**"]}
environments:
  stage: {deploy: ./deploy.sh stage}
  production: {deploy: ./deploy.sh production}
pipelines:
  full-stack: {branch: main, trigger: on-git-changes, approval: false}
`)

// calendarRig is one program on a store in a file, so the server can be
// stopped and started again.
type calendarRig struct {
	t       *testing.T
	ctx     context.Context
	clock   *testClock
	path    string
	store   *state.SQLite
	eng     *bot.Engine
	q       *jobQueue
	prog    bot.Program
	deploys map[int64]int // production deploys claimed, by execution
	// overridden are the executions given a break-glass override.
	overridden map[int64]bool
	// latest is the default branch's file recorded as the program's latest
	// policy (land), whose calendar holds every execution; nil: none.
	latest []byte
}

func berlin(t *testing.T, y int, m time.Month, d, h, min int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(y, m, d, h, min, 0, 0, loc)
}

func newCalendarRig(t *testing.T, start time.Time) *calendarRig {
	r := &calendarRig{t: t, ctx: context.Background(), clock: &testClock{t: start}, path: filepath.Join(t.TempDir(), "s.db"), deploys: map[int64]int{}, overridden: map[int64]bool{}}
	r.start()
	t.Cleanup(func() { r.store.Close() })
	return r
}

// start starts the server: a store on the file, an engine, an empty broker.
func (r *calendarRig) start() {
	store, err := state.OpenSQLite(r.ctx, r.path, state.WithClock(r.clock))
	if err != nil {
		r.t.Fatal(err)
	}
	r.store, r.q = store, &jobQueue{}
	r.eng = &bot.Engine{Store: store, Clock: r.clock, Jobs: r.q, ParseConfig: parseRepoConfig, Logger: slog.New(slog.DiscardHandler), PublicURL: "https://stagehand.test"}
}

// restart stops the server (its jobs in flight are lost) and starts it
// again at the time the clock shows then, reconciling as serve does.
func (r *calendarRig) restart(at time.Time) {
	r.t.Helper()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.set(at)
	r.start()
	r.reconcile()
}

func (r *calendarRig) set(at time.Time) {
	r.clock.mu.Lock()
	r.clock.t = at
	r.clock.mu.Unlock()
}

func (r *calendarRig) reconcile() {
	r.t.Helper()
	if err := r.eng.Reconcile(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

// push queues the full-stack execution of a push to main: commands from
// the commit's file, policy from the default branch's.
func (r *calendarRig) push(sha string, commands, policy []byte) bot.Execution {
	r.t.Helper()
	cfg, err := parseRepoConfig.Config(policy)
	if err != nil {
		r.t.Fatal(err)
	}
	var ex bot.Execution
	err = r.store.Update(r.ctx, func(tx bot.Tx) error {
		if r.prog, err = tx.EnsureProgram(r.ctx, 1, bot.Repository{Owner: "acme", Name: "shop"}); err != nil {
			return err
		}
		if err := tx.SetPipelines(r.ctx, r.prog.ID, pipelinesOf(r.prog.ID, cfg)); err != nil {
			return err
		}
		ex, err = bot.QueuePushStart(r.ctx, tx, bot.PushStart{Program: r.prog, Pipeline: bot.FullStack, Commit: sha, Branch: "main",
			Pusher: "dev", DeliveryID: "d-" + sha, Config: commands, Policy: policy, At: r.clock.Now()})
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.eng.Advance(r.ctx, r.prog.ID); err != nil {
		r.t.Fatal(err)
	}
	return ex
}

// work runs every job as the step workers do, until none is left.
func (r *calendarRig) work() {
	r.t.Helper()
	for jobs := r.q.take(func(int, bot.Job) bool { return true }); len(jobs) > 0; jobs = r.q.take(func(int, bot.Job) bool { return true }) {
		for _, j := range jobs {
			c, err := r.eng.ClaimStep(r.ctx, j)
			if errors.Is(err, bot.ErrStale) {
				continue
			}
			if err != nil {
				r.t.Fatalf("claiming %s: %v", j.ID(), err)
			}
			if c.Step.Name == bot.StepDeployProduction {
				r.deploys[c.Execution.ID]++
				if now := r.clock.Now(); !r.overridden[c.Execution.ID] && !r.calendar(c.Config).At(c.Step.StartedAt).Open {
					r.t.Errorf("%s deploys to production at %s, outside its windows (now %s)", c.Execution, c.Step.StartedAt, now)
				}
			}
			if err := r.eng.FinishStep(r.ctx, c, bot.Outcome{Succeeded: true, ArtifactDigest: "sha-of-" + c.Execution.Commit}); err != nil {
				r.t.Fatal(err)
			}
		}
	}
}

// deploy returns the execution and its deploy-production step.
func (r *calendarRig) deploy(ex bot.Execution) (bot.Execution, bot.Step) {
	return r.step(ex, bot.StepDeployProduction)
}

// step returns the execution and its step of that name.
func (r *calendarRig) step(ex bot.Execution, name bot.StepName) (bot.Execution, bot.Step) {
	r.t.Helper()
	var steps []bot.Step
	err := r.store.View(r.ctx, func(tx bot.Tx) error {
		var err error
		if ex, err = tx.Execution(r.ctx, ex.ID); err != nil {
			return err
		}
		steps, err = tx.Steps(r.ctx, ex.ID)
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range steps {
		if s.Name == name {
			return ex, s
		}
	}
	r.t.Fatalf("%s has no %s step", ex, name)
	return ex, bot.Step{}
}

// held fails unless ex waits for its calendar with a message holding want.
func (r *calendarRig) held(ex bot.Execution, want string) {
	r.t.Helper()
	ex, s := r.deploy(ex)
	if ex.State != bot.ExecutionWaiting || s.State != bot.StepWaiting || !strings.Contains(s.Message, want) || ex.Message != s.Message {
		r.t.Fatalf("at %s: %s is %s (%q), deploy-production %s (%q); want both waiting with %q", r.clock.Now(), ex, ex.State, ex.Message, s.State, s.Message, want)
	}
	if n := r.deploys[ex.ID]; n != 0 {
		r.t.Fatalf("%s deployed to production %d times while held", ex, n)
	}
}

// deployed fails unless ex succeeded with one production deploy, started
// at or after notBefore.
func (r *calendarRig) deployed(ex bot.Execution, notBefore time.Time) {
	r.t.Helper()
	ex, s := r.deploy(ex)
	if ex.State != bot.ExecutionSucceeded || s.State != bot.StepSucceeded || r.deploys[ex.ID] != 1 {
		r.t.Fatalf("%s is %s (%q), deploy-production %s, deployed %d times; want succeeded once", ex, ex.State, ex.Message, s.State, r.deploys[ex.ID])
	}
	if s.StartedAt.Before(notBefore) {
		r.t.Fatalf("%s's production deploy started at %s, before %s", ex, s.StartedAt, notBefore)
	}
}

// TestCalendarFridayEveningWaitsForMonday: a deploy due on Friday evening
// waits, saying why and until when, and starts by itself on Monday 09:00
// Berlin time; stage, which declares no windows, is deployed at once.
func TestCalendarFridayEveningWaitsForMonday(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 11, 6, 18, 0))
	ex := r.push("aaa", calendarPolicy(""), calendarPolicy(""))
	r.work()
	if _, stage := r.step(ex, bot.StepDeployStage); stage.State != bot.StepSucceeded {
		t.Fatalf("deploy-stage is %s (%q): stage declares no windows, so it deploys at once", stage.State, stage.Message)
	}
	r.held(ex, "waiting: outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 2 d 15 h)")
	for _, at := range []time.Time{berlin(t, 2026, 11, 7, 12, 0), berlin(t, 2026, 11, 8, 23, 0), berlin(t, 2026, 11, 9, 8, 58)} {
		r.set(at)
		r.reconcile()
		r.work()
	}
	r.held(ex, "opens Mon 09:00 Europe/Berlin (in 2 min)")
	monday := berlin(t, 2026, 11, 9, 9, 0)
	r.set(monday)
	r.reconcile()
	r.work()
	r.deployed(ex, monday)
}

// TestCalendarAcrossDaylightSaving: Monday 09:00 in Berlin is 07:00 UTC
// after the change to summer time and 08:00 UTC after the change back.
func TestCalendarAcrossDaylightSaving(t *testing.T) {
	for _, tc := range []struct {
		name            string
		friday          time.Time
		before, opening time.Time
		heldBefore      string
	}{
		{"to summer time", berlin(t, 2027, 3, 26, 18, 0), time.Date(2027, 3, 29, 6, 59, 0, 0, time.UTC), time.Date(2027, 3, 29, 7, 0, 0, 0, time.UTC), "opens Mon 09:00 Europe/Berlin (in 1 min)"},
		{"to winter time", berlin(t, 2026, 10, 23, 18, 0), time.Date(2026, 10, 26, 7, 30, 0, 0, time.UTC), time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC), "opens Mon 09:00 Europe/Berlin (in 30 min)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCalendarRig(t, tc.friday)
			ex := r.push("aaa", calendarPolicy(""), calendarPolicy(""))
			r.work()
			r.set(tc.before)
			r.reconcile()
			r.work()
			r.held(ex, tc.heldBefore)
			r.set(tc.opening)
			r.reconcile()
			r.work()
			r.deployed(ex, tc.opening)
		})
	}
}

// TestCalendarFreezeSpanningNewYear: inside the year-end freeze nothing
// deploys, not even inside a window; after it the next window opens.
func TestCalendarFreezeSpanningNewYear(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 12, 21, 10, 0)) // a Monday, inside the window
	ex := r.push("aaa", calendarPolicy(""), calendarPolicy(""))
	r.work()
	r.held(ex, "waiting: production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze; opens Mon 4 Jan 2027 09:00 Europe/Berlin (in 13 d 23 h)")
	for _, at := range []time.Time{berlin(t, 2026, 12, 31, 10, 0), berlin(t, 2027, 1, 1, 0, 0), berlin(t, 2027, 1, 4, 0, 0), berlin(t, 2027, 1, 4, 8, 0)} {
		r.set(at)
		r.reconcile()
		r.work()
	}
	r.held(ex, "outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 1 h)")
	opening := berlin(t, 2027, 1, 4, 9, 0)
	r.set(opening)
	r.reconcile()
	r.work()
	r.deployed(ex, opening)
}

// TestCalendarWindowOpensWhileTheServerIsDown: the window opens while no
// server runs; the server started after it deploys, once, however often it
// reconciles and whatever jobs are delivered twice.
func TestCalendarWindowOpensWhileTheServerIsDown(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 11, 6, 18, 0))
	ex := r.push("aaa", calendarPolicy(""), calendarPolicy(""))
	r.work()
	r.held(ex, "opens Mon 09:00 Europe/Berlin")
	r.restart(berlin(t, 2026, 11, 9, 10, 30))
	jobs := append([]bot.Job(nil), r.q.jobs...)
	r.reconcile()
	r.restart(berlin(t, 2026, 11, 9, 10, 31)) // down again before a worker ran it
	for _, j := range jobs {
		if err := r.q.PublishJob(r.ctx, j); err != nil { // the old job, delivered late
			t.Fatal(err)
		}
	}
	r.work()
	r.reconcile()
	r.work()
	r.deployed(ex, berlin(t, 2026, 11, 9, 10, 30))
}

// TestCalendarAttacks tries to get around the gate.
func TestCalendarAttacks(t *testing.T) {
	t.Run("a side branch's file without windows does not lift the default branch's", func(t *testing.T) {
		r := newCalendarRig(t, berlin(t, 2026, 11, 6, 18, 0))
		ex := r.push("bbb", sideBranchFile, calendarPolicy(""))
		r.work()
		r.held(ex, "outside the deploy windows of production")
	})
	t.Run("Deploy Now and schedule now do not open a freeze", func(t *testing.T) {
		r := newCalendarRig(t, berlin(t, 2026, 12, 22, 10, 0))
		ex := r.push("ccc", calendarPolicy(", scheduled: true"), calendarPolicy(", scheduled: true"))
		r.work()
		if _, err := r.eng.Schedule(r.ctx, bot.Internal("approver"), r.prog.ID, ex.Number, time.Time{}); err != nil {
			t.Fatalf("Deploy Now at the schedule gate: %v", err)
		}
		r.work()
		r.held(ex, "production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze")
		_, err := r.eng.Schedule(r.ctx, bot.Internal("approver"), r.prog.ID, ex.Number, time.Time{})
		var refusal *bot.Refusal
		if !errors.As(err, &refusal) {
			t.Fatalf("Deploy Now while held by the freeze = %v, want a refusal", err)
		}
		r.reconcile()
		r.work()
		r.held(ex, "year-end freeze")
	})
	t.Run("only an override recorded while it waits starts it", func(t *testing.T) {
		r := newCalendarRig(t, berlin(t, 2026, 12, 22, 10, 0))
		ex := r.push("ddd", calendarPolicy(""), calendarPolicy(""))
		early := r.clock.Now().Add(-time.Minute) // before it began to wait
		r.override(ex, early, "an old override")
		r.work()
		r.held(ex, "year-end freeze")
		r.set(berlin(t, 2026, 12, 22, 11, 0))
		r.override(ex, r.clock.Now(), "payment outage, fix #123")
		r.work()
		r.deployed(ex, berlin(t, 2026, 12, 22, 11, 0))
	})
}

// override records a break-glass override as the deploy-now --override
// command does, and advances the program.
func (r *calendarRig) override(ex bot.Execution, at time.Time, reason string) {
	r.t.Helper()
	r.overridden[ex.ID] = true
	err := r.store.Update(r.ctx, func(tx bot.Tx) error {
		return tx.AddEvent(r.ctx, bot.Event{ExecutionID: ex.ID, At: at, Actor: "approver", Kind: bot.EventPolicyOverride, Detail: reason})
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.eng.Advance(r.ctx, r.prog.ID); err != nil {
		r.t.Fatal(fmt.Errorf("advance after the override: %w", err))
	}
}

// TestCalendarInStatus: /stagehand status shows each environment's
// windows, the freezes not over yet, and whether deploys may start now.
func TestCalendarInStatus(t *testing.T) {
	r := newCalendarRig(t, berlin(t, 2026, 11, 8, 19, 0)) // a Sunday evening
	src := newFakeSource()
	src.set("acme/shop", "aaa", calendarPolicy(""))
	r.eng.Policy = src
	r.push("aaa", calendarPolicy(""), calendarPolicy(""))
	out, err := r.eng.Status(r.ctx, bot.Internal("dev"), r.prog.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  - deploy windows: mon–thu 09:00–16:00 Europe/Berlin\n",
		"  - freeze 2026-12-20T00:00:00+01:00 to 2027-01-04T00:00:00+01:00: year-end freeze\n",
		"  - closed: outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 14 h)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "- deploy windows:") != 1 {
		t.Errorf("stage declares no windows, yet status shows some:\n%s", out)
	}
	r.set(berlin(t, 2026, 11, 9, 10, 0))
	out, err = r.eng.Status(r.ctx, bot.Internal("dev"), r.prog.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "  - open now\n") {
		t.Errorf("status on Monday 10:00 does not say open now:\n%s", out)
	}
	cal, err := r.eng.Calendar(r.ctx, r.prog.ID, bot.Production)
	if err != nil || len(cal.Windows) != 1 || len(cal.Freezes) != 1 {
		t.Errorf("Calendar = %+v, %v", cal, err)
	}
}

// TestCalendarOfStage: stage is held only by windows it declares itself,
// and HeldByCalendar names the held step.
func TestCalendarOfStage(t *testing.T) {
	policy := []byte(strings.Replace(string(calendarPolicy("")), "  stage: {deploy: ./deploy.sh stage}\n",
		"  stage:\n    deploy: ./deploy.sh stage\n    windows: [{days: [mon, tue, wed, thu, fri], from: \"08:00\", to: \"18:00\", timezone: Europe/Berlin}]\n", 1))
	r := newCalendarRig(t, berlin(t, 2026, 11, 7, 12, 0)) // a Saturday
	ex := r.push("aaa", policy, policy)
	r.work()
	ex, s := r.step(ex, bot.StepDeployStage)
	if ex.State != bot.ExecutionWaiting || s.State != bot.StepWaiting || s.Message != "waiting: outside the deploy windows of stage (mon–fri 08:00–18:00 Europe/Berlin); opens Mon 08:00 Europe/Berlin (in 44 h)" {
		t.Fatalf("%s is %s, deploy-stage %s (%q)", ex, ex.State, s.State, s.Message)
	}
	var steps []bot.Step
	err := r.store.View(r.ctx, func(tx bot.Tx) error {
		var err error
		steps, err = tx.Steps(r.ctx, ex.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if held := bot.HeldByCalendar(ex, steps); held == nil || held.Name != bot.StepDeployStage {
		t.Errorf("HeldByCalendar = %+v, want deploy-stage", held)
	}
	r.set(berlin(t, 2026, 11, 9, 8, 0))
	r.reconcile()
	r.work()
	if _, s := r.step(ex, bot.StepDeployStage); s.State != bot.StepSucceeded {
		t.Fatalf("deploy-stage is %s (%q) on Monday 08:00", s.State, s.Message)
	}
	r.held(ex, "outside the deploy windows of production") // production's own window opens at 09:00
}
