package state

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-dev/stagehand/bot"
)

// LocalArtifacts is the artifact store of one replica (state.Artifacts):
// content-addressed sets in its data directory. NATSArtifacts shares its sets
// with the other replicas.
type LocalArtifacts interface {
	Collect(ctx context.Context, dir string, globs []string) (bot.ArtifactSet, error)
	// Get returns the set of digest from its manifest, without reading the
	// files; a digest the store does not hold is an error wrapping
	// bot.ErrNotFound.
	Get(ctx context.Context, digest string) (bot.ArtifactSet, error)
	Verify(ctx context.Context, digest string) (bot.ArtifactSet, error)
	Materialize(ctx context.Context, digest, dir string) error
}

// NATSArtifacts is an artifact store shared by every replica: each replica
// keeps its sets in its LocalArtifacts, and every set collected is also
// uploaded to the JetStream object store bucket "<prefix>_artifacts", from
// which a replica that does not have a set fetches it on first use.
//
// Objects in the bucket:
//
//	blobs/<sha256>       the content of files, each distinct content once
//	manifests/<digest>   the bot.ArtifactSet as JSON, uploaded after its blobs
//
// Nothing in the bucket is trusted: a fetched set is re-hashed file by file
// against its manifest, and the manifest against its digest, before the
// local store takes it.
type NATSArtifacts struct {
	local  LocalArtifacts
	obs    jetstream.ObjectStore
	bucket string
	where  string
	// TempDir is where fetched sets are assembled before the local store
	// takes them; "" is os.TempDir(). Set it before use (the data directory
	// is a good choice: the local store's files go there anyway).
	TempDir string
}

const (
	artifactBlobPrefix     = "blobs/"
	artifactManifestPrefix = "manifests/"
)

// NewNATSArtifacts is the shared store over local whose objects are in
// obs, the bucket named bucket; where names the server in errors ("the
// nats server at …"). The broker creates or binds the bucket
// (router.NewNATSArtifacts, router.BindNATSArtifacts).
func NewNATSArtifacts(local LocalArtifacts, obs jetstream.ObjectStore, bucket, where string) (*NATSArtifacts, error) {
	if local == nil {
		return nil, errors.New("artifact store: no local store")
	}
	return &NATSArtifacts{local: local, obs: obs, bucket: bucket, where: where}, nil
}

// CountObjects counts the bucket's blobs and manifests (for tests and
// operators' checks); any other object is an error.
func (a *NATSArtifacts) CountObjects(ctx context.Context) (blobs, manifests int, err error) {
	infos, err := a.obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, 0, fmt.Errorf("listing bucket %s: %w", a.bucket, err)
	}
	for _, info := range infos {
		switch {
		case strings.HasPrefix(info.Name, artifactBlobPrefix):
			blobs++
		case strings.HasPrefix(info.Name, artifactManifestPrefix):
			manifests++
		default:
			return blobs, manifests, fmt.Errorf("bucket %s holds an unexpected object %q", a.bucket, info.Name)
		}
	}
	return blobs, manifests, nil
}

// Bucket is the name of the object store bucket.
func (a *NATSArtifacts) Bucket() string { return a.bucket }

// Collect collects the files of dir matching globs into the local store (see
// state.Artifacts.Collect), then uploads the blobs the bucket does not hold
// yet (or holds altered), and the manifest, last. The files are read again from dir for the upload
// and must not have changed since.
func (a *NATSArtifacts) Collect(ctx context.Context, dir string, globs []string) (bot.ArtifactSet, error) {
	set, err := a.local.Collect(ctx, dir, globs)
	if err != nil {
		return bot.ArtifactSet{}, err
	}
	if err := a.upload(ctx, dir, set); err != nil {
		return bot.ArtifactSet{}, fmt.Errorf("sharing artifact set %s: %w", bot.ShortHash(set.Digest), err)
	}
	return set, nil
}

