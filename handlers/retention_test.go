package handlers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// TestRetention runs three stage-only executions for real, lets 31 days
// pass and makes a retention pass: every step log goes, the oldest
// artifact set goes, the two newest (promotable, one of them deployed on
// stage) stay and still verify.
func TestRetention(t *testing.T) {
	e := newPipelineEnv(t, sampleConfig(splitPipelines))
	ctx := context.Background()
	var digests []string
	for i := 1; i <= 3; i++ {
		e.repo.commit("change "+strconv.Itoa(i), map[string]string{"page.txt": strconv.Itoa(i)})
		e.push()
		ex := e.waitState(i, bot.ExecutionSucceeded)
		digests = append(digests, ex.ArtifactDigest)
	}
	if digests[0] == digests[1] || digests[1] == digests[2] {
		t.Fatalf("the builds made equal artifact sets %v; the test needs distinct ones", digests)
	}
	pruner := e.worker.Artifacts.(worker.ArtifactPruner)
	r := &worker.Retainer{Store: e.store, Artifacts: pruner, DataDir: e.dataDir, Clock: e.clock,
		Policy: bot.Retention{Age: 30 * 24 * time.Hour, KeepPromotable: 2}, Logger: e.hooks.Logger}

	// Nothing is old yet.
	if st, err := r.RunOnce(ctx); err != nil || cmp.Diff(worker.RetentionStats{}, st) != "" {
		t.Fatalf("first pass = %+v, %v; want nothing removed", st, err)
	}
	e.clock.Advance(31 * 24 * time.Hour)
	st, err := r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(1, st.Sets); diff != "" {
		t.Errorf("artifact sets removed (-want +got):\n%s", diff)
	}
	if st.Logs != 3 || st.Blobs == 0 || st.Bytes == 0 {
		t.Errorf("pass removed %+v, want the logs of 3 executions and the contents of the oldest set", st)
	}
	for i := 1; i <= 3; i++ {
		ex, _ := e.execution(i)
		if _, err := os.Stat(filepath.Join(e.dataDir, "logs", strconv.FormatInt(ex.ID, 10))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the logs of #%d are still there (%v)", i, err)
		}
	}
	verifier := e.worker.Artifacts
	if _, err := verifier.Verify(ctx, digests[0]); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Verify(oldest set) = %v, want not found", err)
	}
	for _, d := range digests[1:] {
		if _, err := verifier.Verify(ctx, d); err != nil {
			t.Errorf("Verify(%s) after the pass: %v", bot.ShortHash(d), err)
		}
	}
	// The record stays: executions, steps and log tails.
	ex1, steps := e.execution(1)
	if ex1.State != bot.ExecutionSucceeded || steps[0].LogTail == "" {
		t.Errorf("execution #1 after the pass: %s with build tail %q; want it kept with its tail", ex1.State, steps[0].LogTail)
	}
	if st, err := r.RunOnce(ctx); err != nil || cmp.Diff(worker.RetentionStats{}, st) != "" {
		t.Errorf("a second pass = %+v, %v; want nothing more removed", st, err)
	}
}
