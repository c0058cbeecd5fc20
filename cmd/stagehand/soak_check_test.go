package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
)

// drain brings the soak to rest: every delivery GitHub could not deliver
// brought back by Stagehand's automatic redelivery, every accepted one
// processed (or poisoned), every execution that waits for approval
// approved, every execution over and brought to GitHub.
func (s *soak) drain() {
	t := s.t
	ctx := context.Background()
	start := time.Now()
	// Automatic redelivery asks for at most 20 deliveries a pass, and a
	// server started after a kill may wait for its predecessor's lease;
	// the wait ends when it has made no progress for 3 minutes.
	progress, left, lastLog := start, -1, start
	for {
		undelivered := s.ledger.undelivered()
		if len(undelivered) == 0 {
			break
		}
		if len(undelivered) != left {
			progress, left = time.Now(), len(undelivered)
		}
		if time.Since(progress) > 3*time.Minute || time.Since(start) > 20*time.Minute {
			var guids []string
			for _, d := range undelivered {
				guids = append(guids, d.guid)
			}
			t.Errorf("after %v, %d deliveries GitHub could not deliver were not brought back by automatic redelivery (counted lost; the driver sends them itself): %v",
				time.Since(start).Round(time.Second), len(undelivered), guids)
			for _, d := range undelivered {
				s.ledger.resend(d)
			}
			break
		}
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("draining: %d deliveries GitHub could not deliver wait for automatic redelivery", len(undelivered))
			lastLog = time.Now()
		}
		time.Sleep(time.Second)
	}
	t.Logf("every delivery accepted after %v", time.Since(start).Round(time.Second))
	// Every accepted delivery processed or poisoned; after 5 minutes
	// check() counts the others as lost.
	for wait := time.Now(); ; time.Sleep(time.Second) {
		var pending []string
		attempts := s.ledger.attempts()
		for _, d := range s.ledger.all() {
			if rec := s.record(d.guid); s.ledger.accepted(d, attempts[d.guid]) && rec.ProcessedAt.IsZero() && rec.PoisonedAt.IsZero() {
				pending = append(pending, d.guid)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Since(wait) > 5*time.Minute {
			t.Errorf("after 5m, %d accepted deliveries are neither processed nor poisoned: %v", len(pending), pending)
			break
		}
	}
	parse := func(b []byte) (*bot.Config, bot.Diagnostics) {
		return config.ParseRepoConfig(config.RepoConfigPath, b)
	}
	engine := &bot.Engine{Store: s.store, Clock: bot.SystemClock{}, Jobs: noJobs{}, Logger: slog.New(slog.DiscardHandler),
		ParseConfig: parse, Policy: recordedPolicy{store: s.store, parse: parse}}
	drainStart, lastLog := time.Now(), time.Time{}
	for {
		_, exs := replAll(t, s.store)
		active := map[bot.ExecutionState]int{}
		for _, ex := range exs {
			if !replTerminal(ex.State) {
				active[ex.State]++
			}
			if ex.State == bot.ExecutionWaiting && s.atApproval(ex) {
				approve := engine.Approve
				if ex.Rollback != "" {
					approve = engine.ApproveRollback
				}
				_, err := approve(ctx, bot.Internal("bob"), ex.ProgramID, ex.Number)
				var re *bot.RuleError
				switch {
				case err == nil:
					s.stats.add("drain approvals", 1)
				case errors.As(err, &re):
					t.Logf("approving %s of program %d: %v", ex, ex.ProgramID, err)
				default:
					t.Fatalf("approving %s of program %d: %v", ex, ex.ProgramID, err)
				}
			}
		}
		if len(active) == 0 {
			break
		}
		if time.Since(drainStart) > 3*time.Minute {
			break // check() reports what is stuck
		}
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("draining: %d executions, active %v", len(exs), active)
			lastLog = time.Now()
		}
		time.Sleep(time.Second)
	}
	waitFor(t, 2*time.Minute, "the reporter to bring every execution to GitHub", func() bool {
		_, exs := replAll(t, s.store)
		for _, ex := range exs {
			if ex.ReportedVersion < ex.Version {
				return false
			}
		}
		return true
	})
	t.Logf("drained in %v", time.Since(start).Round(time.Second))
}

