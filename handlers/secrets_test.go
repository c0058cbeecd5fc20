package handlers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// TestSecretsDir: values come from <dir>/<owner>/<repo>/<environment>/<NAME>;
// a missing one names the secret and the file looked for; names that
// could leave the directory are refused.
func TestSecretsDir(t *testing.T) {
	dir := t.TempDir()
	prog := bot.Program{Owner: "acme", Repo: "app"}
	write := func(env, name, value string) {
		p := filepath.Join(dir, "acme", "app", env, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("production", "DEPLOY_TOKEN", "t0ken\n")
	write("production", "KUBECONFIG", "line1\nline2")
	write("stage", "DEPLOY_TOKEN", "stage-token")
	s := SecretsDir{Dir: dir}

	got, err := s.Secrets(prog, bot.Production, []string{"DEPLOY_TOKEN", "KUBECONFIG"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"DEPLOY_TOKEN": "t0ken", "KUBECONFIG": "line1\nline2"}, got); diff != "" {
		t.Errorf("production secrets (-want +got):\n%s", diff)
	}
	_, err = s.Secrets(prog, bot.Stage, []string{"DEPLOY_TOKEN", "KUBECONFIG"})
	if !errors.Is(err, ErrSecretMissing) || !strings.Contains(err.Error(), "KUBECONFIG") || !strings.Contains(err.Error(), filepath.Join(dir, "acme", "app", "stage", "KUBECONFIG")) {
		t.Errorf("a missing stage secret: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"DEPLOY_TOKEN": "set", "KUBECONFIG": "missing"}, s.Status(prog, bot.Stage, []string{"DEPLOY_TOKEN", "KUBECONFIG"})); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	for _, bad := range []struct {
		prog bot.Program
		name string
	}{
		{bot.Program{Owner: "..", Repo: "app"}, "DEPLOY_TOKEN"},
		{bot.Program{Owner: "acme", Repo: "a/b"}, "DEPLOY_TOKEN"},
		{prog, "../../etc/passwd"},
		{prog, "lower"},
	} {
		if _, err := s.Secret(bad.prog, bot.Production, bad.name); err == nil || errors.Is(err, ErrSecretMissing) {
			t.Errorf("Secret(%s, %q) = %v, want a refusal", bad.prog.FullName(), bad.name, err)
		}
	}
	if _, err := (SecretsDir{}).Secret(prog, bot.Production, "DEPLOY_TOKEN"); !errors.Is(err, ErrSecretMissing) || !strings.Contains(err.Error(), "--secrets-dir") {
		t.Errorf("without a secrets directory: %v", err)
	}
}

// TestEnvListShowsSecretNamesOnly: /stagehand env list shows declared
// secrets as names with set or missing, never their values.
func TestEnvListShowsSecretNamesOnly(t *testing.T) {
	cfg := strings.Replace(sampleConfig(splitPipelines), "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    secrets: [DEPLOY_TOKEN, NOT_THERE]\n", 1)
	e := newSurfaceEnv(t, cfg)
	dir := t.TempDir()
	p := filepath.Join(dir, owner, repo, "production", "DEPLOY_TOKEN")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("s3cr3t-deploy-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.hooks.Secrets = SecretsDir{Dir: dir}
	e.push()
	reply := e.comment("alice", "/stagehand env list production").Body
	for _, want := range []string{"| `LOG_LEVEL` | `info` |", "| `DEPLOY_TOKEN` | set |", "| `NOT_THERE` | missing |"} {
		if !strings.Contains(reply, want) {
			t.Errorf("env list lacks %q:\n%s", want, reply)
		}
	}
	if strings.Contains(reply, "s3cr3t") {
		t.Errorf("env list shows a secret's value:\n%s", reply)
	}
}
