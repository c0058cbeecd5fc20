package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// ErrArtifactSetNotFound is wrapped by the errors of Get, Verify and
// Materialize when the store holds no artifact set of the asked-for digest.
// It wraps bot.ErrNotFound, so errors.Is works with either.
var ErrArtifactSetNotFound = fmt.Errorf("artifact set %w", bot.ErrNotFound)

// ArtifactFile and ArtifactSet are the domain's values (bot), kept under
// these names here for the store's callers.
type (
	ArtifactFile = bot.ArtifactFile
	ArtifactSet  = bot.ArtifactSet
)

// ArtifactFault is one thing wrong with a file of an artifact set.
type ArtifactFault struct {
	Path    string // the file's path in the set
	Problem string // "missing", or "altered (...)"
}

// ArtifactSetError says what is wrong with a stored artifact set: its
// manifest no longer hashes to its digest, or files are missing or altered.
type ArtifactSetError struct {
	Digest   string
	Manifest string          // non-empty when the manifest was altered: how
	Faults   []ArtifactFault // in the manifest's order
}

func (e *ArtifactSetError) Error() string {
	var parts []string
	if e.Manifest != "" {
		parts = append(parts, "manifest "+e.Manifest)
	}
	for _, f := range e.Faults {
		parts = append(parts, f.Path+": "+f.Problem)
	}
	return fmt.Sprintf("artifact set %s: %s", bot.ShortHash(e.Digest), strings.Join(parts, "; "))
}

// ArtifactNoMatchError is Collect's error when globs matched no file.
type ArtifactNoMatchError struct {
	Globs []string // every glob that matched no file, in the order given
}

func (e *ArtifactNoMatchError) Error() string {
	return "build matched no file for " + strings.Join(e.Globs, ", ")
}

// Artifacts is a content-addressed store of artifact sets in a directory:
//
//	blobs/<first 2 hex digits>/<sha256>   each distinct content once, mode 0o444
//	manifests/<digest>.json               one ArtifactSet as JSON, mode 0o444
//	tmp/                                  files being written
//
// Every file reaches its final name by rename after an fsync, so a crash
// leaves either nothing or a complete file there (and maybe debris in tmp/).
// Several Artifacts, in one process or several, may share a directory.
type Artifacts struct {
	root string
}

// OpenArtifacts opens the store in root, creating its directories.
func OpenArtifacts(root string) (*Artifacts, error) {
	for _, d := range []string{"blobs", "manifests", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("open artifact store: %w", err)
		}
	}
	if err := syncArtifactDir(root); err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	return &Artifacts{root: root}, nil
}

func (a *Artifacts) blobPath(sum string) string {
	return filepath.Join(a.root, "blobs", sum[:2], sum)
}

func (a *Artifacts) manifestPath(digest string) string {
	return filepath.Join(a.root, "manifests", digest+".json")
}

// Collect copies every regular file under dir that matches one of globs into
// the store and records the set's manifest. Globs are relative to dir,
// slash-separated; a segment ** matches any number of path segments (zero
// included: dist/**/*.js matches dist/app.js, and dist/** a file named dist),
// other segments use path.Match syntax, where * also matches a leading dot. A
// glob that matches no file is an error (*ArtifactNoMatchError names every
// such glob); directories are not files, so the glob dist matches nothing in
// a build that writes a directory dist.
//
// Symbolic links are followed when their target stays inside dir; a link that
// points outside, dangles or loops is an error naming it, when it matches a
// glob or a glob may match something below it (links elsewhere are ignored).
// Files are recorded at the path of the link.
func (a *Artifacts) Collect(ctx context.Context, dir string, globs []string) (ArtifactSet, error) {
	found, err := findArtifacts(ctx, dir, globs)
	if err != nil {
		return ArtifactSet{}, err
	}
	defer found.root.Close()

	files := make([]ArtifactFile, 0, len(found.files))
	for _, m := range found.files {
		if err := ctx.Err(); err != nil {
			return ArtifactSet{}, err
		}
		f, err := a.storeBlob(found.root, m.real)
		if err != nil {
			return ArtifactSet{}, fmt.Errorf("collect %s: %w", m.path, err)
		}
		f.Path = m.path
		files = append(files, f)
	}
	slices.SortFunc(files, func(x, y ArtifactFile) int { return strings.Compare(x.Path, y.Path) })
	set := ArtifactSet{Digest: bot.ManifestDigest(files), Files: files}

	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return ArtifactSet{}, err
	}
	if err := a.writeFile(a.manifestPath(set.Digest), append(data, '\n')); err != nil {
		return ArtifactSet{}, fmt.Errorf("record artifact set %s: %w", bot.ShortHash(set.Digest), err)
	}
	return set, nil
}

