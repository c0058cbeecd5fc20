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

// TestWrongUsageIsExplained: a wrong flag or argument exits 2 with pflag's
// error and a pointer to --help on stderr; --help prints help, not the
// command's work.
func TestWrongUsageIsExplained(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr []string
		wantStdout string
	}{
		{"playground unknown flag", []string{"playground", "--lisen", "x"}, 2,
			[]string{"unknown flag: --lisen", `"stagehand playground --help"`}, ""},
		{"serve unknown flag", []string{"serve", "--lisen", "x"}, 2,
			[]string{"unknown flag: --lisen", `"stagehand serve --help"`}, ""},
		{"validate unknown flag", []string{"validate", "--strict", "x"}, 2,
			[]string{"unknown flag: --strict", `"stagehand validate --help"`}, ""},
		{"playground extra argument", []string{"playground", "extra-arg"}, 2,
			[]string{`unexpected argument "extra-arg"`, `"stagehand playground --help"`}, ""},
		{"serve extra argument", []string{"serve", "extra-arg"}, 2,
			[]string{`unexpected argument "extra-arg"`, `"stagehand serve --help"`}, ""},
		{"version extra argument", []string{"version", "extra-arg"}, 2,
			[]string{`unexpected argument "extra-arg"`}, ""},
		{"version --help", []string{"version", "--help"}, 0,
			[]string{"Usage: stagehand version"}, ""},
		{"help version", []string{"help", "version"}, 0,
			[]string{"Usage: stagehand version"}, ""},
		{"setup --help", []string{"setup", "--help"}, 0,
			[]string{"Usage: stagehand setup --public-url", "App manifest flow", "mode 0600", "--kubernetes-secret", "--org", "--name", "--github-web-url", "--listen", "--data-dir"}, ""},
		{"help doctor", []string{"help", "doctor"}, 0,
			[]string{"Usage: stagehand doctor", "permission", "webhook URL", "database", "broker", "sandbox", "secrets directory", "exits 1"}, ""},
		{"setup without --public-url", []string{"setup", "--listen", "127.0.0.1:0", "--data-dir", "/nonexistent/stagehand-test"}, -1,
			[]string{"--public-url is required"}, ""},
		{"setup extra argument", []string{"setup", "extra-arg"}, 2,
			[]string{`unexpected argument "extra-arg"`, `"stagehand setup --help"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut := &syncBuffer{}, &syncBuffer{}
			err := run(context.Background(), tt.args, func(string) string { return "" }, out, errOut)
			code := 0
			var exit exitError
			if errors.As(err, &exit) {
				code = exit.code
			} else if err != nil && tt.wantCode == -1 { // an error for main to print
				code = -1
				errOut.Write([]byte(err.Error()))
			} else if err != nil {
				t.Fatalf("err = %v, want exit %d", err, tt.wantCode)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(errOut.String(), want) {
					t.Errorf("stderr = %q, want it to contain %q", errOut, want)
				}
			}
			if out.String() != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", out, tt.wantStdout)
			}
		})
	}
}