func (a *NATSArtifacts) upload(ctx context.Context, dir string, set bot.ArtifactSet) error {
	// Every blob is checked even when the manifest was uploaded before, so
	// that collecting a build again repairs a blob damaged in the bucket.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	done := map[string]bool{}
	for _, f := range set.Files {
		if done[f.SHA256] {
			continue
		}
		done[f.SHA256] = true
		if err := a.uploadBlob(ctx, root, f); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	manifestKey := artifactManifestPrefix + set.Digest
	if _, err := a.obs.GetInfo(ctx, manifestKey); err == nil {
		return nil // uploaded before
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("asking %s for %s: %w", a.where, manifestKey, err)
	}
	data, err := json.Marshal(set)
	if err != nil {
		return err
	}
	if _, err := a.obs.PutBytes(ctx, manifestKey, data); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", manifestKey, a.where, err)
	}
	return nil
}

// uploadBlob uploads the file f of root as blobs/<f.SHA256>, unless the
// bucket holds that content already.
func (a *NATSArtifacts) uploadBlob(ctx context.Context, root *os.Root, f bot.ArtifactFile) error {
	key := artifactBlobPrefix + f.SHA256
	info, err := a.obs.GetInfo(ctx, key)
	switch {
	case err == nil && info.Size == uint64(f.Size) && info.Digest == objectDigest(f.SHA256):
		return nil // the same content, uploaded before
	case err == nil, errors.Is(err, jetstream.ErrObjectNotFound):
		// Missing, or an object that is not this content: (re)place it.
	default:
		return fmt.Errorf("asking %s for %s: %w", a.where, key, err)
	}
	src, err := root.Open(filepath.FromSlash(f.Path))
	if err != nil {
		return err
	}
	defer src.Close()
	h := sha256.New()
	info, err = a.obs.Put(ctx, jetstream.ObjectMeta{Name: key}, io.TeeReader(src, h))
	if err != nil {
		return fmt.Errorf("uploading %s to %s: %w", key, a.where, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 || info.Size != uint64(f.Size) {
		// The file changed after Collect: do not leave wrong content
		// under the name of other content.
		_ = a.obs.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("changed while being collected (sha256 %s expected %s)", bot.ShortHash(got), bot.ShortHash(f.SHA256))
	}
	return nil
}

// objectDigest is the ObjectInfo.Digest JetStream records for the content
// of the given sha256 (hex).
func objectDigest(sum string) string {
	raw, err := hex.DecodeString(sum)
	if err != nil {
		return ""
	}
	return "SHA-256=" + base64.URLEncoding.EncodeToString(raw)
}

// Verify re-hashes the set of digest in the local store (see
// state.Artifacts.Verify), fetching it from the bucket first if the local
// store does not have it; a fetched file whose content differs from the
// manifest is an error naming its path.
func (a *NATSArtifacts) Verify(ctx context.Context, digest string) (bot.ArtifactSet, error) {
	if err := a.ensureLocal(ctx, digest); err != nil {
		return bot.ArtifactSet{}, err
	}
	return a.local.Verify(ctx, digest)
}

// Materialize writes the files of the set of digest under dir (see
// state.Artifacts.Materialize), fetching the set from the bucket first if
// the local store does not have it.
func (a *NATSArtifacts) Materialize(ctx context.Context, digest, dir string) error {
	if err := a.ensureLocal(ctx, digest); err != nil {
		return err
	}
	return a.local.Materialize(ctx, digest, dir)
}

// Get reads the manifest of the set of digest (see state.Artifacts.Get),
// fetching the set from the bucket first if the local store does not have
// it: ErrNotFound when neither has it.
func (a *NATSArtifacts) Get(ctx context.Context, digest string) (bot.ArtifactSet, error) {
	if err := a.ensureLocal(ctx, digest); err != nil {
		return bot.ArtifactSet{}, err
	}
	return a.local.Get(ctx, digest)
}

// ensureLocal fetches the set of digest into the local store unless it holds
// it. Any other trouble with the local copy is left for the local store to
// report.
func (a *NATSArtifacts) ensureLocal(ctx context.Context, digest string) error {
	_, err := a.local.Get(ctx, digest)
	if err == nil || !errors.Is(err, bot.ErrNotFound) {
		return nil
	}
	return a.fetch(ctx, digest)
}

// RemoteArtifactError says what is wrong with a set fetched from the bucket.
type RemoteArtifactError struct {
	Digest string
	Bucket string
	// Manifest is non-empty when the manifest itself is wrong: how.
	Manifest string
	// Faults are "<path>: <problem>", in the manifest's order.
	Faults []string
}

func (e *RemoteArtifactError) Error() string {
	var parts []string
	if e.Manifest != "" {
		parts = append(parts, "manifest "+e.Manifest)
	}
	parts = append(parts, e.Faults...)
	return fmt.Sprintf("artifact set %s in bucket %s: %s", bot.ShortHash(e.Digest), e.Bucket, strings.Join(parts, "; "))
}

func (a *NATSArtifacts) fetch(ctx context.Context, digest string) error {
	if !bot.IsSHA256(digest) {
		return fmt.Errorf("artifact set %w: %q is not a sha256 digest", bot.ErrNotFound, digest)
	}
	key := artifactManifestPrefix + digest
	data, err := a.obs.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("artifact set %w: %s (neither in the local store nor in bucket %s)", bot.ErrNotFound, digest, a.bucket)
	}
	if err != nil {
		return fmt.Errorf("fetching %s from %s: %w", key, a.where, err)
	}
	rerr := &RemoteArtifactError{Digest: digest, Bucket: a.bucket}
	set, err := decodeManifest(data)
	if err != nil {
		rerr.Manifest = "malformed: " + err.Error()
		return rerr
	}
	if len(set.Files) == 0 { // Collect never records one
		rerr.Manifest = "malformed: no files"
		return rerr
	}
	if got := bot.ManifestDigest(set.Files); got != digest {
		rerr.Manifest = fmt.Sprintf("altered (sha256 %s expected %s)", bot.ShortHash(got), bot.ShortHash(digest))
		return rerr
	}

	tmp, err := os.MkdirTemp(a.TempDir, "stagehand-fetch-*")
	if err != nil {
		return fmt.Errorf("fetching artifact set %s: %w", bot.ShortHash(digest), err)
	}
	defer os.RemoveAll(tmp)
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("fetching artifact set %s: %w", bot.ShortHash(digest), err)
	}
	defer root.Close()
	for _, f := range set.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		problem, err := a.fetchFile(ctx, root, f)
		if err != nil {
			return fmt.Errorf("fetching artifact set %s: %s: %w", bot.ShortHash(digest), f.Path, err)
		}
		if problem != "" {
			rerr.Faults = append(rerr.Faults, f.Path+": "+problem)
		}
	}
	if len(rerr.Faults) > 0 {
		return rerr
	}

	got, err := a.local.Collect(ctx, tmp, []string{"**"})
	if err != nil {
		return fmt.Errorf("storing fetched artifact set %s: %w", bot.ShortHash(digest), err)
	}
	if got.Digest != digest {
		return fmt.Errorf("storing fetched artifact set %s: the local store recorded it as %s", bot.ShortHash(digest), bot.ShortHash(got.Digest))
	}
	return nil
}

