package router

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/state"
)

var _ worker.ArtifactStore = (*state.NATSArtifacts)(nil)

// newReplicaArtifacts is the artifact store of one replica: its own local
// store (its own data directory) over the shared broker.
func newReplicaArtifacts(t *testing.T, b *Broker) *state.NATSArtifacts {
	t.Helper()
	a, _ := newReplica(t, b)
	return a
}

// newReplica is newReplicaArtifacts with the replica's local store.
func newReplica(t *testing.T, b *Broker) (*state.NATSArtifacts, *state.Artifacts) {
	t.Helper()
	local, err := state.OpenArtifacts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	a, err := NewNATSArtifacts(ctx, b, local)
	if err != nil {
		t.Fatalf("NewNATSArtifacts: %v", err)
	}
	a.TempDir = t.TempDir()
	return a, local
}

type testFile struct {
	content string
	mode    fs.FileMode
}

var buildFiles = map[string]testFile{
	"bin/tool":          {"#!/bin/sh\necho hi\n", 0o755},
	"dist/app.js":       {"console.log('app')\n", 0o644},
	"dist/copy.js":      {"console.log('app')\n", 0o644}, // same content as app.js
	"dist/.hidden":      {"secret-ish\n", 0o644},
	"dist/deep/a/b.txt": {strings.Repeat("large ", 100_000), 0o644}, // several chunks
	"empty":             {"", 0o644},
}

// distinctBlobs is the number of distinct contents in buildFiles.
const distinctBlobs = 5

func writeTree(t *testing.T, files map[string]testFile) string {
	t.Helper()
	dir := t.TempDir()
	for p, f := range files {
		name := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func checkTree(t *testing.T, dir string, want map[string]testFile) {
	t.Helper()
	got := map[string]testFile{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, name)
		got[filepath.ToSlash(rel)] = testFile{string(data), info.Mode().Perm()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("materialized %d files, want %d", len(got), len(want))
	}
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: not materialized", p)
		case g.content != w.content:
			t.Errorf("%s: content differs (%d bytes, want %d)", p, len(g.content), len(w.content))
		case g.mode != w.mode:
			t.Errorf("%s: mode %#o, want %#o", p, g.mode, w.mode)
		}
	}
}

// countObjects counts the live objects of the bucket by key prefix.
func countObjects(t *testing.T, a *state.NATSArtifacts) (blobs, manifests int) {
	t.Helper()
	blobs, manifests, err := a.CountObjects(t.Context())
	if err != nil {
		t.Error(err)
	}
	return blobs, manifests
}

