package handlers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// TestRetentionKeepsWhatProductionRan: three builds, each promoted and
// approved through comments, ran in production. After 31 days a retention
// pass that keeps no promotable build but production's last two deploys
// keeps the sets of the two newest deploys (the older of them neither
// deployed now nor promotable) and removes the oldest; the history says
// which builds can still be restored.
func TestRetentionKeepsWhatProductionRan(t *testing.T) {
	e := newSurfaceEnv(t, policyWith("    approvers: {users: [bob]}\n"))
	ctx := context.Background()
	var digests []string
	for i := range 3 {
		build, deploy := 2*i+1, 2*i+2
		e.repo.commit("change "+strconv.Itoa(i), map[string]string{"page.txt": strconv.Itoa(i)})
		e.push()
		digests = append(digests, e.waitState(build, bot.ExecutionSucceeded).ArtifactDigest)
		if reply := e.comment("mallory", "/stagehand promote"); !strings.Contains(reply.Body, "prod-only #"+strconv.Itoa(deploy)) {
			t.Fatalf("promote reply: %q", reply.Body)
		}
		e.waitStep(deploy, bot.StepApproval, bot.StepWaiting)
		if reply := e.comment("bob", "/stagehand approve "+strconv.Itoa(deploy)); !strings.HasPrefix(reply.Body, "✅") {
			t.Fatalf("bob's approval of #%d was answered %q", deploy, reply.Body)
		}
		e.waitState(deploy, bot.ExecutionSucceeded)
	}
	if digests[0] == digests[1] || digests[1] == digests[2] {
		t.Fatalf("the builds made equal artifact sets %v; the test needs distinct ones", digests)
	}
	r := &worker.Retainer{Store: e.store, Artifacts: e.worker.Artifacts.(worker.ArtifactPruner), DataDir: e.dataDir, Clock: e.clock,
		Policy: bot.Retention{Age: 30 * 24 * time.Hour, KeepDeployed: 2}, Logger: e.hooks.Logger}
	e.clock.Advance(31 * 24 * time.Hour)
	passStart := e.clock.Now()
	st, err := r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	passEnd := e.clock.Now()
	if st.Sets != 1 {
		t.Errorf("the pass removed %d artifact sets, want 1 (the oldest)", st.Sets)
	}
	for i, d := range digests {
		_, err := e.worker.Artifacts.Verify(ctx, d)
		if gone := errors.Is(err, bot.ErrNotFound); gone != (i == 0) || (!gone && err != nil) {
			t.Errorf("Verify(set of #%d) after the pass: %v", 2*i+1, err)
		}
	}

	got := map[int]string{}
	for _, d := range e.apiHistory("production").Deployments {
		got[d.ExecutionNumber] = d.Artifacts
		// The pass recorded when it removed the set: the history says it.
		if d.PrunedAt != nil && !d.PrunedAt.Before(passStart) && !d.PrunedAt.After(passEnd) {
			got[d.ExecutionNumber] += " during the pass"
		} else if d.PrunedAt != nil {
			got[d.ExecutionNumber] += " at " + d.PrunedAt.String()
		}
	}
	if diff := cmp.Diff(map[int]string{2: "pruned during the pass", 4: "kept", 6: "kept"}, got); diff != "" {
		t.Errorf("production's history: are the artifacts kept (-want +got):\n%s", diff)
	}
}
