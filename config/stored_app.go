package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// The GitHub App's credentials as `stagehand setup` stores them in the data
// directory, where `serve` finds them when its flags do not say otherwise:
// what is not secret in StoredAppFile, each secret in a file of its own,
// readable by its owner only (mode 0600).
const (
	StoredAppFile           = "github-app.json"
	StoredPrivateKeyFile    = "github-private-key.pem"
	StoredWebhookSecretFile = "github-webhook-secret"
	StoredClientSecretFile  = "github-client-secret"
)

// StoredApp is StoredAppFile: the App's ids and where its GitHub is.
type StoredApp struct {
	AppID    int64  `json:"app_id"`
	Slug     string `json:"slug"`
	ClientID string `json:"client_id"`
	HTMLURL  string `json:"html_url"`
	APIURL   string `json:"github_api_url"`
	WebURL   string `json:"github_web_url"`
}

// StoredSecrets are the App's secrets, as GitHub handed them over.
type StoredSecrets struct {
	PrivateKey, WebhookSecret, ClientSecret []byte
}

// StoredFiles are the names of the files WriteStoredApp writes, in order.
var StoredFiles = []string{StoredAppFile, StoredPrivateKeyFile, StoredWebhookSecretFile, StoredClientSecretFile}

// ErrStoredExists matches WriteStoredApp's error when the directory holds
// stored credentials already.
var ErrStoredExists = errors.New("the data directory holds a GitHub App's credentials already")

// CheckNoStoredApp returns an error matching ErrStoredExists when dir holds
// any of StoredFiles.
func CheckNoStoredApp(dir string) error {
	for _, name := range StoredFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%w (%s): remove those files, or choose another --data-dir", ErrStoredExists, filepath.Join(dir, name))
		}
	}
	return nil
}

// WriteStoredApp writes app and secrets into dir (made with mode 0700 when
// missing), every file new (it never overwrites) and with mode 0600. It
// returns the paths written.
func WriteStoredApp(dir string, app StoredApp, secrets StoredSecrets) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	if err := CheckNoStoredApp(dir); err != nil {
		return nil, err
	}
	meta, err := json.MarshalIndent(app, "", "  ")
	if err != nil {
		return nil, err
	}
	contents := [][]byte{append(meta, '\n'), secrets.PrivateKey, append(append([]byte(nil), secrets.WebhookSecret...), '\n'), append(append([]byte(nil), secrets.ClientSecret...), '\n')}
	var written []string
	for i, name := range StoredFiles {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return written, fmt.Errorf("storing %s: %w", name, err)
		}
		_, err = f.Write(contents[i])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return written, fmt.Errorf("storing %s: %w", name, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// ReadStoredApp reads StoredAppFile in dir; nil without error when there is
// none.
func ReadStoredApp(dir string) (*StoredApp, error) {
	b, err := os.ReadFile(filepath.Join(dir, StoredAppFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stored GitHub App: %w", err)
	}
	var app StoredApp
	if err := json.Unmarshal(b, &app); err != nil || app.AppID <= 0 {
		return nil, fmt.Errorf("%s is not what stagehand setup writes (run setup again in an empty --data-dir, or pass the App's flags)", filepath.Join(dir, StoredAppFile))
	}
	return &app, nil
}

// UseStoredApp fills the GitHub App flags of serve that neither a flag nor
// a STAGEHAND_… variable set (ApplyEnv has run) from what setup stored in
// s.DataDir. It returns, for the start-up log, where each credential comes
// from. A stored App whose id differs from --github-app-id is not used.
func (s *Server) UseStoredApp(fs *pflag.FlagSet, getenv func(string) string) ([]string, error) {
	stored, err := ReadStoredApp(s.DataDir)
	if err != nil {
		return nil, err
	}
	given := func(flag string) bool { f := fs.Lookup(flag); return f != nil && f.Changed }
	from := func(flag string) string {
		if env := getenv(EnvName(flag)); env != "" && fs.Lookup(flag).Value.String() == env {
			return EnvName(flag)
		}
		return "--" + flag
	}
	var sources []string
	src := func(what, where string) { sources = append(sources, what+" from "+where) }
	if stored != nil && given("github-app-id") && s.GitHubAppID != stored.AppID {
		return []string{fmt.Sprintf("the App from the flags only (%s holds App %d, --github-app-id is %d)", filepath.Join(s.DataDir, StoredAppFile), stored.AppID, s.GitHubAppID)}, nil
	}
	useStored := stored != nil
	inDir := func(name string) string { return filepath.Join(s.DataDir, name) }
	switch {
	case given("github-app-id"):
		src("app id", from("github-app-id"))
	case useStored:
		s.GitHubAppID = stored.AppID
		src("app id", inDir(StoredAppFile))
	}
	switch {
	case given("github-private-key-file"):
		src("private key", from("github-private-key-file"))
	case getenv(EnvPrefix+"GITHUB_PRIVATE_KEY") != "":
		src("private key", EnvPrefix+"GITHUB_PRIVATE_KEY")
	case useStored:
		s.GitHubPrivateKeyFile = inDir(StoredPrivateKeyFile)
		src("private key", s.GitHubPrivateKeyFile)
	}
	switch {
	case given("github-webhook-secret"):
		src("webhook secret", from("github-webhook-secret"))
	case given("github-webhook-secret-file"):
		src("webhook secret", from("github-webhook-secret-file"))
	case useStored:
		s.GitHubWebhookSecretFile = inDir(StoredWebhookSecretFile)
		src("webhook secret", s.GitHubWebhookSecretFile)
	}
	// The client id and secret go together: a stored secret is used only
	// with the stored client id.
	switch {
	case given("github-client-id"):
		src("client id", from("github-client-id"))
	case useStored && stored.ClientID != "":
		s.GitHubClientID = stored.ClientID
		src("client id", inDir(StoredAppFile))
	}
	switch {
	case given("github-client-secret-file"):
		src("client secret", from("github-client-secret-file"))
	case getenv(EnvPrefix+"GITHUB_CLIENT_SECRET") != "":
		src("client secret", EnvPrefix+"GITHUB_CLIENT_SECRET")
	case useStored && stored.ClientID != "" && s.GitHubClientID == stored.ClientID:
		s.GitHubClientSecretFile = inDir(StoredClientSecretFile)
		src("client secret", s.GitHubClientSecretFile)
	}
	if useStored {
		for _, u := range []struct {
			flag  string
			value string
			p     *string
		}{{"github-api-url", stored.APIURL, &s.GitHubAPIURL}, {"github-web-url", stored.WebURL, &s.GitHubWebURL}, {"github-git-url", stored.WebURL, &s.GitHubGitURL}} {
			if !given(u.flag) && u.value != "" {
				*u.p = u.value
			}
		}
	}
	if len(sources) == 0 {
		return nil, nil
	}
	return sources, nil
}

// String names a stored App for messages: its slug and App ID.
func (a StoredApp) String() string {
	return strings.TrimSpace(a.Slug + " (App ID " + strconv.FormatInt(a.AppID, 10) + ")")
}
