package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/stagehand-dev/stagehand/bot"
)

// Reading a stored artifact set back: its manifest (Get), every file
// re-hashed (Verify), or its files written out under a directory
// (Materialize).

// Get returns the artifact set of digest, read from its manifest, after
// checking that the manifest still hashes to digest (*ArtifactSetError
// otherwise). It does not read the files: see Verify. A digest the store does
// not hold is an error wrapping ErrArtifactSetNotFound.
func (a *Artifacts) Get(ctx context.Context, digest string) (ArtifactSet, error) {
	set, altered, err := a.readManifest(ctx, digest)
	if err != nil {
		return ArtifactSet{}, err
	}
	if altered != "" {
		return ArtifactSet{}, &ArtifactSetError{Digest: digest, Manifest: altered}
	}
	return set, nil
}

// readManifest reads and checks the manifest of digest. altered is non-empty
// when the manifest no longer hashes to digest; err is for a manifest that is
// missing, unreadable or malformed.
func (a *Artifacts) readManifest(ctx context.Context, digest string) (set ArtifactSet, altered string, err error) {
	if err := ctx.Err(); err != nil {
		return ArtifactSet{}, "", err
	}
	if !bot.IsSHA256(digest) {
		return ArtifactSet{}, "", fmt.Errorf("%w: %q is not a sha256 digest", ErrArtifactSetNotFound, digest)
	}
	data, err := os.ReadFile(a.manifestPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return ArtifactSet{}, "", fmt.Errorf("%w: %s", ErrArtifactSetNotFound, digest)
	}
	if err != nil {
		return ArtifactSet{}, "", fmt.Errorf("artifact set %s: %w", bot.ShortHash(digest), err)
	}
	set, err = decodeManifest(data)
	if err != nil {
		return ArtifactSet{}, "", fmt.Errorf("artifact set %s: malformed manifest: %w", bot.ShortHash(digest), err)
	}
	if got := bot.ManifestDigest(set.Files); got != digest {
		altered = fmt.Sprintf("altered (sha256 %s expected %s)", bot.ShortHash(got), bot.ShortHash(digest))
	} else if set.Digest != digest {
		altered = fmt.Sprintf("altered (names digest %s)", bot.ShortHash(set.Digest))
	}
	set.Digest = digest
	return set, altered, nil
}

// Verify re-hashes every file of the artifact set of digest and checks that
// its manifest still hashes to digest. When anything is wrong the error is an
// *ArtifactSetError that lists the manifest and each missing or altered file
// by path, e.g. "dist/app.js: altered (sha256 abc… expected def…)".
func (a *Artifacts) Verify(ctx context.Context, digest string) (ArtifactSet, error) {
	set, altered, err := a.readManifest(ctx, digest)
	if err != nil {
		return ArtifactSet{}, err
	}
	e := &ArtifactSetError{Digest: digest, Manifest: altered}
	type result struct {
		sum  string
		size int64
		err  error
	}
	hashed := map[string]result{} // files with the same content share a blob
	for _, f := range set.Files {
		if err := ctx.Err(); err != nil {
			return ArtifactSet{}, err
		}
		r, ok := hashed[f.SHA256]
		if !ok {
			r.sum, r.size, r.err = hashArtifactFile(a.blobPath(f.SHA256))
			hashed[f.SHA256] = r
		}
		switch {
		case errors.Is(r.err, fs.ErrNotExist):
			e.Faults = append(e.Faults, ArtifactFault{f.Path, "missing"})
		case r.err != nil:
			e.Faults = append(e.Faults, ArtifactFault{f.Path, "unreadable: " + r.err.Error()})
		default:
			if p := artifactProblem(f, r.sum, r.size); p != "" {
				e.Faults = append(e.Faults, ArtifactFault{f.Path, p})
			}
		}
	}
	if e.Manifest != "" || len(e.Faults) > 0 {
		return ArtifactSet{}, e
	}
	return set, nil
}

// artifactProblem describes how the content of sum and size differs from f,
// or is "".
func artifactProblem(f ArtifactFile, sum string, size int64) string {
	switch {
	case sum != f.SHA256:
		return fmt.Sprintf("altered (sha256 %s expected %s)", bot.ShortHash(sum), bot.ShortHash(f.SHA256))
	case size != f.Size:
		return fmt.Sprintf("altered (size %d expected %d)", size, f.Size)
	}
	return ""
}

// Materialize writes the files of the artifact set of digest at their paths
// under dir, with mode 0o644 or 0o755, hashing each file as it copies it. dir
// is created if needed and must be empty, so that it ends up holding exactly
// the set. A missing or altered file stops it with an *ArtifactSetError (the
// altered copy is removed); on any error dir holds part of the set and is
// the caller's to remove.
func (a *Artifacts) Materialize(ctx context.Context, digest string, dir string) error {
	set, err := a.Get(ctx, digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("materialize artifact set %s: %w", bot.ShortHash(digest), err)
	}
	if entries, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("materialize artifact set %s: %w", bot.ShortHash(digest), err)
	} else if len(entries) > 0 {
		return fmt.Errorf("materialize artifact set %s: %s is not empty", bot.ShortHash(digest), dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("materialize artifact set %s: %w", bot.ShortHash(digest), err)
	}
	defer root.Close()
	for _, f := range set.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		problem, err := a.materializeFile(root, f)
		if err != nil {
			return fmt.Errorf("materialize artifact set %s: %s: %w", bot.ShortHash(digest), f.Path, err)
		}
		if problem != "" {
			return &ArtifactSetError{Digest: digest, Faults: []ArtifactFault{{f.Path, problem}}}
		}
	}
	return nil
}

// materializeFile copies the blob of f to f.Path in root. problem is
// "missing" or "altered (...)" when the blob does not match f.
func (a *Artifacts) materializeFile(root *os.Root, f ArtifactFile) (problem string, err error) {
	src, err := os.Open(a.blobPath(f.SHA256))
	if errors.Is(err, fs.ErrNotExist) {
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	defer src.Close()
	name, dst, err := createArtifactFile(root, f)
	if err != nil {
		return "", err
	}
	sum, size, err := copyHashed(dst, src)
	if err == nil {
		err = dst.Chmod(fs.FileMode(f.Mode)) // exactly, whatever the umask
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		problem = artifactProblem(f, sum, size)
	}
	if err != nil || problem != "" {
		root.Remove(name)
	}
	return problem, err
}
