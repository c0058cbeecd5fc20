package bot_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

// gateEnv is one program with a stage-only and a prod-only pipeline whose
// workers the test runs by hand (every command succeeds), for the tests
// of the approval quorum and the break-glass override.
type gateEnv struct {
	t     *testing.T
	ctx   context.Context
	clock *testClock
	store bot.Store
	eng   *bot.Engine
	src   *fakeSource
	q     *jobQueue
	prog  int64
	// rollback is what the approval's rollback check reports (rule G).
	rollback string
}

const gateSHA = "c0ffee0000000000000000000000000000000000"

// gateYAML is a configuration whose production environment adds prod.
func gateYAML(prod string) []byte {
	return []byte(`version: 1
build: {run: make dist, artifacts: ["dist/**"]}
environments:
  stage:
    deploy: ./deploy.sh stage
  production:
    deploy: ./deploy.sh production
` + prod + `pipelines:
  stage-only: {branch: main, trigger: on-git-changes}
  prod-only: {approval: true}
`)
}

// newGateEnv pushes policy to main (its stage-only execution #1 succeeds)
// and promotes it as "dev": prod-only #2 waits for approval. commands,
// when not nil, is the pushed commit's own file (the policy stays the
// default branch's).
func newGateEnv(t *testing.T, policy, commands []byte) *gateEnv {
	t.Helper()
	return newGateEnvWith(t, policy, commands, "")
}

func newGateEnvWith(t *testing.T, policy, commands []byte, rollback string) *gateEnv {
	t.Helper()
	ctx := context.Background()
	clock := newTestClock()
	store := openTestStore(t, clock)
	e := &gateEnv{t: t, ctx: ctx, clock: clock, store: store, src: newFakeSource(), q: &jobQueue{}, rollback: rollback}
	e.eng = &bot.Engine{Store: store, Clock: clock, Jobs: e.q, Source: e.src, Policy: e.src, ParseConfig: parseRepoConfig,
		Logger: slog.New(slog.DiscardHandler), PublicURL: "https://stagehand.test"}
	e.src.set("acme/app", gateSHA, policy)
	if commands == nil {
		commands = policy
	}
	cfg, err := parseRepoConfig.Config(policy)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	err = store.Update(ctx, func(tx bot.Tx) error {
		prog, err := tx.EnsureProgram(ctx, 1, bot.Repository{Owner: "acme", Name: "app", DefaultBranch: "main"})
		if err != nil {
			return err
		}
		e.prog = prog.ID
		if err := tx.SetPipelines(ctx, prog.ID, bot.PipelinesOf(prog.ID, cfg)); err != nil {
			return err
		}
		_, err = bot.QueuePushStart(ctx, tx, bot.PushStart{Program: prog, Pipeline: bot.StageOnly, Commit: gateSHA, Branch: "main",
			Pusher: "pusher", DeliveryID: "delivery-1", Config: commands, Policy: policy, At: clock.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Advance(ctx, e.prog); err != nil {
		t.Fatal(err)
	}
	e.work()
	if ex, _ := e.execution(1); ex.State != bot.ExecutionSucceeded {
		t.Fatalf("stage-only #1 is %s: %s", ex.State, ex.Message)
	}
	if _, err := e.eng.Promote(ctx, bot.Internal("dev"), e.prog, 1); err != nil {
		t.Fatal(err)
	}
	e.work()
	e.wantApprovalWaiting(2)
	return e
}

// work runs every job, and the jobs they lead to, as a worker would.
func (e *gateEnv) work() {
	e.t.Helper()
	for {
		jobs := e.q.take(func(int, bot.Job) bool { return true })
		if len(jobs) == 0 {
			return
		}
		for _, j := range jobs {
			c, err := e.eng.ClaimStep(e.ctx, j)
			if errors.Is(err, bot.ErrStale) {
				continue
			}
			if err != nil {
				e.t.Fatal(err)
			}
			o := bot.Outcome{Succeeded: true, Message: "ok"}
			switch c.Step.Name {
			case bot.StepBuild:
				o.ArtifactDigest = "sha-of-" + c.Execution.Commit
			case bot.StepArtifactPreparation:
				o.ArtifactDigest = c.Source.ArtifactDigest
			case bot.StepApproval:
				o.Rollback = e.rollback
			}
			if err := e.eng.FinishStep(e.ctx, c, o); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

func (e *gateEnv) execution(n int) (bot.Execution, []bot.Step) {
	e.t.Helper()
	var ex bot.Execution
	var steps []bot.Step
	err := e.store.View(e.ctx, func(tx bot.Tx) error {
		var err error
		if ex, err = tx.ExecutionByNumber(e.ctx, e.prog, n); err != nil {
			return err
		}
		steps, err = tx.Steps(e.ctx, ex.ID)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ex, steps
}

func (e *gateEnv) events(n int) []bot.Event {
	e.t.Helper()
	ex, _ := e.execution(n)
	var evs []bot.Event
	if err := e.store.View(e.ctx, func(tx bot.Tx) (err error) {
		evs, err = tx.Events(e.ctx, ex.ID)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *gateEnv) step(n int, name bot.StepName) bot.Step {
	e.t.Helper()
	_, steps := e.execution(n)
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("#%d has no step %s", n, name)
	return bot.Step{}
}

func (e *gateEnv) wantApprovalWaiting(n int) bot.Step {
	e.t.Helper()
	ex, _ := e.execution(n)
	s := e.step(n, bot.StepApproval)
	if ex.State != bot.ExecutionWaiting || s.State != bot.StepWaiting {
		e.t.Fatalf("#%d is %s with approval %s (%s), want it waiting for approval", n, ex.State, s.State, s.Message)
	}
	return s
}

// wantRefused checks that err is a refusal with code.
func wantRefused(t *testing.T, err error, code bot.RefusalCode) {
	t.Helper()
	if r := bot.Refused(err); r == nil || r.Code != code {
		t.Fatalf("err = %v, want a refusal %s", err, code)
	}
}

// approver is a comment's command by who, a production approver (as the
// webhook handlers establish it), keyed so it acts once.
func approver(who, key string) bot.Request {
	return bot.Request{Actor: who, Key: key, Source: bot.FromComment,
		Authorization: &bot.Authorization{ProductionApprover: true, Approvers: "alice, bob, carol, dev"}}
}

// newGateEnvRollback is newGateEnv where the approval's check finds that
// the deploy would roll production back (rule G).
func newGateEnvRollback(t *testing.T, policy []byte) *gateEnv {
	t.Helper()
	return newGateEnvWith(t, policy, nil, "would roll production back from 1234567 (full-stack #9) to c0ffee0 (stage-only #1)")
}
