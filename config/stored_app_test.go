package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// TestUseStoredApp: serve takes from the data directory what setup stored
// there, unless a flag or a STAGEHAND_… variable gives it: each source is
// said, and a stored App of another id than --github-app-id is not used.
func TestUseStoredApp(t *testing.T) {
	dir := t.TempDir()
	written, err := WriteStoredApp(dir, StoredApp{AppID: 77, Slug: "stagehand", ClientID: "Iv23liStored", APIURL: "https://ghe.example/api/v3/", WebURL: "https://ghe.example/"},
		StoredSecrets{PrivateKey: []byte("PEM"), WebhookSecret: []byte("hook"), ClientSecret: []byte("client")})
	if err != nil || len(written) != 4 {
		t.Fatal(written, err)
	}
	in := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantSources []string
		want        Server // the fields compared
	}{
		{"all stored", nil, nil,
			[]string{"app id from " + in(StoredAppFile), "private key from " + in(StoredPrivateKeyFile), "webhook secret from " + in(StoredWebhookSecretFile),
				"client id from " + in(StoredAppFile), "client secret from " + in(StoredClientSecretFile)},
			Server{GitHubAppID: 77, GitHubPrivateKeyFile: in(StoredPrivateKeyFile), GitHubWebhookSecretFile: in(StoredWebhookSecretFile), GitHubClientID: "Iv23liStored",
				GitHubClientSecretFile: in(StoredClientSecretFile), GitHubAPIURL: "https://ghe.example/api/v3/", GitHubWebURL: "https://ghe.example/", GitHubGitURL: "https://ghe.example/"}},
		{"flags and variables win", []string{"--github-private-key-file", "/k.pem", "--github-api-url", "https://api.github.com/"},
			map[string]string{"STAGEHAND_GITHUB_WEBHOOK_SECRET": "env-hook", "STAGEHAND_GITHUB_CLIENT_SECRET": "env-client"},
			[]string{"app id from " + in(StoredAppFile), "private key from --github-private-key-file", "webhook secret from STAGEHAND_GITHUB_WEBHOOK_SECRET",
				"client id from " + in(StoredAppFile), "client secret from STAGEHAND_GITHUB_CLIENT_SECRET"},
			Server{GitHubAppID: 77, GitHubPrivateKeyFile: "/k.pem", GitHubWebhookSecret: "env-hook", GitHubClientID: "Iv23liStored",
				GitHubAPIURL: "https://api.github.com/", GitHubWebURL: "https://ghe.example/", GitHubGitURL: "https://ghe.example/"}},
		{"the PEM in a variable", nil, map[string]string{"STAGEHAND_GITHUB_PRIVATE_KEY": "PEM2"},
			[]string{"app id from " + in(StoredAppFile), "private key from STAGEHAND_GITHUB_PRIVATE_KEY", "webhook secret from " + in(StoredWebhookSecretFile),
				"client id from " + in(StoredAppFile), "client secret from " + in(StoredClientSecretFile)},
			Server{GitHubAppID: 77, GitHubWebhookSecretFile: in(StoredWebhookSecretFile), GitHubClientID: "Iv23liStored",
				GitHubClientSecretFile: in(StoredClientSecretFile), GitHubAPIURL: "https://ghe.example/api/v3/", GitHubWebURL: "https://ghe.example/", GitHubGitURL: "https://ghe.example/"}},
		{"another client id keeps the stored secret out", []string{"--github-client-id", "Iv23liOther"}, nil,
			[]string{"app id from " + in(StoredAppFile), "private key from " + in(StoredPrivateKeyFile), "webhook secret from " + in(StoredWebhookSecretFile), "client id from --github-client-id"},
			Server{GitHubAppID: 77, GitHubPrivateKeyFile: in(StoredPrivateKeyFile), GitHubWebhookSecretFile: in(StoredWebhookSecretFile), GitHubClientID: "Iv23liOther",
				GitHubAPIURL: "https://ghe.example/api/v3/", GitHubWebURL: "https://ghe.example/", GitHubGitURL: "https://ghe.example/"}},
		{"another App", []string{"--github-app-id", "78"}, nil,
			[]string{"the App from the flags only (" + in(StoredAppFile) + " holds App 77, --github-app-id is 78)"},
			Server{GitHubAppID: 78, GitHubAPIURL: "https://api.github.com/", GitHubWebURL: "https://github.com/", GitHubGitURL: "https://github.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			s := RegisterServerFlags(fs)
			getenv := func(k string) string { return tt.env[k] }
			if err := fs.Parse(append([]string{"--data-dir", dir}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			if err := ApplyEnv(fs, getenv); err != nil {
				t.Fatal(err)
			}
			sources, err := s.UseStoredApp(fs, getenv)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantSources, sources); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
			got := Server{GitHubAppID: s.GitHubAppID, GitHubPrivateKeyFile: s.GitHubPrivateKeyFile, GitHubWebhookSecret: s.GitHubWebhookSecret,
				GitHubWebhookSecretFile: s.GitHubWebhookSecretFile, GitHubClientID: s.GitHubClientID, GitHubClientSecretFile: s.GitHubClientSecretFile,
				GitHubAPIURL: s.GitHubAPIURL, GitHubWebURL: s.GitHubWebURL, GitHubGitURL: s.GitHubGitURL}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteStoredAppNeverOverwrites: a second setup into the same data
// directory is refused, the files untouched; every file is 0600.
func TestWriteStoredAppNeverOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := WriteStoredApp(dir, StoredApp{AppID: 1}, StoredSecrets{PrivateKey: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range StoredFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, fi.Mode().Perm(), err)
		}
	}
	if _, err := WriteStoredApp(dir, StoredApp{AppID: 2}, StoredSecrets{PrivateKey: []byte("two")}); !errors.Is(err, ErrStoredExists) {
		t.Errorf("a second write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, StoredPrivateKeyFile)); string(b) != "one" {
		t.Errorf("the key was overwritten: %q", b)
	}
}
