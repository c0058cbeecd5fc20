package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/config"
)

const doctorUsage = `Usage: stagehand doctor [serve's flags]

Checks the setup a "stagehand serve" with the same flags, variables and data
directory would run with, from where doctor runs, and prints one line per
check: "ok", "FAIL" with what to do, or "skip" with why. It exits 1 when a
check failed. The checks, in order:

  configuration      the flags resolve as serve resolves them (the App's
                     credentials from flags, STAGEHAND_… variables or what
                     "stagehand setup" stored in the data directory)
  GitHub App         GitHub answers GET /app with the App's key
  permission …       one line per permission Stagehand needs (Checks: write,
                     Contents: read, …); a missing one names the App's
                     settings page where it is added
  event …            one line per webhook event Stagehand needs
  webhook URL        <public-url>/webhooks answers an unsigned delivery with
                     Stagehand's 401 (so GitHub's deliveries reach a server)
  database           the state database answers (SQLite in the data
                     directory, or --database-url); a SQLite database not
                     made yet, that serve can make it (doctor makes nothing)
  broker             the external NATS JetStream of --nats-url answers (the
                     embedded one starts with serve)
  sandbox            bwrap is installed and makes a sandbox here
                     (--step-sandbox bwrap)
  secrets directory  --secrets-dir can be read

Flags (those of serve):
`

// doctorReport prints doctor's lines and counts the failures.
type doctorReport struct {
	out    io.Writer
	failed int
}

func (d *doctorReport) ok(what, detail string) { fmt.Fprintf(d.out, "ok    %s: %s\n", what, detail) }
func (d *doctorReport) skip(what, why string)  { fmt.Fprintf(d.out, "skip  %s: %s\n", what, why) }
func (d *doctorReport) fail(what, todo string) {
	d.failed++
	fmt.Fprintf(d.out, "FAIL  %s: %s\n", what, todo)
}

func doctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("doctor", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.RegisterServerFlags(fs)
	fs.Usage = func() { fmt.Fprint(stderr, doctorUsage+fs.FlagUsages()) }
	if ok, err := parseServerFlags(fs, args, getenv, stderr); !ok {
		return err
	}
	d := &doctorReport{out: stdout}
	sources, err := cfg.UseStoredApp(fs, getenv)
	switch rerr := cfg.Resolve(getenv); {
	case err != nil:
		d.fail("configuration", err.Error())
	case rerr != nil:
		if stored, _ := config.ReadStoredApp(cfg.DataDir); stored == nil && cfg.GitHubAppID <= 0 {
			d.fail("configuration", fmt.Sprintf("no GitHub App is given, and %s holds none that \"stagehand setup\" stored (%s): run stagehand setup --public-url URL, or pass the --data-dir it stored the App in, or the App's flags below",
				cfg.DataDir, config.StoredAppFile))
		}
		for _, p := range strings.Split(rerr.Error(), "\n  - ")[1:] {
			d.fail("configuration", p)
		}
	default:
		d.ok("configuration", "the App's credentials: "+strings.Join(sources, ", "))
	}
	d.githubApp(ctx, cfg)
	d.webhookURL(ctx, cfg)
	d.database(ctx, cfg)
	d.broker(ctx, cfg)
	d.sandbox(ctx, cfg)
	d.secretsDir(cfg)
	if d.failed > 0 {
		fmt.Fprintf(stdout, "%d check(s) failed.\n", d.failed)
		return exitError{1}
	}
	return nil
}

