package bot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// ArtifactFile is one file of an artifact set.
type ArtifactFile struct {
	Path   string `json:"path"`   // slash-separated, relative to the checkout
	Size   int64  `json:"size"`   // in bytes
	SHA256 string `json:"sha256"` // of the content, lowercase hex
	Mode   uint32 `json:"mode"`   // 0o644 or 0o755: only the executable bit is kept
}

// ArtifactSet is the immutable set of files a build produced. Digest is the
// sha256, in lowercase hex, of the canonical manifest: the files sorted by
// Path, one line each, "<sha256>  <size>  <mode as 4 octal digits>  <path>\n".
// A prod-only execution deploys its source's set, byte for byte (rule F).
type ArtifactSet struct {
	Digest string         `json:"digest"`
	Files  []ArtifactFile `json:"files"`
}

// Size is the total size of the set's files in bytes.
func (s ArtifactSet) Size() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Size
	}
	return n
}

// ManifestDigest is the digest of files (sorted by Path): the sha256 of the
// canonical manifest described on ArtifactSet.
func ManifestDigest(files []ArtifactFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s  %d  %04o  %s\n", f.SHA256, f.Size, f.Mode, f.Path)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CheckManifest rejects a manifest no artifact store writes, above all
// paths that would leave the directory a set is written to.
func CheckManifest(files []ArtifactFile) error {
	for i, f := range files {
		switch {
		case !ValidArtifactPath(f.Path):
			return fmt.Errorf("file %d: invalid path %q", i, f.Path)
		case !IsSHA256(f.SHA256):
			return fmt.Errorf("%s: invalid sha256 %q", f.Path, f.SHA256)
		case f.Mode != 0o644 && f.Mode != 0o755:
			return fmt.Errorf("%s: invalid mode %#o", f.Path, f.Mode)
		case f.Size < 0:
			return fmt.Errorf("%s: negative size", f.Path)
		case i > 0 && files[i-1].Path >= f.Path:
			return fmt.Errorf("%s: files not sorted by path or not unique", f.Path)
		}
	}
	return nil
}

// ValidArtifactPath reports whether p is a clean, local, slash-separated
// path that the canonical manifest and JSON can both hold unchanged.
func ValidArtifactPath(p string) bool {
	return p != "" && utf8.ValidString(p) && !strings.Contains(p, "\n") &&
		path.Clean(p) == p && filepath.IsLocal(filepath.FromSlash(p))
}

// IsSHA256 reports whether s is a sha256 in lowercase hex.
func IsSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ShortHash abbreviates a hex hash for messages.
func ShortHash(sum string) string {
	if len(sum) <= 12 {
		return sum
	}
	return sum[:12] + "…"
}
