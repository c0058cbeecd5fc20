package runner

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unicode/utf8"
)

// Log is a size-capped step log. It writes to a file up to a maximum size,
// then writes one line "[log truncated at N bytes]" and drops the rest; it
// always keeps the last bytes of the output in memory for display. It is
// safe for concurrent use.
type Log struct {
	mu        sync.Mutex
	f         *os.File
	max       int64
	written   int64 // output bytes in the file
	last      byte  // last output byte in the file
	truncated bool
	err       error // first file error; the file gets nothing after it
	closed    bool

	tailBytes int
	tail      []byte // the last tailBytes+1 bytes or more of the output
	total     int64  // output bytes ever written
}

// NewLog creates (or truncates) the file at path. max is the cap of output
// bytes in the file, tailBytes how much of the end Tail returns.
func NewLog(path string, maxBytes int64, tailBytes int) (*Log, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("runner: log: max must be positive, got %d", maxBytes)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("runner: log: %w", err)
	}
	return &Log{f: f, max: maxBytes, tailBytes: max(tailBytes, 0)}, nil
}

// Write writes p to the file while under the cap and to the tail. It
// reports len(p) unless the log is closed, so a writer is never stopped by
// the cap; a file error is returned (once it happened, the file is left
// alone but the tail is still kept).
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, os.ErrClosed
	}
	if !l.truncated && l.err == nil {
		chunk := p
		if room := l.max - l.written; int64(len(chunk)) > room {
			chunk = chunk[:cutPoint(chunk, int(room))]
			l.truncated = true
		}
		if len(chunk) > 0 {
			n, err := l.f.Write(chunk)
			l.written += int64(n)
			if n > 0 {
				l.last = chunk[n-1]
			}
			l.err = err
		}
		if l.truncated && l.err == nil {
			marker := fmt.Sprintf("[log truncated at %d bytes]\n", l.written)
			if l.written > 0 && l.last != '\n' {
				marker = "\n" + marker
			}
			_, l.err = l.f.WriteString(marker)
		}
	}
	l.keepTail(p)
	if l.err != nil {
		return len(p), fmt.Errorf("runner: log: %w", l.err)
	}
	return len(p), nil
}

// cutPoint returns n, moved back (at most 3 bytes) so that p[:n] does not
// end inside a UTF-8 sequence.
func cutPoint(p []byte, n int) int {
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			return i
		}
	}
	return n
}

// keepTail appends p to the tail buffer, which holds at least tailBytes+1
// bytes (when written): the extra byte tells whether the tail starts a
// line. The buffer grows to twice that before it is compacted.
func (l *Log) keepTail(p []byte) {
	l.total += int64(len(p))
	if l.tailBytes == 0 {
		return
	}
	keep := l.tailBytes + 1
	if len(p) >= keep {
		l.tail = append(l.tail[:0], p[len(p)-keep:]...)
		return
	}
	l.tail = append(l.tail, p...)
	if len(l.tail) > 2*keep {
		n := copy(l.tail, l.tail[len(l.tail)-keep:])
		l.tail = l.tail[:n]
	}
}

// Tail returns the last tailBytes bytes of the output as valid UTF-8. When
// earlier output was cut off, it starts after the first newline of those
// bytes if there is one, so the first line shown is whole.
func (l *Log) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.tail
	cut := l.total > int64(len(b)) // output before b[0] is gone
	if len(b) > l.tailBytes {
		cut = b[len(b)-l.tailBytes-1] != '\n'
		b = b[len(b)-l.tailBytes:]
	}
	if cut {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i+1 < len(b) {
			b = b[i+1:]
		} else {
			for k := 0; k < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); k++ {
				b = b[1:]
			}
		}
	}
	// An incomplete sequence at the end may be completed by the next write.
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				b = b[:i]
			}
			break
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// Close closes the file. The tail stays readable; writes fail afterwards.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return errors.Join(l.err, l.f.Close())
}