// githubApp checks the App's key and its permissions and events.
func (d *doctorReport) githubApp(ctx context.Context, cfg *config.Server) {
	if cfg.GitHubAppID <= 0 || len(cfg.PrivateKey) == 0 {
		d.skip("GitHub App", "no App ID and private key to ask GitHub with (see configuration)")
		return
	}
	app, err := githubapp.New(githubapp.Options{AppID: cfg.GitHubAppID, PrivateKeyPEM: cfg.PrivateKey, APIURL: cfg.GitHubAPIURL})
	if err != nil {
		d.fail("GitHub App", err.Error()+": pass the .pem of the App's private key (its settings page, Private keys)")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	settings, err := app.Settings(ctx)
	if err != nil {
		d.fail("GitHub App", fmt.Sprintf("%v: check --github-app-id %d, that the private key is one of that App's, and --github-api-url %s", err, cfg.GitHubAppID, cfg.GitHubAPIURL))
		return
	}
	d.ok("GitHub App", fmt.Sprintf("%s (App ID %d) answers at %s", settings.Slug, settings.ID, cfg.GitHubAPIURL))
	missing := map[string]githubapp.Shortfall{}
	for _, m := range settings.Missing() {
		missing[m.What] = m
	}
	fix := "add it on " + settings.SettingsURL(cfg.GitHubWebURL) + ", then accept the new permissions on each installation"
	for _, p := range githubapp.NeededPermissions {
		what := "permission " + p.String()
		if m, ok := missing[what]; ok {
			d.fail(what, "the App has "+m.Has+"; "+fix)
		} else {
			d.ok(what, "granted")
		}
	}
	for _, e := range githubapp.NeededEvents {
		what := "event " + e
		if _, ok := missing[what]; ok {
			d.fail(what, "the App is not subscribed; "+strings.Replace(fix, "add it", "subscribe to it", 1))
		} else {
			d.ok(what, "subscribed")
		}
	}
}

// webhookURL posts an unsigned delivery to the public URL's /webhooks:
// Stagehand's intake refuses it with 401 before reading it.
func (d *doctorReport) webhookURL(ctx context.Context, cfg *config.Server) {
	u := strings.TrimSuffix(cfg.PublicURL, "/") + "/webhooks"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader([]byte("{}")))
	if err != nil {
		d.fail("webhook URL", fmt.Sprintf("%s: %v: set --public-url to the https:// address GitHub reaches", u, err))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "stagehand-doctor")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.fail("webhook URL", fmt.Sprintf("%s does not answer from here (%v): start stagehand serve there, or fix the address (--public-url), DNS, ingress or firewall; GitHub must reach it", u, err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		d.fail("webhook URL", fmt.Sprintf("%s answered %s to an unsigned delivery, not Stagehand's 401: is --public-url this server's address, and does the ingress send /webhooks to it?", u, resp.Status))
		return
	}
	d.ok("webhook URL", u+" answers (401 to an unsigned delivery, as it should)")
}

// database opens the state database and pings it. A SQLite database not
// made yet is not made, nor its data directory: serve must be able to make
// them instead.
func (d *doctorReport) database(ctx context.Context, cfg *config.Server) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if cfg.DatabaseURL == "" {
		path := filepath.Join(cfg.DataDir, "stagehand.db")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if err := canMakeIn(cfg.DataDir); err != nil {
				d.fail("database", fmt.Sprintf("SQLite in %s cannot be made: %v: make --data-dir a directory serve may write", cfg.DataDir, err))
				return
			}
			d.ok("database", "SQLite in "+path+" (made when serve first starts)")
			return
		}
	}
	store, err := openStore(ctx, cfg)
	if err == nil {
		err = store.Ping(ctx)
		store.Close()
	}
	if err != nil {
		todo := "check that PostgreSQL runs there and the URL's user, password and database"
		if cfg.DatabaseURL == "" {
			todo = "check the data directory's permissions and free space"
		}
		d.fail("database", fmt.Sprintf("%v: %s", err, todo))
		return
	}
	if cfg.DatabaseURL != "" {
		d.ok("database", "PostgreSQL of --database-url answers")
	} else {
		d.ok("database", "SQLite in "+cfg.DataDir+" answers")
	}
}

// broker connects to an external NATS and asks for its JetStream account.
func (d *doctorReport) broker(ctx context.Context, cfg *config.Server) {
	if cfg.NATSURL == "" {
		d.ok("broker", "NATS JetStream embedded in the data directory (starts with serve)")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(cfg.NATSURL, nats.Timeout(5*time.Second), nats.Name("stagehand doctor"))
	if err != nil {
		d.fail("broker", fmt.Sprintf("NATS of --nats-url does not answer (%v): start it, or fix the URL and its credentials", err))
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		d.fail("broker", fmt.Sprintf("NATS answers but JetStream does not (%v): start nats-server with -js", err))
		return
	}
	d.ok("broker", "NATS JetStream of --nats-url answers")
}

// sandbox checks that bwrap makes a sandbox here, as serve does at start.
func (d *doctorReport) sandbox(ctx context.Context, cfg *config.Server) {
	switch {
	case cfg.StepRunner == config.RunnerRemote:
		d.skip("sandbox", "steps run on workers (--step-runner remote): bwrap is needed where stagehand worker runs")
		return
	case cfg.StepSandbox == config.SandboxNone:
		d.skip("sandbox", "--step-sandbox none: steps run as the server's user, beside its files")
		return
	}
	bwrap, err := runner.LookBwrap()
	if err != nil {
		d.fail("sandbox", fmt.Sprintf("%v: install bubblewrap (apt-get install bubblewrap; dnf install bubblewrap; apk add bubblewrap); serve refuses to start without it", err))
		return
	}
	if err := (&runner.Sandbox{Bwrap: bwrap}).Check(ctx); err != nil {
		d.fail("sandbox", fmt.Sprintf("%v: bwrap needs unprivileged user namespaces (sysctl user.max_user_namespaces=15000; on Debian and Ubuntu kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0)", err))
		return
	}
	d.ok("sandbox", bwrap+" makes a sandbox here")
}

// secretsDir checks that --secrets-dir can be listed.
func (d *doctorReport) secretsDir(cfg *config.Server) {
	if cfg.SecretsDir == "" {
		d.skip("secrets directory", "no --secrets-dir: a step whose environment declares secrets fails")
		return
	}
	entries, err := os.ReadDir(cfg.SecretsDir)
	if err != nil {
		d.fail("secrets directory", fmt.Sprintf("%v: make --secrets-dir a directory this user may read (<dir>/<owner>/<repo>/<environment>/<NAME>)", err))
		return
	}
	d.ok("secrets directory", fmt.Sprintf("%s can be read (%d entries)", cfg.SecretsDir, len(entries)))
}

// canMakeIn reports whether serve (or setup) could make files in dir: a
// file can be made (and is removed) in dir, or in the nearest of its
// parents that exists (serve makes the rest). It leaves nothing behind.
func canMakeIn(dir string) error {
	d, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		fi, err := os.Stat(d)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s is not a directory", d)
		case err == nil:
			f, err := os.CreateTemp(d, ".stagehand-doctor-*")
			if err != nil {
				return err
			}
			f.Close()
			return os.Remove(f.Name())
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || filepath.Dir(d) == d:
			return err
		}
		d = filepath.Dir(d)
	}
}
