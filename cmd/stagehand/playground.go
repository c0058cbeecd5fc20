package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
)

const playgroundUsage = `Usage: stagehand playground [flags]

Starts the whole Stagehand tour on this machine, with no GitHub: the bot (the
same code as "stagehand serve"), a GitHub stand-in, a sample repository with a
ready .github/stagehand.yml, and the dashboard. Push a change (a button, or a
real "git push" in the sample repository), watch the stage-only pipeline, click
Promote Build, approve, and see production change. Every click goes through the
same signed webhook path a real GitHub delivery takes.

Flags:
`

// The playground's GitHub: one installation of the App on playground/shop,
// and you, an admin of it.
const (
	playgroundAppID = 1
	playgroundInst  = 1
	playgroundOwner = "playground"
	playgroundRepo  = "shop"
	// playgroundRepoID is the sample repository's GitHub id in every
	// event: fixed, so a restarted playground's events name the same
	// repository (Stagehand keys programs by it).
	playgroundRepoID = 1296269
	playgroundUser   = "you"
	// The dashboard signs its visitor in with the stand-in's OAuth pages,
	// as playgroundUser; playgroundStranger is a GitHub user who may not
	// read the sample repository (the tests sign in as them).
	playgroundClientID = "Iv1.playground"
	playgroundStranger = "stranger"
)

// playgroundListen is where the playground listens unless --listen says
// otherwise: the loopback interface only. Its buttons run commands on this
// machine (the sample repository's scripts), so it answers no other one.
const playgroundListen = "127.0.0.1:8080"

func runPlayground(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("playground", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", playgroundListen, "HTTP address to listen on; the default answers only this machine (env "+config.EnvName("listen")+")")
	dataDir := fs.String("data-dir", "./stagehand-playground", "directory for the playground's repository, sites, database and broker (env "+config.EnvName("data-dir")+")")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error (env "+config.EnvName("log-level")+")")
	fs.Usage = func() { fmt.Fprint(stderr, playgroundUsage+fs.FlagUsages()) }
	if ok, err := parseServerFlags(fs, args, getenv, stderr); !ok {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := checkPlaygroundDir(dir); err != nil {
		return err
	}
	ln, err := listenOn(*listen) // before anything is created: a busy port is told at once
	if err != nil {
		return err
	}
	defer ln.Close() // also when serveWith fails before serving on it
	cfg := &config.Server{Listen: *listen, DataDir: dir, LogLevel: *logLevel, LogFormat: "text"}
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	public := publicURL(*listen)
	pg, err := newPlayground(filepath.Join(dir, "playground"), public, logger)
	if err != nil {
		return fmt.Errorf("setting up the playground in %s: %w", dir, err)
	}
	defer pg.gh.Close()
	cfg.PublicURL = public
	cfg.GitHubAppID = playgroundAppID
	cfg.PrivateKey = pg.keyPEM
	cfg.WebhookSecret = pg.secret
	cfg.GitHubAPIURL = pg.gh.URL()
	cfg.GitHubGitURL = "file://" + filepath.Join(pg.dir, "git") + "/"
	cfg.Dashboard, cfg.GitHubWebURL = config.DashboardGitHub, pg.gh.URL()
	cfg.GitHubClientID, cfg.ClientSecret = playgroundClientID, pg.clientSecret
	cfg.StepSandbox, pg.sandboxNote = playgroundSandbox(ctx) // bwrap, or none when it does not work here
	if cfg.SecretsDir, err = pg.secretsDir(); err != nil {
		return err
	}
	return serveWith(ctx, cfg, logger, extras{
		routes:       pg.routes,
		dashboard:    pg.executionButtons,
		listening:    func(addr string) { pg.started(addr, cfg.PublicURL, stdout) },
		listener:     ln,
		stepWritable: []string{pg.sites}, // the sample deploy publishes there
	})
}

// checkPlaygroundDir refuses a data directory that holds a Stagehand
// server's database but no playground: the playground would add its sample
// program, key and pipelines to that server's state.
func checkPlaygroundDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "stagehand.db")); err != nil {
		return nil // no database: a new directory, or not a server's
	}
	if _, err := os.Stat(filepath.Join(dir, "playground")); err == nil {
		return nil // an earlier playground's
	}
	return fmt.Errorf("%s holds the database of a Stagehand server (stagehand.db), not a playground's: "+
		"the playground will not run in it. Choose another directory with --data-dir "+
		"(and check %s, which the playground reads too)", dir, config.EnvName("data-dir"))
}

