package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestRetentionFlag(t *testing.T) {
	tests := []struct {
		args    []string
		env     string
		want    time.Duration
		wantErr string
	}{
		{args: nil, want: 30 * 24 * time.Hour},
		{args: []string{"--retention", "7d"}, want: 7 * 24 * time.Hour},
		{args: []string{"--retention", "36h"}, want: 36 * time.Hour},
		{args: []string{"--retention", "0"}, want: 0},
		{env: "90d", want: 90 * 24 * time.Hour},
		{args: []string{"--retention", "1d"}, env: "90d", want: 24 * time.Hour}, // the flag wins
		{args: []string{"--retention", "a week"}, wantErr: `"a week" is not a duration: write it like 30d, 36h or 0`},
		{args: []string{"--retention", "-3d"}, wantErr: `"-3d" is not a number of days: write it like 30d`},
		{env: "xd", wantErr: `environment variable STAGEHAND_RETENTION="xd": invalid argument "xd" for "--retention" flag: "xd" is not a number of days`},
	}
	for _, tt := range tests {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		s := RegisterServerFlags(fs)
		err := fs.Parse(tt.args)
		if err == nil {
			err = ApplyEnv(fs, func(k string) string {
				if k == "STAGEHAND_RETENTION" {
					return tt.env
				}
				return ""
			})
		}
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v env %q: error %v, want one containing %q", tt.args, tt.env, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%v env %q: %v", tt.args, tt.env, err)
		case s.Retention != tt.want:
			t.Errorf("%v env %q: retention %v, want %v", tt.args, tt.env, s.Retention, tt.want)
		}
	}
}

func TestRetentionFlagPrintsDays(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterServerFlags(fs)
	if got := fs.Lookup("retention").DefValue; got != "30d" {
		t.Errorf("default shown as %q, want 30d", got)
	}
	if !strings.Contains(fs.FlagUsages(), "--retention duration") || !strings.Contains(fs.FlagUsages(), "(default 30d)") {
		t.Errorf("--help does not show the retention flag with its default:\n%s", fs.FlagUsages())
	}
}

func TestStepSandboxFlag(t *testing.T) {
	tests := []struct {
		args    []string
		env     string
		want    string
		wantErr string // a problem Resolve names
	}{
		{want: "bwrap"},
		{args: []string{"--step-sandbox", "none"}, want: "none"},
		{env: "none", want: "none"},
		{args: []string{"--step-sandbox", "bwrap"}, env: "none", want: "bwrap"}, // the flag wins
		{args: []string{"--step-sandbox", "docker"}, want: "docker", wantErr: `--step-sandbox "docker": use bwrap (the default) or none`},
		{env: "off", want: "off", wantErr: `--step-sandbox "off": use bwrap (the default) or none`},
	}
	for _, tt := range tests {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		s := RegisterServerFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string {
			if k == "STAGEHAND_STEP_SANDBOX" {
				return tt.env
			}
			return ""
		}
		if err := ApplyEnv(fs, getenv); err != nil {
			t.Fatal(err)
		}
		if s.StepSandbox != tt.want {
			t.Errorf("%v env %q: step sandbox %q, want %q", tt.args, tt.env, s.StepSandbox, tt.want)
		}
		// The other problems (no App ID, key or secret) are named too.
		err := s.Resolve(getenv)
		if got := err != nil && strings.Contains(err.Error(), "--step-sandbox"); got != (tt.wantErr != "") {
			t.Errorf("%v env %q: Resolve = %v, want a problem with --step-sandbox: %v", tt.args, tt.env, err, tt.wantErr != "")
		} else if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v env %q: Resolve = %v, want %q", tt.args, tt.env, err, tt.wantErr)
		}
	}
}

// TestSecretsDirFlag: --secrets-dir and STAGEHAND_SECRETS_DIR name the
// secret source; the flag wins.
func TestSecretsDirFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{want: ""},
		{args: []string{"--secrets-dir", "/run/secrets/stagehand"}, want: "/run/secrets/stagehand"},
		{env: "/var/secrets", want: "/var/secrets"},
		{args: []string{"--secrets-dir", "/a"}, env: "/b", want: "/a"},
	} {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		s := RegisterServerFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string {
			if k == "STAGEHAND_SECRETS_DIR" {
				return tt.env
			}
			return ""
		}
		if err := ApplyEnv(fs, getenv); err != nil {
			t.Fatal(err)
		}
		if s.SecretsDir != tt.want {
			t.Errorf("%v env %q: secrets dir %q, want %q", tt.args, tt.env, s.SecretsDir, tt.want)
		}
	}
}
