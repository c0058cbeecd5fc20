package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		s, err := parseServe(tt.args, "STAGEHAND_RETENTION", tt.env)
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

// TestAuditRetentionFlag: --audit-retention (STAGEHAND_AUDIT_RETENTION)
// takes days or a duration like --retention; its default, 0, keeps the
// audit trail forever.
func TestAuditRetentionFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		want    time.Duration
		wantErr string
	}{
		{name: "default forever", want: 0},
		{name: "days", args: []string{"--audit-retention", "400d"}, want: 400 * 24 * time.Hour},
		{name: "hours", args: []string{"--audit-retention", "36h"}, want: 36 * time.Hour},
		{name: "zero", args: []string{"--audit-retention", "0"}, want: 0},
		{name: "env", env: "90d", want: 90 * 24 * time.Hour},
		{name: "the flag wins", args: []string{"--audit-retention", "1d"}, env: "90d", want: 24 * time.Hour},
		{name: "words", args: []string{"--audit-retention", "a year"}, wantErr: `invalid argument "a year" for "--audit-retention" flag: "a year" is not a duration: write it like 30d, 36h or 0`},
		{name: "negative days", args: []string{"--audit-retention", "-3d"}, wantErr: `"-3d" is not a number of days: write it like 30d`},
		{name: "negative duration", args: []string{"--audit-retention", "-1h"}, wantErr: `"-1h" is not a duration: write it like 30d, 36h or 0`},
		{name: "bad env", env: "1y", wantErr: `environment variable STAGEHAND_AUDIT_RETENTION="1y": invalid argument "1y" for "--audit-retention" flag: "1y" is not a duration`},
	}
	for _, tt := range tests {
		s, err := parseServe(tt.args, "STAGEHAND_AUDIT_RETENTION", tt.env)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, s.AuditRetention); diff != "" {
			t.Errorf("%s: audit retention (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(30*24*time.Hour, s.Retention); diff != "" {
			t.Errorf("%s: --retention moved with it (-want +got):\n%s", tt.name, diff)
		}
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterServerFlags(fs)
	if usage := fs.FlagUsages(); !strings.Contains(usage, "--audit-retention duration") || !strings.Contains(usage, "STAGEHAND_AUDIT_RETENTION") {
		t.Errorf("--help does not show --audit-retention and its variable:\n%s", usage)
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

func TestDashboardFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     Server // the dashboard's fields
		signIn   bool
		problems []string // named by Resolve; none when empty
	}{
		{name: "defaults", want: Server{Dashboard: "github", GitHubWebURL: "https://github.com/"}},
		{name: "client id and secret file",
			args: []string{"--github-client-id", "Iv23li", "--github-client-secret-file", secretFile},
			want: Server{Dashboard: "github", GitHubClientID: "Iv23li", GitHubClientSecretFile: secretFile, GitHubWebURL: "https://github.com/", ClientSecret: []byte("s3cr3t")}, signIn: true},
		{name: "from the environment",
			env:  map[string]string{"STAGEHAND_GITHUB_CLIENT_ID": "Iv23li", "STAGEHAND_GITHUB_CLIENT_SECRET": "s3cr3t", "STAGEHAND_GITHUB_WEB_URL": "https://ghe.example.com/", "STAGEHAND_SESSION_KEY_FILE": "/run/key", "STAGEHAND_METRICS_LISTEN": ":9090", "STAGEHAND_DASHBOARD": "public"},
			want: Server{Dashboard: "public", GitHubClientID: "Iv23li", GitHubWebURL: "https://ghe.example.com/", SessionKeyFile: "/run/key", MetricsListen: ":9090", ClientSecret: []byte("s3cr3t")}, signIn: true},
		{name: "public", args: []string{"--dashboard", "public"}, want: Server{Dashboard: "public", GitHubWebURL: "https://github.com/"}},
		{name: "off", args: []string{"--dashboard=off"}, want: Server{Dashboard: "off", GitHubWebURL: "https://github.com/"}},
		{name: "unknown mode", args: []string{"--dashboard", "open"}, want: Server{Dashboard: "open", GitHubWebURL: "https://github.com/"},
			problems: []string{`--dashboard "open": use github (sign in with GitHub, the default), public or off`}},
		{name: "id without secret", args: []string{"--github-client-id", "Iv23li"}, want: Server{Dashboard: "github", GitHubClientID: "Iv23li", GitHubWebURL: "https://github.com/"},
			problems: []string{"--github-client-id is set but the client secret is missing"}},
		{name: "secret without id", env: map[string]string{"STAGEHAND_GITHUB_CLIENT_SECRET": "s3cr3t"}, want: Server{Dashboard: "github", GitHubWebURL: "https://github.com/", ClientSecret: []byte("s3cr3t")},
			problems: []string{"a client secret is set but --github-client-id is missing"}},
		{name: "empty secret file", args: []string{"--github-client-id", "Iv23li", "--github-client-secret-file", empty},
			want:     Server{Dashboard: "github", GitHubClientID: "Iv23li", GitHubClientSecretFile: empty, GitHubWebURL: "https://github.com/", ClientSecret: []byte{}},
			problems: []string{"the client secret file " + empty + " is empty"}},
		{name: "web URL not absolute", args: []string{"--github-web-url", "github.com"}, want: Server{Dashboard: "github", GitHubWebURL: "github.com"},
			problems: []string{`--github-web-url "github.com" is not an absolute URL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			s := RegisterServerFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return tt.env[k] }
			if err := ApplyEnv(fs, getenv); err != nil {
				t.Fatal(err)
			}
			err := s.Resolve(getenv) // the App's own settings are missing: named too
			got := Server{Dashboard: s.Dashboard, GitHubClientID: s.GitHubClientID, GitHubClientSecretFile: s.GitHubClientSecretFile,
				GitHubWebURL: s.GitHubWebURL, SessionKeyFile: s.SessionKeyFile, MetricsListen: s.MetricsListen, ClientSecret: s.ClientSecret}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("dashboard settings (-want +got):\n%s", diff)
			}
			if s.SignInConfigured() != tt.signIn {
				t.Errorf("SignInConfigured = %v, want %v", s.SignInConfigured(), tt.signIn)
			}
			for _, p := range tt.problems {
				if err == nil || !strings.Contains(err.Error(), p) {
					t.Errorf("Resolve = %v, want a problem %q", err, p)
				}
			}
			for _, flag := range []string{"--dashboard", "client", "--github-web-url"} {
				if len(tt.problems) == 0 && err != nil && strings.Contains(err.Error(), flag) {
					t.Errorf("Resolve names a problem with %s: %v", flag, err)
				}
			}
		})
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

// TestStepRunnerFlag: --step-runner takes local (the default) or remote,
// and remote needs an external NATS the workers reach.
func TestStepRunnerFlag(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr string // a problem Resolve names; "" none about --step-runner
	}{
		{want: "local"},
		{args: []string{"--step-runner", "remote", "--nats-url", "nats://nats:4222"}, want: "remote"},
		{args: []string{"--step-runner", "remote"}, want: "remote", wantErr: "--step-runner remote needs an external NATS server that the workers reach: pass --nats-url"},
		{args: []string{"--step-runner", "kubernetes"}, want: "kubernetes", wantErr: `--step-runner "kubernetes": use local (the default) or remote`},
	}
	for _, tt := range tests {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		s := RegisterServerFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if s.StepRunner != tt.want {
			t.Errorf("%v: step runner %q, want %q", tt.args, s.StepRunner, tt.want)
		}
		// The other problems (no App ID, key or secret) are named too.
		err := s.Resolve(func(string) string { return "" })
		if got := err != nil && strings.Contains(err.Error(), "--step-runner"); got != (tt.wantErr != "") {
			t.Errorf("%v: Resolve = %v, want a problem with --step-runner: %v", tt.args, err, tt.wantErr != "")
		} else if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v: Resolve = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

// parseServe parses serve's flags from args and the one environment
// variable name=value.
func parseServe(args []string, name, value string) (*Server, error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s := RegisterServerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	return s, ApplyEnv(fs, func(k string) string {
		if k == name {
			return value
		}
		return ""
	})
}
