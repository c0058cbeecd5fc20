package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

func openTestArtifacts(t *testing.T) (*Artifacts, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "artifacts")
	a, err := OpenArtifacts(root)
	if err != nil {
		t.Fatalf("OpenArtifacts: %v", err)
	}
	return a, root
}

// writeArtifactTree writes files (slash path → content) under dir with mode 0o644.
func writeArtifactTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		writeArtifact(t, dir, p, content, 0o644)
	}
}

func writeArtifact(t *testing.T, dir, p, content string, mode fs.FileMode) {
	t.Helper()
	name := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// artifactBlobCount counts the files stored under root/blobs.
func artifactBlobCount(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func artifactPaths(s ArtifactSet) []string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Path)
	}
	return out
}

func sha256Hex(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

func TestArtifactCollectGlobs(t *testing.T) {
	dir := t.TempDir()
	writeArtifactTree(t, dir, map[string]string{
		"dist/app.js":            "app",
		"dist/.hidden":           "hidden",
		"dist/js/vendor/lib.js":  "lib",
		"notes.txt":              "notes",
		"readme.txt":             "readme",
		"a/b/c.txt":              "abc",
		"a/x/c.txt":              "axc",
		"a/b/d/c.txt":            "abdc",
		"site/index.html":        "index",
		"site/other.html":        "other",
		"src/main.go":            "package main",
		"out":                    "a file named like a directory",
		"deep/er/still/file.bin": "bin",
	})

	tests := []struct {
		name      string
		globs     []string
		want      []string // paths of the set
		wantEmpty []string // globs ArtifactNoMatchError names
	}{
		{name: "dist/** takes nested files and dot files", globs: []string{"dist/**"},
			want: []string{"dist/.hidden", "dist/app.js", "dist/js/vendor/lib.js"}},
		{name: "** matches zero segments in the middle", globs: []string{"dist/**/*.js"},
			want: []string{"dist/app.js", "dist/js/vendor/lib.js"}},
		{name: "** matches zero segments at the start", globs: []string{"**/c.txt"},
			want: []string{"a/b/c.txt", "a/b/d/c.txt", "a/x/c.txt"}},
		{name: "** matches zero segments at the end", globs: []string{"out/**"},
			want: []string{"out"}},
		{name: "* stays in one directory", globs: []string{"*.txt"},
			want: []string{"notes.txt", "readme.txt"}},
		{name: "* as a whole middle segment", globs: []string{"a/*/c.txt"},
			want: []string{"a/b/c.txt", "a/x/c.txt"}},
		{name: "exact path", globs: []string{"site/index.html"},
			want: []string{"site/index.html"}},
		{name: "character class", globs: []string{"site/[io]*.html"},
			want: []string{"site/index.html", "site/other.html"}},
		{name: "overlapping globs record a file once", globs: []string{"dist/**", "dist/app.js", "**/*.js"},
			want: []string{"dist/.hidden", "dist/app.js", "dist/js/vendor/lib.js"}},
		{name: "everything", globs: []string{"**"},
			want: []string{"a/b/c.txt", "a/b/d/c.txt", "a/x/c.txt", "deep/er/still/file.bin", "dist/.hidden", "dist/app.js",
				"dist/js/vendor/lib.js", "notes.txt", "out", "readme.txt", "site/index.html", "site/other.html", "src/main.go"}},
		{name: "empty globs among others are all named", globs: []string{"dist/**", "out/*.zip", "site/index.html", "build/**"},
			wantEmpty: []string{"out/*.zip", "build/**"}},
		{name: "no match at all", globs: []string{"out/*.zip", "*.md"},
			wantEmpty: []string{"out/*.zip", "*.md"}},
		{name: "a directory is not a file", globs: []string{"src"},
			wantEmpty: []string{"src"}},
		{name: "* does not cross directories", globs: []string{"a/*.txt", "deep/*/file.bin"},
			wantEmpty: []string{"a/*.txt", "deep/*/file.bin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := openTestArtifacts(t)
			set, err := a.Collect(t.Context(), dir, tc.globs)
			if tc.wantEmpty != nil {
				var nm *ArtifactNoMatchError
				if !errors.As(err, &nm) {
					t.Fatalf("Collect(%q) = %v, want an ArtifactNoMatchError", tc.globs, err)
				}
				if diff := cmp.Diff(tc.wantEmpty, nm.Globs); diff != "" {
					t.Errorf("globs that matched nothing (-want +got):\n%s", diff)
				}
				if want := "build matched no file for " + strings.Join(tc.wantEmpty, ", "); err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Collect(%q): %v", tc.globs, err)
			}
			if diff := cmp.Diff(tc.want, artifactPaths(set)); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArtifactCollectRejects(t *testing.T) {
	dir := t.TempDir()
	writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
	tests := []struct {
		name  string
		globs []string
		want  string // in the error
	}{
		{"no globs", nil, "no globs"},
		{"absolute", []string{"/dist/**"}, `invalid artifact glob "/dist/**"`},
		{"parent", []string{"../dist/**"}, `invalid artifact glob "../dist/**"`},
		{"dot", []string{"./dist/**"}, `invalid artifact glob "./dist/**"`},
		{"bad pattern", []string{"dist/**", "dist/[a"}, `invalid artifact glob "dist/[a": syntax error in pattern`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := openTestArtifacts(t)
			_, err := a.Collect(t.Context(), dir, tc.globs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Collect(%q) = %v, want an error with %q", tc.globs, err, tc.want)
			}
		})
	}
}

// TestArtifactDigest checks content addressing: a digest depends on the
// paths, contents and executable bits only, and each content is stored once.
func TestArtifactDigest(t *testing.T) {
	files := map[string]string{
		"dist/one.txt":   "same",
		"dist/two.txt":   "same",
		"dist/three.txt": "other",
	}
	a, root := openTestArtifacts(t)
	ctx := t.Context()
	globs := []string{"dist/**"}

	dir := t.TempDir()
	writeArtifactTree(t, dir, files)
	first, err := a.Collect(ctx, dir, globs)
	if err != nil {
		t.Fatal(err)
	}
	// The canonical manifest written out by hand, sorted by path.
	canonical := fmt.Sprintf("%s  4  0644  dist/one.txt\n%s  5  0644  dist/three.txt\n%s  4  0644  dist/two.txt\n",
		sha256Hex("same"), sha256Hex("other"), sha256Hex("same"))
	if want := sha256Hex(canonical); first.Digest != want {
		t.Errorf("digest %s, want sha256 of the canonical manifest %s", first.Digest, want)
	}
	if got := artifactBlobCount(t, root); got != 2 {
		t.Errorf("after one Collect: %d blobs, want 2 (identical content stored once)", got)
	}

	tests := []struct {
		name      string
		write     func(t *testing.T, dir string)
		sameAs    bool // digest equal to first's
		wantBlobs int  // in the store afterwards
	}{
		{"same tree again", func(t *testing.T, dir string) { writeArtifactTree(t, dir, files) }, true, 2},
		{"files created in the other order, in another directory", func(t *testing.T, dir string) {
			for _, p := range []string{"dist/two.txt", "dist/three.txt", "dist/one.txt"} {
				writeArtifact(t, dir, p, files[p], 0o644)
			}
		}, true, 2},
		{"group write and other modes do not matter", func(t *testing.T, dir string) {
			writeArtifactTree(t, dir, files)
			if err := os.Chmod(filepath.Join(dir, "dist", "one.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true, 2},
		{"a changed byte", func(t *testing.T, dir string) {
			writeArtifactTree(t, dir, files)
			writeArtifact(t, dir, "dist/three.txt", "othes", 0o644)
		}, false, 3},
		{"the executable bit", func(t *testing.T, dir string) {
			writeArtifactTree(t, dir, files)
			writeArtifact(t, dir, "dist/one.txt", "same", 0o755)
		}, false, 3},
		{"a renamed file", func(t *testing.T, dir string) {
			writeArtifactTree(t, dir, map[string]string{"dist/one.txt": "same", "dist/two.txt": "same", "dist/four.txt": "other"})
		}, false, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.write(t, dir)
			set, err := a.Collect(ctx, dir, globs)
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Digest == first.Digest; got != tc.sameAs {
				t.Errorf("digest %s, first %s: same = %v, want %v", set.Digest, first.Digest, got, tc.sameAs)
			}
			if got := artifactBlobCount(t, root); got != tc.wantBlobs {
				t.Errorf("%d blobs, want %d", got, tc.wantBlobs)
			}
		})
	}

	info, err := os.Stat(filepath.Join(root, "blobs", sha256Hex("same")[:2], sha256Hex("same")))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %v, want read-only 0o444", info.Mode().Perm())
	}
}

func TestArtifactMaterializeRoundTrip(t *testing.T) {
	var binary bytes.Buffer
	for i := range 3 * 256 {
		binary.WriteByte(byte(i))
	}
	type file struct {
		content string
		mode    fs.FileMode
	}
	files := map[string]file{
		"dist/app.js":         {"console.log('hi')\n", 0o644},
		"dist/bin/deploy.sh":  {"#!/bin/sh\necho deploy\n", 0o755},
		"dist/bin/also-exec":  {"#!/bin/sh\n", 0o700},
		"dist/empty":          {"", 0o644},
		"dist/img/logo.bin":   {binary.String(), 0o644},
		"dist/img/copy.bin":   {binary.String(), 0o600},
		"dist/a b/ü ñ #?.txt": {"unicode and spaces", 0o644},
		"VERSION":             {"1.2.3\n", 0o644},
	}
	src := t.TempDir()
	for p, f := range files {
		writeArtifact(t, src, p, f.content, f.mode)
	}
	a, _ := openTestArtifacts(t)
	ctx := t.Context()
	set, err := a.Collect(ctx, src, []string{"dist/**", "VERSION"})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		total += int64(len(f.content))
	}
	if set.Size() != total {
		t.Errorf("Size() = %d, want %d", set.Size(), total)
	}
	got, err := a.Get(ctx, set.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(set, got); diff != "" {
		t.Errorf("Get differs from Collect (-collect +get):\n%s", diff)
	}

	dst := filepath.Join(t.TempDir(), "new", "artifacts")
	if err := a.Materialize(ctx, set.Digest, dst); err != nil {
		t.Fatal(err)
	}
	type out struct {
		Content string
		Exec    bool
	}
	want := map[string]out{}
	for p, f := range files {
		want[p] = out{f.content, f.mode&0o100 != 0}
	}
	gotFiles := map[string]out{}
	err = filepath.WalkDir(dst, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if m := info.Mode().Perm(); m != 0o644 && m != 0o755 {
			t.Errorf("%s: mode %v, want 0644 or 0755", name, m)
		}
		data, err := os.ReadFile(name)
		rel, _ := filepath.Rel(dst, name)
		gotFiles[filepath.ToSlash(rel)] = out{string(data), info.Mode()&0o100 != 0}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, gotFiles); diff != "" {
		t.Errorf("materialized files (-want +got):\n%s", diff)
	}

	// A directory that already holds something is refused: it would not
	// hold exactly the set.
	if err := a.Materialize(ctx, set.Digest, dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Materialize into a full directory = %v, want a not-empty error", err)
	}
}

func TestArtifactGetNotFound(t *testing.T) {
	a, _ := openTestArtifacts(t)
	for _, digest := range []string{sha256Hex("nothing"), "", "../../etc/passwd", strings.ToUpper(sha256Hex("x"))} {
		_, err := a.Get(t.Context(), digest)
		if !errors.Is(err, ErrArtifactSetNotFound) || !errors.Is(err, bot.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrArtifactSetNotFound and bot.ErrNotFound", digest, err)
		}
		if _, err := a.Verify(t.Context(), digest); !errors.Is(err, ErrArtifactSetNotFound) {
			t.Errorf("Verify(%q) = %v, want ErrArtifactSetNotFound", digest, err)
		}
		if err := a.Materialize(t.Context(), digest, t.TempDir()); !errors.Is(err, ErrArtifactSetNotFound) {
			t.Errorf("Materialize(%q) = %v, want ErrArtifactSetNotFound", digest, err)
		}
	}
}

func TestArtifactVerify(t *testing.T) {
	files := map[string]string{
		"dist/app.js":    "app",
		"dist/lib.js":    "library",
		"dist/copy.js":   "library",
		"dist/style.css": "css",
	}
	altered := func(got, want string) string {
		return fmt.Sprintf("altered (sha256 %s… expected %s…)", got[:12], want[:12])
	}
	// editManifest changes the stored manifest of digest with edit.
	editManifest := func(t *testing.T, root, digest string, edit func(*ArtifactSet)) {
		t.Helper()
		name := filepath.Join(root, "manifests", digest+".json")
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var s ArtifactSet
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		edit(&s)
		if data, err = json.Marshal(s); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(root, content string) string {
		return filepath.Join(root, "blobs", sha256Hex(content)[:2], sha256Hex(content))
	}
	fileIndex := func(s *ArtifactSet, p string) int {
		for i, f := range s.Files {
			if f.Path == p {
				return i
			}
		}
		panic(p)
	}

	tests := []struct {
		name         string
		damage       func(t *testing.T, root, digest string)
		wantManifest bool // a manifest fault
		want         []ArtifactFault
	}{
		{name: "intact", damage: func(*testing.T, string, string) {}},
		{name: "blob altered on disk", damage: func(t *testing.T, root, _ string) {
			if err := os.Chmod(blob(root, "app"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(blob(root, "app"), []byte("apq"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: []ArtifactFault{{"dist/app.js", altered(sha256Hex("apq"), sha256Hex("app"))}}},
		{name: "blob truncated", damage: func(t *testing.T, root, _ string) {
			if err := os.Chmod(blob(root, "css"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blob(root, "css"), 0); err != nil {
				t.Fatal(err)
			}
		}, want: []ArtifactFault{{"dist/style.css", altered(sha256Hex(""), sha256Hex("css"))}}},
		{name: "shared blob deleted names every path", damage: func(t *testing.T, root, _ string) {
			if err := os.Remove(blob(root, "library")); err != nil {
				t.Fatal(err)
			}
		}, want: []ArtifactFault{{"dist/copy.js", "missing"}, {"dist/lib.js", "missing"}}},
		{name: "manifest edited to another hash", damage: func(t *testing.T, root, digest string) {
			editManifest(t, root, digest, func(s *ArtifactSet) { s.Files[fileIndex(s, "dist/app.js")].SHA256 = sha256Hex("evil") })
		}, wantManifest: true, want: []ArtifactFault{{"dist/app.js", "missing"}}},
		{name: "manifest edited to another stored file", damage: func(t *testing.T, root, digest string) {
			editManifest(t, root, digest, func(s *ArtifactSet) { s.Files[fileIndex(s, "dist/app.js")].SHA256 = sha256Hex("library") })
		}, wantManifest: true, want: []ArtifactFault{{"dist/app.js", "altered (size 7 expected 3)"}}},
		{name: "manifest edited: executable bit", damage: func(t *testing.T, root, digest string) {
			editManifest(t, root, digest, func(s *ArtifactSet) { s.Files[0].Mode = 0o755 })
		}, wantManifest: true},
		{name: "manifest edited: digest field", damage: func(t *testing.T, root, digest string) {
			editManifest(t, root, digest, func(s *ArtifactSet) { s.Digest = sha256Hex("another set") })
		}, wantManifest: true},
		{name: "manifest edited: file dropped", damage: func(t *testing.T, root, digest string) {
			editManifest(t, root, digest, func(s *ArtifactSet) { s.Files = s.Files[1:] })
		}, wantManifest: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, root := openTestArtifacts(t)
			ctx := t.Context()
			dir := t.TempDir()
			writeArtifactTree(t, dir, files)
			set, err := a.Collect(ctx, dir, []string{"dist/**"})
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, root, set.Digest)

			got, err := a.Verify(ctx, set.Digest)
			if !tc.wantManifest && tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if diff := cmp.Diff(set, got); diff != "" {
					t.Errorf("Verify's set (-collect +verify):\n%s", diff)
				}
				if err := a.Materialize(ctx, set.Digest, t.TempDir()); err != nil {
					t.Errorf("Materialize: %v", err)
				}
				return
			}
			var se *ArtifactSetError
			if !errors.As(err, &se) {
				t.Fatalf("Verify = %v, want an ArtifactSetError", err)
			}
			if se.Digest != set.Digest {
				t.Errorf("error digest %s, want %s", se.Digest, set.Digest)
			}
			if (se.Manifest != "") != tc.wantManifest {
				t.Errorf("manifest fault %q, want one: %v", se.Manifest, tc.wantManifest)
			}
			if diff := cmp.Diff(tc.want, se.Faults); diff != "" {
				t.Errorf("faults (-want +got):\n%s", diff)
			}
			for _, f := range tc.want {
				if !strings.Contains(err.Error(), f.Path+": "+f.Problem) {
					t.Errorf("error %q does not name %s", err, f.Path)
				}
			}
			if tc.wantManifest && !strings.Contains(err.Error(), "manifest altered") {
				t.Errorf("error %q does not say the manifest was altered", err)
			}

			// Materialize refuses too, naming the file it stopped at, or the
			// manifest (which Get checks).
			mErr := a.Materialize(ctx, set.Digest, t.TempDir())
			if !errors.As(mErr, &se) {
				t.Fatalf("Materialize = %v, want an ArtifactSetError", mErr)
			}
			if tc.wantManifest {
				if _, err := a.Get(ctx, set.Digest); !errors.As(err, &se) || se.Manifest == "" {
					t.Errorf("Get = %v, want an altered manifest error", err)
				}
			} else if len(se.Faults) != 1 || se.Faults[0] != tc.want[0] {
				t.Errorf("Materialize = %v, want the fault %v", mErr, tc.want[0])
			}
		})
	}
}

func TestArtifactSymlinks(t *testing.T) {
	tests := []struct {
		name    string
		build   func(t *testing.T, dir, outside string)
		globs   []string
		want    map[string]string // path → content
		wantErr string            // in the error
	}{
		{name: "relative link to a file inside", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app", "shared/lib.js": "lib"})
				mustSymlink(t, "../shared/lib.js", filepath.Join(dir, "dist", "lib.js"))
			},
			want: map[string]string{"dist/app.js": "app", "dist/lib.js": "lib"}},
		{name: "absolute link to a file inside", globs: []string{"dist/*.js"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"shared/lib.js": "lib"})
				mustSymlink(t, filepath.Join(dir, "shared", "lib.js"), filepath.Join(dir, "dist", "lib.js"))
			},
			want: map[string]string{"dist/lib.js": "lib"}},
		{name: "link to a directory inside is walked", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app", "assets/img/logo.png": "png"})
				mustSymlink(t, "../assets", filepath.Join(dir, "dist", "assets"))
			},
			want: map[string]string{"dist/app.js": "app", "dist/assets/img/logo.png": "png"}},
		{name: "link to a file outside", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, outside string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
				writeArtifactTree(t, outside, map[string]string{"secret": "key"})
				mustSymlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "dist", "secret"))
			},
			wantErr: "symlink dist/secret points outside"},
		{name: "relative link climbing out", globs: []string{"dist/*"},
			build: func(t *testing.T, dir, outside string) {
				writeArtifactTree(t, outside, map[string]string{"secret": "key"})
				rel, err := filepath.Rel(filepath.Join(dir, "dist"), filepath.Join(outside, "secret"))
				if err != nil {
					t.Fatal(err)
				}
				mustSymlink(t, rel, filepath.Join(dir, "dist", "secret"))
			},
			wantErr: "symlink dist/secret points outside"},
		{name: "link to a directory outside", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, outside string) {
				writeArtifactTree(t, outside, map[string]string{"etc/passwd": "root"})
				mustSymlink(t, filepath.Join(outside, "etc"), filepath.Join(dir, "dist", "etc"))
			},
			wantErr: "symlink dist/etc points outside"},
		{name: "link outside that no glob can reach is ignored", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, outside string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
				writeArtifactTree(t, outside, map[string]string{"secret": "key"})
				mustSymlink(t, outside, filepath.Join(dir, "node_modules", "outside"))
			},
			want: map[string]string{"dist/app.js": "app"}},
		{name: "dangling link", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
				mustSymlink(t, "nowhere.js", filepath.Join(dir, "dist", "gone.js"))
			},
			wantErr: "symlink dist/gone.js does not resolve"},
		{name: "link loop", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
				mustSymlink(t, ".", filepath.Join(dir, "dist", "self"))
			},
			wantErr: "symlink dist/self loops"},
		{name: "link to the checkout itself", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
				mustSymlink(t, "..", filepath.Join(dir, "dist", "root"))
			},
			wantErr: "symlink dist/root loops"},
		{name: "unrecordable file name", globs: []string{"dist/**"},
			build: func(t *testing.T, dir, _ string) {
				writeArtifactTree(t, dir, map[string]string{"dist/a\nb": "newline"})
			},
			wantErr: `cannot record the name "dist/a\nb"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			tc.build(t, dir, outside)
			a, _ := openTestArtifacts(t)
			set, err := a.Collect(t.Context(), dir, tc.globs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Collect = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			dst := t.TempDir()
			if err := a.Materialize(t.Context(), set.Digest, dst); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, f := range set.Files {
				data, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(f.Path)))
				if err != nil {
					t.Fatal(err)
				}
				got[f.Path] = string(data)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestArtifactCollectConcurrent collects one tree from 8 goroutines, half of
// them through their own handle on the store as other processes would.
func TestArtifactCollectConcurrent(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("dist/f%02d.txt", i)] = strings.Repeat(fmt.Sprint(i%10), 10000) // 10 distinct contents
	}
	writeArtifactTree(t, dir, files)
	a, root := openTestArtifacts(t)
	ctx := t.Context()

	var wg sync.WaitGroup
	digests := make([]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			store := a
			if i%2 == 1 {
				if store, errs[i] = OpenArtifacts(root); errs[i] != nil {
					return
				}
			}
			var set ArtifactSet
			set, errs[i] = store.Collect(ctx, dir, []string{"dist/**"})
			digests[i] = set.Digest
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	for i := range digests {
		if digests[i] != digests[0] {
			t.Errorf("goroutine %d: digest %s, goroutine 0: %s", i, digests[i], digests[0])
		}
	}
	if got := artifactBlobCount(t, root); got != 10 {
		t.Errorf("%d blobs, want 10", got)
	}
	if _, err := a.Verify(ctx, digests[0]); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if entries, err := os.ReadDir(filepath.Join(root, "tmp")); err != nil || len(entries) != 0 {
		t.Errorf("tmp holds %d entries (%v), want none", len(entries), err)
	}
}

func TestArtifactCollectHealsDamagedBlob(t *testing.T) {
	dir := t.TempDir()
	writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
	a, root := openTestArtifacts(t)
	ctx := t.Context()
	set, err := a.Collect(ctx, dir, []string{"dist/**"})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(root, "blobs", sha256Hex("app")[:2], sha256Hex("app"))
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte("bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, set.Digest); err == nil {
		t.Fatal("Verify passed a damaged blob")
	}
	if _, err := a.Collect(ctx, dir, []string{"dist/**"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, set.Digest); err != nil {
		t.Errorf("after collecting the same file again, Verify: %v", err)
	}
}

func TestArtifactCollectCancelled(t *testing.T) {
	dir := t.TempDir()
	writeArtifactTree(t, dir, map[string]string{"dist/app.js": "app"})
	a, _ := openTestArtifacts(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.Collect(ctx, dir, []string{"dist/**"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Collect = %v, want context.Canceled", err)
	}
}
