package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte(stageOnlyConfig), 0o600)
	os.WriteFile(bad, []byte("version: 1\npipelines:\n  prod-only: {trigger: manual}\n"), 0o600)

	tests := []struct {
		name     string
		args     []string
		wantCode int // 0: success
		wantOut  string
	}{
		{"valid file with a warning", []string{"validate", good}, 0, good + ": valid (1 warning(s))"},
		{"invalid file", []string{"validate", bad}, 1, bad + ":3:"},
		{"missing file", []string{"validate", filepath.Join(dir, "none.yml")}, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut := &syncBuffer{}, &syncBuffer{}
			err := run(context.Background(), tt.args, func(string) string { return "" }, out, errOut)
			var exit exitError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantCode > 0 && (!errors.As(err, &exit) || exit.code != tt.wantCode):
				t.Fatalf("err = %v, want exit %d", err, tt.wantCode)
			case tt.wantCode < 0 && (err == nil || errors.As(err, &exit)):
				t.Fatalf("err = %v, want an error that says what went wrong", err)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out, tt.wantOut)
			}
		})
	}
}

func TestVersionAndUsage(t *testing.T) {
	out := &syncBuffer{}
	if err := run(context.Background(), []string{"version"}, nil, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "stagehand ") {
		t.Errorf("version printed %q", out)
	}
	errOut := &syncBuffer{}
	err := run(context.Background(), []string{"frobnicate"}, nil, io.Discard, errOut)
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) || !strings.Contains(errOut.String(), "stagehand serve") {
		t.Errorf("unknown command: err %v, stderr %q", err, errOut)
	}
}
