package runner

import (
	"bytes"
	"encoding/base64"
	"io"
	"slices"
	"strings"
)

// Mask is what a secret value is replaced with.
const Mask = "***"

// minMaskedLine is the shortest line of a multi-line secret that is masked
// on its own: shorter lines ("{", "-----") would mask half of every log.
const minMaskedLine = 4

// SecretPatterns are the byte strings masked for secret values (SPEC §7):
// each value, each line of a multi-line value (from minMaskedLine
// characters), and the standard base64 encoding of each value, longest
// first so that a value is masked whole before any of its lines.
func SecretPatterns(values []string) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, []byte(s))
		}
	}
	for _, v := range values {
		add(v)
		if trimmed := strings.TrimSpace(v); trimmed != v {
			add(trimmed)
		}
		add(base64.StdEncoding.EncodeToString([]byte(v)))
		for _, line := range strings.Split(v, "\n") {
			if line = strings.TrimSpace(line); len(line) >= minMaskedLine {
				add(line)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b []byte) int { return len(b) - len(a) })
	return out
}

// MaskingWriter writes to W what is written to it with every secret
// pattern replaced by Mask, including a value split across two writes: it
// holds back the last bytes that could begin a pattern until the next
// write or Flush. It is not safe for concurrent use; the caller
// serialises writes (the step's log does).
type MaskingWriter struct {
	w        io.Writer
	patterns [][]byte
	longest  int
	pending  []byte
}

// NewMaskingWriter masks patterns (see SecretPatterns) in what is written
// to w. With no patterns it passes writes through.
func NewMaskingWriter(w io.Writer, patterns [][]byte) *MaskingWriter {
	m := &MaskingWriter{w: w, patterns: patterns}
	for _, p := range patterns {
		m.longest = max(m.longest, len(p))
	}
	return m
}

// Write masks and writes p; it reports len(p) written when w took what
// could be written so far.
func (m *MaskingWriter) Write(p []byte) (int, error) {
	if m.longest == 0 {
		return m.w.Write(p)
	}
	m.pending = append(m.pending, p...)
	out, rest := MaskBytes(m.pending, m.patterns, m.longest-1)
	m.pending = append(m.pending[:0], rest...)
	if len(out) > 0 {
		if _, err := m.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what was held back (the end of the stream: no pattern can
// continue it any more).
func (m *MaskingWriter) Flush() error {
	if len(m.pending) == 0 {
		return nil
	}
	out, _ := MaskBytes(m.pending, m.patterns, 0)
	m.pending = m.pending[:0]
	_, err := m.w.Write(out)
	return err
}

// MaskBytes replaces every pattern in b with Mask. It returns the masked
// text that is final, and holds back up to hold bytes at the end that could
// be the beginning of a pattern still being written.
func MaskBytes(b []byte, patterns [][]byte, hold int) (out, rest []byte) {
	var buf bytes.Buffer
	i := 0
	for {
		at, which := -1, -1
		for k, p := range patterns {
			j := bytes.Index(b[i:], p)
			if j >= 0 && (at < 0 || j < at) {
				at, which = j, k // patterns are longest first: ties keep the longest
			}
		}
		if at < 0 {
			break
		}
		if hold > 0 && couldBegin(b[i+at:], patterns) {
			// A longer pattern (the whole of a multi-line value) may be
			// under way here: wait for the next write to tell.
			buf.Write(b[i : i+at])
			return buf.Bytes(), b[i+at:]
		}
		buf.Write(b[i : i+at])
		buf.WriteString(Mask)
		i += at + len(patterns[which])
	}
	// No whole pattern is left in b[i:]; one may begin in its last hold
	// bytes and end in the next write. A pattern beginning earlier would
	// have been complete already.
	keep := len(b)
	if hold > 0 {
		keep = max(i, len(b)-hold)
		for keep < len(b) && !couldBegin(b[keep:], patterns) {
			keep++
		}
	}
	buf.Write(b[i:keep])
	return buf.Bytes(), b[keep:]
}

// couldBegin reports whether tail is the beginning of some pattern.
func couldBegin(tail []byte, patterns [][]byte) bool {
	for _, p := range patterns {
		if len(tail) < len(p) && bytes.HasPrefix(p, tail) {
			return true
		}
	}
	return false
}

// MaskString masks patterns in s at once (messages, log tails).
func MaskString(s string, patterns [][]byte) string {
	if len(patterns) == 0 {
		return s
	}
	out, _ := MaskBytes([]byte(s), patterns, 0)
	return string(out)
}