// storeBlob copies the regular file name of root into the store and describes
// it (without its Path).
func (a *Artifacts) storeBlob(root *os.Root, name string) (ArtifactFile, error) {
	src, err := root.Open(name)
	if err != nil {
		return ArtifactFile{}, err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return ArtifactFile{}, err
	}
	if !info.Mode().IsRegular() {
		return ArtifactFile{}, fmt.Errorf("not a regular file (%s)", info.Mode().Type())
	}
	mode := uint32(0o644)
	if info.Mode()&0o111 != 0 {
		mode = 0o755
	}

	tmp, err := os.CreateTemp(filepath.Join(a.root, "tmp"), "blob-*")
	if err != nil {
		return ArtifactFile{}, err
	}
	committed := false
	defer func() { discardTemp(tmp, committed) }()
	sum, size, err := copyHashed(tmp, src)
	if err != nil {
		return ArtifactFile{}, err
	}
	f := ArtifactFile{Size: size, SHA256: sum, Mode: mode}

	final := a.blobPath(sum)
	if got, _, err := hashArtifactFile(final); err == nil && got == sum {
		// Stored before, and intact. Its time is renewed, so that Prune,
		// which spares recent files, cannot take it before the manifest
		// that will name it is written.
		now := time.Now()
		if err := os.Chtimes(final, now, now); err != nil {
			return ArtifactFile{}, err
		}
		return f, nil
	}
	// New content, or a stored copy that was damaged: (re)place it.
	if err := commitArtifactFile(tmp, final); err != nil {
		return ArtifactFile{}, err
	}
	committed = true
	return f, nil
}

// writeFile writes data to final through a temporary file.
func (a *Artifacts) writeFile(final string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Join(a.root, "tmp"), "manifest-*")
	if err != nil {
		return err
	}
	committed := false
	defer func() { discardTemp(tmp, committed) }()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := commitArtifactFile(tmp, final); err != nil {
		return err
	}
	committed = true
	return nil
}

// commitArtifactFile makes the complete temporary file tmp read-only and
// durable, then renames it to final, replacing any file there.
func commitArtifactFile(tmp *os.File, final string) error {
	if err := tmp.Chmod(0o444); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	dir := filepath.Dir(final) // blobs/<aa> or manifests
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncArtifactDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	return syncArtifactDir(dir)
}

// discardTemp closes tmp and, unless it was committed, removes it.
func discardTemp(tmp *os.File, committed bool) {
	tmp.Close()
	if !committed {
		os.Remove(tmp.Name())
	}
}

// syncArtifactDir makes the entries of dir, such as a rename into it,
// durable.
func syncArtifactDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// hashArtifactFile returns the sha256 (hex) and size of the file at name.
func hashArtifactFile(name string) (string, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return copyHashed(io.Discard, f)
}

// copyHashed copies src to dst and returns the sha256 (hex) and size of
// what it copied, as far as it got.
func copyHashed(dst io.Writer, src io.Reader) (sum string, size int64, err error) {
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(dst, h), src)
	return hex.EncodeToString(h.Sum(nil)), size, err
}

// createArtifactFile creates the file f.Path in root, and its directories,
// for writing with f's mode (before the umask); there must be no file
// there yet.
func createArtifactFile(root *os.Root, f ArtifactFile) (name string, dst *os.File, err error) {
	name = filepath.FromSlash(f.Path)
	if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return name, nil, err
	}
	dst, err = root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(f.Mode))
	return name, dst, err
}

// decodeManifest reads a manifest strictly (no unknown fields) and checks
// its files (bot.CheckManifest); whether it hashes to its digest is the
// caller's to check.
func decodeManifest(data []byte) (ArtifactSet, error) {
	var set ArtifactSet
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		return ArtifactSet{}, err
	}
	if err := bot.CheckManifest(set.Files); err != nil {
		return ArtifactSet{}, err
	}
	return set, nil
}
