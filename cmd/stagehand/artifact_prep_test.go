package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/state"
)

// TestArtifactPreparationRefusesDamagedArtifacts is rule F end to end with
// the real binary: a stage-only execution builds and succeeds, a file of
// its stored artifact set is then altered (or removed) on disk, and the
// promotion's (or a restore's) artifact-preparation step fails with a message naming the
// file and what is wrong with it; the execution fails, nothing is deployed
// to production and the prod-only check run on GitHub fails saying so.
func TestArtifactPreparationRefusesDamagedArtifacts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	alter := func(t *testing.T, blob string) {
		if err := os.Chmod(blob, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(blob, []byte("tampered with\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, blob string)
		want   string // in the step's message, after the file's path
		// restore: the prod-only execution is /stagehand restore
		// production 1 rather than a promotion.
		restore bool
	}{
		{"a stored file altered", alter, "dist/app.txt: altered (sha256 ", false},
		{"a stored file removed", func(t *testing.T, blob string) {
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
		}, "dist/app.txt: missing", false},
		{"a restored build's file altered", alter, "dist/app.txt: altered (sha256 ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			record, sha := crashSetup(t, h)
			h.start(t, "server")
			h.waitReady(t)
			if code := h.send(t, "push", "prep-"+strings.ReplaceAll(tt.name, " ", "-"), pushPayloadFor(t, sha)); code != 202 {
				t.Fatalf("push answered %d", code)
			}
			src := h.waitExecution(t, 1, bot.ExecutionSucceeded)
			tt.damage(t, storedBlob(t, h, src.ArtifactDigest, "dist/app.txt"))

			h.command(t, func(ctx context.Context, e *bot.Engine, prog bot.Program) error {
				if tt.restore {
					arts, err := state.OpenArtifacts(filepath.Join(h.dataDir, "artifacts")) // the restore asks whether the set is kept
					if err != nil {
						return err
					}
					e.Artifacts = arts
					_, err = e.Restore(ctx, bot.Internal("bob"), prog.ID, bot.Production, 1)
					return err
				}
				_, err := e.Promote(ctx, bot.Internal("alice"), prog.ID, 1)
				return err
			})
			// It ends, or waits for approval when artifact-preparation
			// wrongly passed.
			waitFor(t, 90*time.Second, "prod-only #2 to end or wait", func() bool {
				st := h.execution(t, 2).State
				return st == bot.ExecutionWaiting || st == bot.ExecutionSucceeded || st == bot.ExecutionFailed || st == bot.ExecutionCancelled
			})
			ex := h.execution(t, 2)
			if ex.Pipeline != bot.ProdOnly || ex.SourceID != src.ID || ex.State != bot.ExecutionFailed {
				t.Fatalf("execution #2 is %s from source id %d, %s (%q); want prod-only from stage-only #1, failed", ex, ex.SourceID, ex.State, ex.Message)
			}
			if tt.restore && ex.Cause != bot.CauseRestore {
				t.Errorf("#2's cause is %q, want restore", ex.Cause)
			}
			steps := h.steps(t, 2)
			prep := steps[0]
			if prep.Name != bot.StepArtifactPreparation || prep.State != bot.StepFailed {
				t.Fatalf("first step %s is %s, want artifact-preparation failed", prep.Name, prep.State)
			}
			for _, want := range []string{bot.ShortHash(src.ArtifactDigest)[:12], src.String(), tt.want} {
				if !strings.Contains(prep.Message, want) {
					t.Errorf("artifact-preparation says %q; it must name %q", prep.Message, want)
				}
			}
			if !strings.Contains(ex.Message, "artifact-preparation failed") || !strings.Contains(ex.Message, tt.want) {
				t.Errorf("the execution failed with %q; it must say artifact-preparation failed and %q", ex.Message, tt.want)
			}
			for _, s := range steps[1:] {
				if s.State != bot.StepSkipped {
					t.Errorf("step %s is %s after artifact-preparation failed, want skipped", s.Name, s.State)
				}
			}

			// Nothing reached production: no deploy ran, no GitHub
			// deployment names it, and the check run says why.
			if got := lines(t, record, "deploy.log"); len(got) != 1 || !strings.HasPrefix(got[0], "deploy stage") {
				t.Errorf("deploys = %q, want only stage-only #1's stage deploy", got)
			}
			waitFor(t, 60*time.Second, "the prod-only check run to fail", func() bool {
				for _, cr := range h.gh.CheckRuns("Codertocat", "Hello-World") {
					if strings.Contains(cr.Name, "prod-only") && cr.Conclusion == "failure" {
						out := cr.Output.Title + cr.Output.Summary + cr.Output.Text
						if !strings.Contains(out, tt.want) {
							t.Fatalf("the failed prod-only check run does not say %q:\n%s\n%s\n%s", tt.want, cr.Output.Title, cr.Output.Summary, cr.Output.Text)
						}
						return true
					}
				}
				return false
			})
			for _, d := range h.gh.Deployments("Codertocat", "Hello-World") {
				if d.Environment == "production" {
					t.Errorf("a production deployment was created: %+v", d)
				}
			}
		})
	}
}

// storedBlob is where the server's artifact store keeps the content of
// file path of the set digest (state.Artifacts: blobs/<2 hex>/<sha256>).
func storedBlob(t *testing.T, h *harness, digest, path string) string {
	t.Helper()
	root := filepath.Join(h.dataDir, "artifacts")
	store, err := state.OpenArtifacts(root)
	if err != nil {
		t.Fatal(err)
	}
	set, err := store.Get(context.Background(), digest)
	if err != nil {
		t.Fatalf("the stored artifact set of stage-only #1: %v", err)
	}
	for _, f := range set.Files {
		if f.Path == path {
			blob := filepath.Join(root, "blobs", f.SHA256[:2], f.SHA256)
			if _, err := os.Stat(blob); err != nil {
				t.Fatalf("the stored content of %s: %v", path, err)
			}
			return blob
		}
	}
	t.Fatalf("the artifact set %s has no %s: %+v", digest, path, set.Files)
	return ""
}