func (s *soak) record(guid string) bot.DeliveryRecord {
	var rec bot.DeliveryRecord
	ctx := context.Background()
	err := s.store.View(ctx, func(tx bot.Tx) error {
		var err error
		rec, err = tx.DeliveryRecord(ctx, guid)
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return rec
}

func (s *soak) atApproval(ex bot.Execution) bool {
	ctx := context.Background()
	var steps []bot.Step
	_ = s.store.View(ctx, func(tx bot.Tx) error {
		var err error
		steps, err = tx.Steps(ctx, ex.ID)
		return err
	})
	for _, st := range steps {
		if st.Name == bot.StepApproval && st.State == bot.StepWaiting {
			return true
		}
	}
	return false
}

// check verifies every invariant and prints the summary line.
func (s *soak) check() {
	t := s.t
	progByID, exs := replAll(t, s.store)
	progOf := map[string]*soakProgram{}
	for _, p := range s.progs {
		progOf[p.repo] = p
	}
	bad := map[string]int{} // invariant → violations

	// (1) Every delivery sent is processed exactly once.
	// Delivered means by GitHub (at its first attempt or at a redelivery
	// Stagehand asked for) or taken by Stagehand though GitHub recorded the
	// attempt as failed; one the driver had to resend counts as lost.
	processed, poisoned := 0, 0
	attempts := s.ledger.attempts()
	for _, d := range s.ledger.all() {
		rec := s.record(d.guid)
		switch {
		case !rec.ProcessedAt.IsZero():
			processed++
		case !rec.PoisonedAt.IsZero():
			poisoned++
		}
		switch {
		case len(d.resent) > 0:
			bad["lost"]++
			t.Errorf("lost: %s delivery %s was not delivered by GitHub, directly or by automatic redelivery (%s)", d.event, d.guid, answers(attempts[d.guid], d))
		case !rec.PoisonedAt.IsZero():
			bad["lost"]++
			t.Errorf("lost: %s delivery %s was poisoned: %s (%s)", d.event, d.guid, rec.PoisonReason, answers(attempts[d.guid], d))
		case rec.ProcessedAt.IsZero():
			bad["lost"]++
			t.Errorf("lost: %s delivery %s was never processed (%s)", d.event, d.guid, answers(attempts[d.guid], d))
		}
	}
	perDelivery := map[string]int{}
	for _, ex := range exs {
		if ex.DeliveryID != "" {
			perDelivery[ex.DeliveryID+" "+string(ex.Pipeline)]++
		}
	}
	for k, n := range perDelivery {
		if n > 1 {
			bad["doubled"]++
			t.Errorf("doubled: delivery/pipeline %s created %d executions", k, n)
		}
	}
	// Every push to main started its stage-only pipeline (rule A), which
	// ran or was superseded while queued (rule C).
	for _, d := range s.ledger.all() {
		if d.kind == "push" && perDelivery[d.guid+" "+string(bot.StageOnly)] == 0 {
			bad["lost"]++
			t.Errorf("lost: push %s started no stage-only execution", d.guid)
		}
	}

	// (2) No deploy ran twice for one execution and step (SPEC rule I: a
	// deploy whose outcome is unknown after a crash fails, it is never run
	// again); a build or a test may run again. Every succeeded execution
	// deployed each of its environments once.
	deploys, stepRunsN := 0, 0
	byProg := map[int64][]bot.Execution{}
	for _, ex := range exs {
		byProg[ex.ProgramID] = append(byProg[ex.ProgramID], ex)
	}
	for pid, prog := range progByID {
		p := progOf[prog.Repo]
		if p == nil {
			continue
		}
		runs := map[string]int{}
		for _, r := range stepRuns(p.record) {
			stepRunsN++
			runs[r.key()]++
			if r.step == "deploy" {
				deploys++
				if runs[r.key()] == 2 {
					bad["doubled"]++
					t.Errorf("doubled: %s: %s ran twice", p.repo, r.key())
				}
			}
		}
		for _, ex := range byProg[pid] {
			if ex.State != bot.ExecutionSucceeded {
				continue
			}
			for _, env := range soakEnvs(ex.Pipeline) {
				k := fmt.Sprintf("%s #%d deploy %s", ex.Pipeline, ex.Number, env)
				if runs[k] != 1 {
					bad["doubled"]++
					t.Errorf("%s: succeeded %s deployed %s %d times", p.repo, ex, env, runs[k])
				}
			}
		}
	}

	// (3) No execution is stuck; (4) rule B held: no full-stack execution
	// ran at the same time as another execution of its program, and no two
	// of one pipeline did.
	states, failures := map[string]int{}, map[string]int{}
	for pid, list := range byProg {
		for i, a := range list {
			states[string(a.State)]++
			if a.State == bot.ExecutionFailed {
				failures[soakReason(a.Message)]++
			}
			if !replTerminal(a.State) {
				bad["stuck"]++
				t.Errorf("stuck: %s of %s is still %s: %q", a, progByID[pid].FullName(), a.State, a.Message)
			}
			for _, b := range list[i+1:] {
				if a.StartedAt.IsZero() || b.StartedAt.IsZero() ||
					!(a.Pipeline == b.Pipeline || a.Pipeline == bot.FullStack || b.Pipeline == bot.FullStack) {
					continue
				}
				aEnd, bEnd := a.FinishedAt, b.FinishedAt
				if aEnd.IsZero() {
					aEnd = time.Now()
				}
				if bEnd.IsZero() {
					bEnd = time.Now()
				}
				if a.StartedAt.Before(bEnd) && b.StartedAt.Before(aEnd) {
					bad["rule B"]++
					t.Errorf("rule B: %s of %s ran %s–%s, %s ran %s–%s", a, progByID[pid].FullName(),
						a.StartedAt.Format("15:04:05.000"), a.FinishedAt.Format("15:04:05.000"), b,
						b.StartedAt.Format("15:04:05.000"), b.FinishedAt.Format("15:04:05.000"))
				}
			}
		}
	}

	// (5) Every final check run matches its execution.
	want := map[bot.ExecutionState]string{
		bot.ExecutionSucceeded: "success", bot.ExecutionFailed: "failure",
		bot.ExecutionCancelled: "cancelled", bot.ExecutionSkipped: "skipped",
	}
	runsOf := map[string][]githubtest.CheckRun{}
	for _, ex := range exs {
		prog := progByID[ex.ProgramID]
		runs, ok := runsOf[prog.Repo]
		if !ok {
			runs = s.gh.CheckRuns(prog.Owner, prog.Repo)
			runsOf[prog.Repo] = runs
		}
		var newest *githubtest.CheckRun
		for i := range runs {
			if runs[i].Name == "stagehand/"+string(ex.Pipeline) && runs[i].ExternalID == strconv.FormatInt(ex.ID, 10) {
				newest = &runs[i]
			}
		}
		switch {
		case newest == nil:
			bad["check runs"]++
			t.Errorf("check runs: %s of %s (%s) has none", ex, prog.FullName(), ex.State)
		case newest.Status != "completed" || newest.Conclusion != want[ex.State]:
			bad["check runs"]++
			t.Errorf("check runs: %s of %s is %s; its newest check run is %s/%s (%q), want completed/%s",
				ex, prog.FullName(), ex.State, newest.Status, newest.Conclusion, newest.Output.Title, want[ex.State])
		}
	}

	// (5b) No check run is left in progress (a create whose answer was
	// lost must not leave a second one spinning), and (5c) each deploy
	// that ran has exactly one GitHub Deployment, whose last status is
	// final.
	for _, ex := range exs {
		prog := progByID[ex.ProgramID]
		for _, cr := range runsOf[prog.Repo] {
			if cr.ExternalID == strconv.FormatInt(ex.ID, 10) && cr.Status != "completed" {
				bad["check runs"]++
				t.Errorf("check runs: %s of %s has check run %d left %s (%q)", ex, prog.FullName(), cr.ID, cr.Status, cr.Output.Title)
			}
		}
	}
	deployments := 0
	for _, prog := range progByID {
		p := progOf[prog.Repo]
		if p == nil {
			continue
		}
		ran := map[string]bool{}
		for _, r := range stepRuns(p.record) {
			if r.step == "deploy" {
				ran[fmt.Sprintf("%s #%d %s", r.pipeline, r.execution, r.env)] = true
			}
		}
		made := map[string]int{}
		for _, d := range s.gh.Deployments(prog.Owner, prog.Repo) {
			deployments++
			var pl struct {
				Execution int    `json:"execution"`
				Pipeline  string `json:"pipeline"`
			}
			_ = json.Unmarshal(d.Payload, &pl)
			k := fmt.Sprintf("%s #%d %s", pl.Pipeline, pl.Execution, d.Environment)
			made[k]++
			if made[k] == 2 {
				bad["deployments"]++
				t.Errorf("deployments: %s: %s has more than one GitHub Deployment", prog.FullName(), k)
			}
			last := ""
			for _, st := range d.Statuses {
				if !st.ByGitHub {
					last = st.State
				}
			}
			if last != "success" && last != "failure" && last != "error" {
				bad["deployments"]++
				t.Errorf("deployments: %s: the Deployment of %s (%d) ends %q", prog.FullName(), k, d.ID, last)
			}
		}
		for k := range ran {
			if made[k] == 0 {
				bad["deployments"]++
				t.Errorf("deployments: %s: %s deployed with no GitHub Deployment", prog.FullName(), k)
			}
		}
	}

	// (6) No request outside GitHub's schemas.
	violations := len(s.gh.Errors())
	s.gh.AssertNoErrors(t)

	var why []string
	for m, n := range failures {
		why = append(why, fmt.Sprintf("%5d %s", n, m))
	}
	sort.Strings(why)
	t.Logf("why executions failed:\n%s", strings.Join(why, "\n"))

	c := s.ledger.counts()
	var st []string
	for k, n := range states {
		st = append(st, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(st)
	t.Logf("soak summary: mode=%s servers=%d seed=%d took=%v kills=%d deploy_kills=%d startup_kills=%d github_outages=%d | "+
		"deliveries sent=%d accepted_first=%d failed_first=%d redelivered=%d redelivery_attempts=%d (failed %d) stored_though_failed=%d resent_by_driver=%d processed=%d poisoned=%d | "+
		"executions=%d (%s) deploys=%d step_runs=%d drain_approvals=%d github_deployments=%d github_answers_lost=%d | "+
		"lost=%d doubled=%d stuck=%d rule_b=%d check_runs_wrong=%d deployments_wrong=%d schema_violations=%d",
		s.c.name, s.c.replicas, s.c.seed, time.Since(s.began).Round(time.Second), s.stats.get("kills"), s.stats.get("deploy kills"),
		s.stats.get("startup kills"), s.stats.get("outages"), c["sent"], c["accepted first"], c["failed first"], c["redelivered"], c["redelivery attempts"], c["redelivery attempts failed"], c["stored though failed"], c["resent by driver"], processed, poisoned,
		len(exs), strings.Join(st, " "), deploys, stepRunsN, s.stats.get("drain approvals"), deployments, s.github.lost.Load(),
		bad["lost"], bad["doubled"], bad["stuck"], bad["rule B"], bad["check runs"], bad["deployments"], violations)
}

func soakEnvs(k bot.PipelineKind) []string {
	switch k {
	case bot.StageOnly:
		return []string{"stage"}
	case bot.ProdOnly:
		return []string{"production"}
	case bot.FullStack:
		return []string{"stage", "production"}
	}
	return nil
}

// soakReason is a failure message without its numbers, so that messages
// group.
func soakReason(m string) string {
	m = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, m)
	if len(m) > 160 {
		m = m[:160] + "…"
	}
	return m
}