// fetchFile downloads the blob of f to f.Path in root with f's mode. problem
// is "missing", "unreadable: ..." or "altered (...)" when the bucket's blob
// is not f's content.
func (a *NATSArtifacts) fetchFile(ctx context.Context, root *os.Root, f bot.ArtifactFile) (problem string, err error) {
	obj, err := a.obs.Get(ctx, artifactBlobPrefix+f.SHA256)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	defer obj.Close()
	_, dst, err := createArtifactFile(root, f)
	if err != nil {
		return "", err
	}
	defer dst.Close()
	// One byte more than the manifest says is enough to tell it is altered.
	sum, size, err := copyHashed(dst, io.LimitReader(obj, f.Size+1))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// jetstream.ErrDigestMismatch and the like: chunks altered in the
		// stream underneath the object's metadata.
		return "unreadable: " + err.Error(), nil
	}
	if p := contentProblem(f, sum, size); p != "" {
		return p, nil
	}
	if err := dst.Chmod(fs.FileMode(f.Mode)); err != nil { // exactly, whatever the umask
		return "", err
	}
	return "", dst.Close()
}

// contentProblem describes how a fetched blob of sum and size differs from
// f, or is "". Unlike artifactProblem it looks at the size first: a blob is
// read to at most f.Size+1 bytes, so the sha256 of a longer one is not its
// own.
func contentProblem(f bot.ArtifactFile, sum string, size int64) string {
	switch {
	case size != f.Size:
		return fmt.Sprintf("altered (size %d expected %d)", size, f.Size)
	case sum != f.SHA256:
		return fmt.Sprintf("altered (sha256 %s expected %s)", bot.ShortHash(sum), bot.ShortHash(f.SHA256))
	}
	return ""
}