func TestNATSArtifacts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := be.open(t, BrokerOptions{})
		if be.name == "external" {
			t.Cleanup(func() {
				if err := b.js.DeleteObjectStore(context.Background(), ArtifactsBucket(b.opts.Prefix)); err != nil &&
					!errors.Is(err, jetstream.ErrBucketNotFound) {
					t.Errorf("deleting the artifact bucket: %v", err)
				}
			})
		}
		ctx := t.Context()
		src := writeTree(t, buildFiles)
		replicaA := newReplicaArtifacts(t, b)
		if got, want := replicaA.Bucket(), b.opts.Prefix+"_artifacts"; got != want {
			t.Errorf("Bucket() = %q, want %q", got, want)
		}

		set, err := replicaA.Collect(ctx, src, []string{"**"})
		if err != nil {
			t.Fatalf("Collect on A: %v", err)
		}
		if len(set.Files) != len(buildFiles) {
			t.Fatalf("Collect on A: %d files, want %d", len(set.Files), len(buildFiles))
		}
		if blobs, manifests := countObjects(t, replicaA); blobs != distinctBlobs || manifests != 1 {
			t.Errorf("after Collect: %d blobs and %d manifests in the bucket, want %d and 1", blobs, manifests, distinctBlobs)
		}

		t.Run("materialize on another replica", func(t *testing.T) {
			replicaB := newReplicaArtifacts(t, b)
			out := filepath.Join(t.TempDir(), "out")
			if err := replicaB.Materialize(ctx, set.Digest, out); err != nil {
				t.Fatalf("Materialize on B: %v", err)
			}
			checkTree(t, out, buildFiles)
			got, err := replicaB.Verify(ctx, set.Digest)
			if err != nil {
				t.Fatalf("Verify on B: %v", err)
			}
			if got.Digest != set.Digest || len(got.Files) != len(set.Files) {
				t.Errorf("Verify on B = %s with %d files, want %s with %d", got.Digest, len(got.Files), set.Digest, len(set.Files))
			}
		})

		t.Run("verify on another replica", func(t *testing.T) {
			replicaB := newReplicaArtifacts(t, b)
			if _, err := replicaB.Verify(ctx, set.Digest); err != nil {
				t.Fatalf("Verify on a fresh replica: %v", err)
			}
		})

		t.Run("identical blobs are uploaded once", func(t *testing.T) {
			// The same build again on A, and on another replica from
			// another checkout with one more copy of known content.
			if _, err := replicaA.Collect(ctx, src, []string{"**"}); err != nil {
				t.Fatalf("Collect again on A: %v", err)
			}
			more := map[string]testFile{"other/copy.js": buildFiles["dist/app.js"]}
			for p, f := range buildFiles {
				more[p] = f
			}
			set2, err := newReplicaArtifacts(t, b).Collect(ctx, writeTree(t, more), []string{"**"})
			if err != nil {
				t.Fatalf("Collect on B: %v", err)
			}
			if set2.Digest == set.Digest {
				t.Fatal("a different set has the same digest")
			}
			if blobs, manifests := countObjects(t, replicaA); blobs != distinctBlobs || manifests != 2 {
				t.Errorf("%d blobs and %d manifests in the bucket, want %d and 2", blobs, manifests, distinctBlobs)
			}
		})

		t.Run("unknown digest", func(t *testing.T) {
			replicaC := newReplicaArtifacts(t, b)
			unknown := strings.Repeat("ab", 32)
			if _, err := replicaC.Verify(ctx, unknown); !errors.Is(err, bot.ErrNotFound) || !strings.Contains(err.Error(), unknown) {
				t.Errorf("Verify(unknown) = %v, want an error wrapping bot.ErrNotFound naming the digest", err)
			}
			err := replicaC.Materialize(ctx, unknown, filepath.Join(t.TempDir(), "out"))
			if !errors.Is(err, bot.ErrNotFound) || !strings.Contains(err.Error(), unknown) {
				t.Errorf("Materialize(unknown) = %v, want an error wrapping bot.ErrNotFound naming the digest", err)
			}
			if _, err := replicaC.Verify(ctx, "not-a-digest"); !errors.Is(err, bot.ErrNotFound) {
				t.Errorf("Verify(not-a-digest) = %v, want an error wrapping bot.ErrNotFound", err)
			}
		})

		// Last: it alters the shared bucket.
		t.Run("blob altered in the bucket", func(t *testing.T) {
			var tool bot.ArtifactFile
			for _, f := range set.Files {
				if f.Path == "bin/tool" {
					tool = f
				}
			}
			obs, err := b.js.ObjectStore(ctx, replicaA.Bucket())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obs.PutString(ctx, "blobs/"+tool.SHA256, "#!/bin/sh\nrm -rf /\n"); err != nil {
				t.Fatal(err)
			}
			replicaC, localC := newReplica(t, b)
			_, err = replicaC.Verify(ctx, set.Digest)
			var rerr *state.RemoteArtifactError
			if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "bin/tool: altered") {
				t.Fatalf("Verify on C with an altered blob = %v, want a *RemoteArtifactError naming bin/tool", err)
			}
			if strings.Contains(err.Error(), "dist/") {
				t.Errorf("Verify on C names intact files: %v", err)
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := replicaC.Materialize(ctx, set.Digest, out); err == nil || !strings.Contains(err.Error(), "bin/tool") {
				t.Errorf("Materialize on C with an altered blob = %v, want an error naming bin/tool", err)
			}
			if _, err := os.Stat(filepath.Join(out, "bin", "tool")); err == nil {
				t.Error("Materialize on C wrote the altered file")
			}
			// The local store of C took nothing.
			if _, err := localC.Get(ctx, set.Digest); !errors.Is(err, bot.ErrNotFound) {
				t.Errorf("C's local store after a failed fetch: Get = %v, want not found", err)
			}

			// Collecting the build again replaces the altered blob.
			if _, err := replicaA.Collect(ctx, src, []string{"**"}); err != nil {
				t.Fatalf("Collect again on A: %v", err)
			}
			if _, err := newReplicaArtifacts(t, b).Verify(ctx, set.Digest); err != nil {
				t.Errorf("Verify on a fresh replica after the blob was uploaded again: %v", err)
			}
		})
	})
}