// publicURL is where a browser on this machine reaches --listen.
func publicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" || host == "127.0.0.1" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// newPlayground makes (or, after a restart, reopens) the GitHub stand-in
// and the sample repository.
func newPlayground(dir, public string, logger *slog.Logger) (*playground, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	keyPEM, key, err := playgroundKey(filepath.Join(dir, "app.pem"))
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	clientSecret := make([]byte, 20)
	if _, err := rand.Read(clientSecret); err != nil {
		return nil, err
	}
	u, err := url.Parse(public)
	if err != nil {
		return nil, fmt.Errorf("the playground's address %q: %w", public, err)
	}
	// The stand-in forgets everything on a restart while the store keeps
	// the check run and comment ids it handed out: ids that start from the
	// time cannot name anything of an earlier run (that run would have had
	// to hand out 1000 ids a millisecond). It serves without schema
	// checks, which are test code and stay out of this binary; the
	// playground's tests register them and check every body.
	gh := githubtest.New(nil, githubtest.WithFirstID(time.Now().UnixMilli()*1000), githubtest.OptionalSchemaChecks())
	gh.SetAppKey(playgroundAppID, &key.PublicKey)
	gh.AddInstallation(playgroundInst, playgroundOwner)
	gh.AddRepo(playgroundInst, playgroundOwner, playgroundRepo)
	gh.SetRepoID(playgroundOwner, playgroundRepo, playgroundRepoID) // as its events name it
	gh.SetPermission(playgroundOwner, playgroundRepo, playgroundUser, "admin")
	gh.AddUser(playgroundStranger)
	gh.SignInOnWeb(playgroundUser) // the visitor is signed in to this "GitHub"
	gh.SetOAuthApp(playgroundClientID, hex.EncodeToString(clientSecret), strings.TrimRight(public, "/")+"/auth/callback")
	pg := &playground{
		dir: dir, gh: gh, keyPEM: keyPEM, secret: []byte(hex.EncodeToString(secret)), logger: logger,
		token: hex.EncodeToString(token), publicHost: u.Hostname(), clientSecret: []byte(hex.EncodeToString(clientSecret)),
		bare:  filepath.Join(dir, "git", playgroundOwner, playgroundRepo+".git"),
		work:  filepath.Join(dir, "work", playgroundRepo),
		sites: filepath.Join(dir, "sites"),
	}
	if err := pg.initRepository(public); err != nil {
		gh.Close()
		return nil, err
	}
	return pg, nil
}

// playgroundKey keeps the App key of the playground across restarts.
func playgroundKey(path string) ([]byte, *rsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		block, _ := pem.Decode(b)
		if block != nil {
			if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
				return b, k, nil
			}
		}
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return b, k, os.WriteFile(path, b, 0o600)
}

// started writes the hook that turns a real git push into a webhook, and
// tells the newcomer where to go.
func (pg *playground) started(addr, public string, stdout io.Writer) {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every interface: loopback is one
	}
	pg.base = "http://" + net.JoinHostPort(host, port)
	exe, err := os.Executable()
	if err == nil {
		err = pg.installHook(exe)
	}
	if err != nil {
		pg.logger.Error("installing the push hook of the sample repository; use the Push a change button", "error", err)
	}
	fmt.Fprintf(stdout, `
Stagehand playground is running.

  Start here:      %[1]s/playground
  Dashboard:       %[1]s/
  Stage site:      %[1]s/playground/sites/stage/
  Production site: %[1]s/playground/sites/production/

What to do first: open %[1]s/playground and click "Push a change"
(or edit a file in %[2]s, commit, and "git push").
Then watch stage-only run, click Promote Build, Confirm, Approve, and
see the production site change.

The GitHub stand-in is at %[3]s: "stagehand setup" creates an App
on it as on GitHub (it approves the new-App form at once; App names are
unique there too, and "Stagehand" is this playground's own). From the clone:
  go run ./cmd/stagehand setup --name "Stagehand demo" --public-url http://localhost:9090 \
    --data-dir ./setup-demo --github-web-url %[3]s --github-api-url %[3]s

`, strings.TrimRight(public, "/"), pg.work, pg.gh.URL())
}
