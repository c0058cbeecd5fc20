package runner_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/runner"
)

func TestLog(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int64
		tail     int
		writes   []string
		wantFile string
		wantTail string
	}{
		{
			name: "under the cap", max: 100, tail: 100,
			writes:   []string{"hello\n", "world\n"},
			wantFile: "hello\nworld\n", wantTail: "hello\nworld\n",
		},
		{
			name: "exactly the cap", max: 10, tail: 100,
			writes:   []string{"0123456789"},
			wantFile: "0123456789", wantTail: "0123456789",
		},
		{
			name: "one write over the cap", max: 10, tail: 100,
			writes:   []string{"0123456789abc\n"},
			wantFile: "0123456789\n[log truncated at 10 bytes]\n", wantTail: "0123456789abc\n",
		},
		{
			name: "cap reached across writes, mid-line", max: 8, tail: 100,
			writes:   []string{"12345\n", "67890\n", "more\n"},
			wantFile: "12345\n67\n[log truncated at 8 bytes]\n", wantTail: "12345\n67890\nmore\n",
		},
		{
			name: "cap at a line end", max: 5, tail: 100,
			writes:   []string{"1234\n", "5678\n"},
			wantFile: "1234\n[log truncated at 5 bytes]\n", wantTail: "1234\n5678\n",
		},
		{
			name: "the cut does not split a UTF-8 sequence", max: 2, tail: 100,
			writes:   []string{"aé"},
			wantFile: "a\n[log truncated at 1 bytes]\n", wantTail: "aé",
		},
		{
			name: "tail kept after truncation, from a line start", max: 5, tail: 8,
			writes:   []string{"aaaa\n", "bbbb\n", "cccc\n"},
			wantFile: "aaaa\n[log truncated at 5 bytes]\n", wantTail: "cccc\n",
		},
		{
			name: "tail window starting exactly at a line start", max: 100, tail: 6,
			writes:   []string{"line1\nline2\nline3\n"},
			wantFile: "line1\nline2\nline3\n", wantTail: "line3\n",
		},
		{
			name: "tail window mid-line starts at the next line", max: 100, tail: 8,
			writes:   []string{"line1\n", "line2\n", "line3\n"},
			wantFile: "line1\nline2\nline3\n", wantTail: "line3\n",
		},
		{
			name: "tail of one long line", max: 100, tail: 4,
			writes:   []string{"abcdefghij"},
			wantFile: "abcdefghij", wantTail: "ghij",
		},
		{
			name: "tail does not start inside a UTF-8 sequence", max: 100, tail: 3,
			writes:   []string{"ééé"},
			wantFile: "ééé", wantTail: "é",
		},
		{
			name: "tail without an incomplete sequence at the end", max: 100, tail: 100,
			writes:   []string{"ok\xc3"},
			wantFile: "ok\xc3", wantTail: "ok",
		},
		{
			name: "invalid UTF-8 replaced in the tail", max: 100, tail: 100,
			writes:   []string{"a\xffb\n"},
			wantFile: "a\xffb\n", wantTail: "a\uFFFDb\n",
		},
		{
			name: "many small writes compact the tail", max: 1000, tail: 10,
			writes:   strings.Split(strings.Repeat("x\n", 50)+"last line\n", "\n"),
			wantFile: strings.Repeat("x", 50) + "last line", wantTail: "xlast line",
		},
		{
			name: "no tail", max: 100, tail: 0,
			writes:   []string{"hello\n"},
			wantFile: "hello\n", wantTail: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "step.log")
			l, err := runner.NewLog(path, tc.max, tc.tail)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantFile, string(b)); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTail, l.Tail()); diff != "" {
				t.Errorf("Tail (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogAfterClose(t *testing.T) {
	l, err := runner.NewLog(filepath.Join(t.TempDir(), "step.log"), 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("kept\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want %v", err, os.ErrClosed)
	}
	if diff := cmp.Diff("kept\n", l.Tail()); diff != "" {
		t.Errorf("Tail after Close (-want +got):\n%s", diff)
	}
}

func TestNewLogErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		max  int64
	}{
		{"zero cap", filepath.Join(dir, "a.log"), 0},
		{"missing directory", filepath.Join(dir, "missing", "a.log"), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runner.NewLog(tc.path, tc.max, 10); err == nil {
				t.Error("NewLog succeeded")
			}
		})
	}
}

// Concurrent writers: every line arrives whole, and the cap holds.
func TestLogConcurrentWrites(t *testing.T) {
	const writers, lines = 16, 200
	for _, tc := range []struct {
		name string
		max  int64
	}{
		{"under the cap", 1 << 20},
		{"over the cap", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "step.log")
			l, err := runner.NewLog(path, tc.max, 64)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range lines {
						fmt.Fprintf(l, "writer %02d line %03d\n", w, i)
						_ = l.Tail()
					}
				}()
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if tc.max < 1<<20 {
				marker := fmt.Sprintf("[log truncated at %d bytes]", tc.max)
				if diff := cmp.Diff(marker, got[len(got)-1]); diff != "" {
					t.Errorf("last line (-want +got):\n%s", diff)
				}
				want := int(tc.max) + len(marker) + 1
				if b[tc.max-1] != '\n' { // the marker goes on a line of its own
					want++
				}
				if len(b) != want {
					t.Errorf("file is %d bytes, want %d", len(b), want)
				}
				return
			}
			var want []string
			for w := range writers {
				for i := range lines {
					want = append(want, fmt.Sprintf("writer %02d line %03d", w, i))
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if tail := l.Tail(); !strings.HasPrefix(tail, "writer ") || !strings.HasSuffix(tail, "\n") {
				t.Errorf("Tail %q is not whole lines", tail)
			}
		})
	}
}
