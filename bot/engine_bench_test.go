package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

// benchEngine is an engine on a fresh SQLite store in dir.
func benchEngine(b *testing.B, dir string, jobs bot.JobPublisher) (*bot.Engine, *state.SQLite) {
	b.Helper()
	clock := newTestClock()
	store, err := state.OpenSQLite(context.Background(), filepath.Join(dir, "s.db"), state.WithClock(clock))
	if err != nil {
		b.Fatal(err)
	}
	src := newFakeSource()
	return &bot.Engine{
		Store: store, Clock: clock, Jobs: jobs, Source: src, Policy: src, ParseConfig: parseRepoConfig,
		Logger: slog.New(slog.DiscardHandler), PublicURL: "https://stagehand.test",
	}, store
}

// benchOutcome is a no-op command that succeeds.
func benchOutcome(c bot.Claim) bot.Outcome {
	switch c.Step.Name {
	case bot.StepBuild:
		return bot.Outcome{Succeeded: true, ArtifactDigest: "sha-of-" + c.Execution.Commit}
	case bot.StepArtifactPreparation:
		return bot.Outcome{Succeeded: true, ArtifactDigest: c.Source.ArtifactDigest}
	}
	return bot.Outcome{Succeeded: true}
}

func countStates(b *testing.B, store bot.Store) map[bot.ExecutionState]int {
	b.Helper()
	n := map[bot.ExecutionState]int{}
	err := store.View(context.Background(), func(tx bot.Tx) error {
		exs, err := tx.Executions(context.Background(), bot.ExecutionFilter{})
		for _, e := range exs {
			n[e.State]++
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkEngineStep is the engine's overhead per step with no-op
// commands: each iteration pushes a commit (a stage-only execution) and a
// worker drives it synchronously through build, deploy-stage and
// stage-tests (ClaimStep + FinishStep each). ns/op is per execution;
// ns/step divides the same time by the steps run.
func BenchmarkEngineStep(b *testing.B) {
	ctx := context.Background()
	q := &jobQueue{}
	eng, store := benchEngine(b, b.TempDir(), q)
	defer store.Close()
	raw := pipelineYAML("", "")
	cfg, err := parseRepoConfig.Config(raw)
	if err != nil {
		b.Fatal(err)
	}
	all := func(int, bot.Job) bool { return true }
	steps := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sha := fmt.Sprintf("%040x", i+1)
		if _, _, err := queuePush(ctx, store, eng, "acme", "bench", sha, raw, cfg, eng.Clock.Now()); err != nil {
			b.Fatal(err)
		}
		for jobs := q.take(all); len(jobs) > 0; jobs = q.take(all) {
			for _, j := range jobs {
				c, err := eng.ClaimStep(ctx, j)
				if err != nil {
					b.Fatalf("claiming %s: %v", j.ID(), err)
				}
				if err := eng.FinishStep(ctx, c, benchOutcome(c)); err != nil {
					b.Fatal(err)
				}
				steps++
			}
		}
	}
	elapsed := b.Elapsed()
	b.StopTimer()
	if got := countStates(b, store); got[bot.ExecutionSucceeded] != b.N || steps != 3*b.N {
		b.Fatalf("after %d executions: %d steps run, executions %v; want %d steps, all succeeded", b.N, steps, got, 3*b.N)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(steps), "ns/step")
}

// chanPublisher hands jobs to the workers through a channel.
type chanPublisher struct {
	ch   chan bot.Job
	done <-chan struct{}
}

func (p *chanPublisher) PublishJob(ctx context.Context, j bot.Job) error {
	select {
	case p.ch <- j:
		return nil
	case <-p.done:
		return errors.New("the workers have stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heapPeak samples runtime.MemStats.HeapInuse every 10ms until stop is
// called, which returns the largest value seen.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-finished
		sample()
		return peak.Load()
	}
}

// BenchmarkEngineConcurrent runs a batch of 200 executions over 50
// programs at once: each program gets two pushes (the second queued behind
// the first, rule C), and each succeeded stage-only execution is promoted
// (Promote Build) to a prod-only execution that is approved by hand — 2
// stage-only + 2 prod-only per program. 8 worker goroutines claim and
// finish the jobs from a channel until every execution has ended. ns/op is
// the wall time of one batch, from the pushes to the last execution's end:
// opening the batch's store before and checking it after are not timed.
// peak-heap-MB is the largest HeapInuse sampled every 10ms over the whole
// benchmark.
func BenchmarkEngineConcurrent(b *testing.B) {
	const (
		programs = 50
		pushes   = 2 // per program; each is promoted once
		workers  = 8
		total    = programs * pushes * 2
	)
	raw := pipelineYAML("", "approval: true, scheduled: false")
	cfg, err := parseRepoConfig.Config(raw)
	if err != nil {
		b.Fatal(err)
	}
	stopSampling := heapPeak()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		bt := openBatch(b, b.TempDir())
		b.StartTimer()
		err := bt.run(raw, cfg, programs, pushes, workers, total)
		b.StopTimer()
		bt.check(b, err, total)
		b.StartTimer()
	}
	peak := stopSampling()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/execution")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// concurrentBatch is one batch of BenchmarkEngineConcurrent: an engine on
// a fresh store whose jobs go to the workers through a channel.
type concurrentBatch struct {
	ctx    context.Context
	cancel context.CancelFunc
	pub    *chanPublisher
	eng    *bot.Engine
	store  *state.SQLite
	src    *fakeSource
}

func openBatch(b *testing.B, dir string) *concurrentBatch {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pub := &chanPublisher{ch: make(chan bot.Job, 1<<14), done: ctx.Done()}
	eng, store := benchEngine(b, dir, pub)
	return &concurrentBatch{ctx: ctx, cancel: cancel, pub: pub, eng: eng, store: store, src: eng.Source.(*fakeSource)}
}

// check fails the benchmark unless the batch ran without error and every
// execution succeeded; it closes the store.
func (bt *concurrentBatch) check(b *testing.B, err error, total int) {
	b.Helper()
	defer bt.store.Close()
	if err != nil {
		b.Fatal(err)
	}
	if got := countStates(b, bt.store); got[bot.ExecutionSucceeded] != total || len(got) != 1 {
		b.Fatalf("after the batch: executions %v, want %d succeeded", got, total)
	}
}

// run pushes to every program at once and returns when every execution
// has ended and the workers have stopped.
func (bt *concurrentBatch) run(raw []byte, cfg *bot.Config, programs, pushes, workers, total int) error {
	ctx, cancel, pub, eng, store := bt.ctx, bt.cancel, bt.pub, bt.eng, bt.store
	defer cancel()

	// A program's pending promotions: a stage-only execution that succeeds
	// while the previous promotion still runs is promoted when it ends.
	type prog struct {
		mu      sync.Mutex
		pending int
	}
	progs := map[int64]*prog{}
	var progsMu sync.Mutex
	progOf := func(id int64) *prog {
		progsMu.Lock()
		defer progsMu.Unlock()
		if progs[id] == nil {
			progs[id] = &prog{}
		}
		return progs[id]
	}
	promote := func(id int64) error {
		p := progOf(id)
		p.mu.Lock()
		defer p.mu.Unlock()
		for p.pending > 0 {
			_, err := eng.Promote(ctx, bot.Internal("dev"), id, 0)
			if isRuleError(err) {
				return nil // a promotion still runs; its end retries
			}
			if err != nil {
				return err
			}
			p.pending--
		}
		return nil
	}

	var done atomic.Int64
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) {
		if done.Load() == int64(total) {
			return // the batch is over; a late duplicate job met the cancelled context
		}
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				var j bot.Job
				select {
				case <-ctx.Done():
					return
				case j = <-pub.ch:
				}
				c, err := eng.ClaimStep(ctx, j)
				if errors.Is(err, bot.ErrStale) {
					continue
				}
				if err != nil {
					fail(fmt.Errorf("claiming %s: %w", j.ID(), err))
					return
				}
				if err := eng.FinishStep(ctx, c, benchOutcome(c)); err != nil {
					fail(err)
					return
				}
				ex := c.Execution
				switch {
				case ex.Pipeline == bot.StageOnly && c.Step.Name == bot.StepStageTests:
					p := progOf(ex.ProgramID)
					p.mu.Lock()
					p.pending++
					p.mu.Unlock()
					err = promote(ex.ProgramID)
				case ex.Pipeline == bot.ProdOnly && c.Step.Name == bot.StepApproval:
					_, err = eng.Approve(ctx, bot.Internal("approver"), ex.ProgramID, ex.Number)
				case ex.Pipeline == bot.ProdOnly && c.Step.Name == bot.StepDeployProduction:
					err = promote(ex.ProgramID)
				}
				if err != nil {
					fail(fmt.Errorf("after %s of %s: %w", c.Step.Name, ex, err))
					return
				}
				if c.Step.Name == bot.StepStageTests || c.Step.Name == bot.StepDeployProduction {
					if done.Add(1) == int64(total) {
						cancel()
					}
				}
			}
		})
	}
	// The pushes, all at once. The policy (Promote reads it) is the
	// configuration at the head of main.
	var pushers sync.WaitGroup
	for p := range programs {
		pushers.Go(func() {
			for n := range pushes {
				sha := fmt.Sprintf("%020x%020x", p+1, n+1)
				repo := fmt.Sprintf("app%02d", p)
				bt.src.set("acme/"+repo, sha, raw)
				_, _, err := queuePush(ctx, store, eng, "acme", repo, sha, raw, cfg, eng.Clock.Now())
				if err != nil {
					fail(fmt.Errorf("push: %w", err))
				}
			}
		})
	}
	pushers.Wait()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Minute):
		fail(fmt.Errorf("the batch did not end in 5 minutes: %d of %d executions ended", done.Load(), total))
	}
	wg.Wait()
	return firstErr
}
