package bot

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
