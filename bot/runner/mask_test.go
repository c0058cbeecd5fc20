package runner

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMaskingWriter: secret values never reach the log, however the
// script's output is cut into writes.
func TestMaskingWriter(t *testing.T) {
	const token = "ghs_s3cr3tT0k3nValue"
	const pem = "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\nxyz\n-----END KEY-----"
	patterns := SecretPatterns([]string{token, pem})
	for _, tt := range []struct {
		name, in, want string
	}{
		{"plain text", "deploying to stage\n", "deploying to stage\n"},
		{"the value", "token is " + token + "\n", "token is ***\n"},
		{"twice on a line", token + token + " " + token, "****** ***"},
		{"base64 of the value", "auth: " + base64.StdEncoding.EncodeToString([]byte(token)) + "\n", "auth: ***\n"},
		{"the whole multi-line value", "key:\n" + pem + "\ndone\n", "key:\n***\ndone\n"},
		{"one line of a multi-line value", "line MIIEpAIBAAKCAQEA here\n", "line *** here\n"},
		{"a short line of it is not masked alone", "xyz\n", "xyz\n"},
		{"a prefix only", "ghs_s3cr3t and more\n", "ghs_s3cr3t and more\n"},
	} {
		// Every way of cutting the output into two writes, and byte by byte.
		cuts := [][]string{{tt.in}}
		for i := 1; i < len(tt.in); i++ {
			cuts = append(cuts, []string{tt.in[:i], tt.in[i:]})
		}
		cuts = append(cuts, strings.Split(tt.in, ""))
		for _, writes := range cuts {
			var out bytes.Buffer
			m := NewMaskingWriter(&out, patterns)
			for _, w := range writes {
				if n, err := m.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("%s: Write = %d, %v", tt.name, n, err)
				}
			}
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("%s, written as %q (-want +got):\n%s", tt.name, writes, diff)
				break
			}
		}
		if got := MaskString(tt.in, patterns); got != tt.want {
			t.Errorf("%s: MaskString = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestMaskingWriterWithoutSecrets passes writes through untouched.
func TestMaskingWriterWithoutSecrets(t *testing.T) {
	var out bytes.Buffer
	m := NewMaskingWriter(&out, nil)
	if _, err := m.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "abc" || m.Flush() != nil {
		t.Errorf("out = %q", out.String())
	}
}

// BenchmarkMaskingWriter: the cost of masking a step's output, written in
// 4 KiB pieces, with three secrets (one multi-line), against writing it
// through unmasked.
func BenchmarkMaskingWriter(b *testing.B) {
	line := []byte("2026-12-05T10:00:00Z deploying service to production, step 3 of 7: ok\n")
	chunk := bytes.Repeat(line, 4096/len(line))
	for _, bc := range []struct {
		name    string
		secrets []string
	}{
		{"none", nil},
		{"three", []string{"ghs_s3cr3tT0k3nValue", "sk_live_0123456789abcdef", "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n-----END KEY-----"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMaskingWriter(io.Discard, SecretPatterns(bc.secrets))
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, err := m.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
