package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot"
)

// EnvPrefix starts the environment variable of every server flag:
// --github-app-id is read from STAGEHAND_GITHUB_APP_ID.
const EnvPrefix = "STAGEHAND_"

// Server is the configuration of `stagehand serve` (SPEC §6).
type Server struct {
	Listen                  string
	PublicURL               string
	DataDir                 string
	GitHubAppID             int64
	GitHubPrivateKeyFile    string
	GitHubWebhookSecret     string
	GitHubWebhookSecretFile string
	GitHubAPIURL            string
	GitHubGitURL            string
	DatabaseURL             string
	SecretsDir              string // <dir>/<owner>/<repo>/<environment>/<NAME>; empty: no secret source
	NATSURL                 string
	NATSPrefix              string
	NATSSyncInterval        time.Duration
	Retention               time.Duration
	AuditRetention          time.Duration // 0: audit records are kept forever
	RedeliverInterval       time.Duration // 0: no automatic redelivery
	StepSandbox             string        // SandboxBwrap or SandboxNone
	StepRunner              string        // RunnerLocal or RunnerRemote
	LogLevel                string
	LogFormat               string

	// The dashboard and its sign-in with GitHub.
	Dashboard              string // DashboardGitHub, DashboardPublic or DashboardOff
	GitHubClientID         string
	GitHubClientSecretFile string
	GitHubWebURL           string
	SessionKeyFile         string // empty: <data-dir>/session-key, made when missing
	MetricsListen          string // empty: /metrics on Listen

	// Filled by Resolve.
	PrivateKey    []byte // PEM
	WebhookSecret []byte
	ClientSecret  []byte // the App's client secret; nil when not configured
}

// DefaultRedeliverInterval is --redeliver-interval's default.
const DefaultRedeliverInterval = 5 * time.Minute

// Values of --dashboard.
const (
	DashboardGitHub = "github" // visitors sign in with GitHub and see what they can read
	DashboardPublic = "public" // everyone who reaches the port sees everything
	DashboardOff    = "off"    // no dashboard, no API
)

// SignInConfigured reports whether the App's client id and secret are set,
// which sign-in with GitHub needs.
func (s *Server) SignInConfigured() bool { return s.GitHubClientID != "" && len(s.ClientSecret) > 0 }

// Values of --step-runner.
const (
	RunnerLocal  = "local"  // steps run in this process (in the sandbox of --step-sandbox)
	RunnerRemote = "remote" // steps run on workers of the worker role (stagehand worker), over NATS
)

// Values of --step-sandbox.
const (
	SandboxBwrap = "bwrap" // every step command in a bubblewrap sandbox
	SandboxNone  = "none"  // as the server's user, beside its files
)

// EnvName returns the environment variable that sets a flag.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// RegisterServerFlags adds the serve flags to fs and returns where their
// values land. Usage strings name each flag's environment variable.
func RegisterServerFlags(fs *pflag.FlagSet) *Server {
	s := &Server{}
	str := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+EnvName(name)+")")
	}
	str(&s.Listen, "listen", ":8080", "HTTP address to listen on")
	str(&s.PublicURL, "public-url", "http://localhost:8080", "base URL of links in check runs and comments (where users reach this server)")
	registerStoreFlags(fs, s)
	fs.Int64Var(&s.GitHubAppID, "github-app-id", 0, "GitHub App ID, shown on the App's settings page (env "+EnvName("github-app-id")+"; required)")
	str(&s.GitHubPrivateKeyFile, "github-private-key-file", "", "PEM file of the App's private key; "+EnvPrefix+"GITHUB_PRIVATE_KEY may hold the PEM itself (required, one of the two)")
	str(&s.GitHubWebhookSecret, "github-webhook-secret", "", "secret GitHub signs webhook deliveries with (required, or --github-webhook-secret-file)")
	str(&s.GitHubWebhookSecretFile, "github-webhook-secret-file", "", "file holding the webhook secret")
	str(&s.GitHubAPIURL, "github-api-url", "https://api.github.com/", "GitHub REST API base (GitHub Enterprise: https://HOST/api/v3/)")
	str(&s.GitHubGitURL, "github-git-url", "https://github.com/", "clone base: <git-url><owner>/<repo>.git; file:///... works for local repositories")
	str(&s.SecretsDir, "secrets-dir", "", "where the values of the secrets environments declare are read: one file per value at <dir>/<owner>/<repo>/<environment>/<NAME> (a Kubernetes Secret, a Docker secret or a Vault agent presents them so); empty: no secret source, and a step whose environment declares a secret fails")
	str(&s.NATSURL, "nats-url", "", "external NATS JetStream server (nats://...); empty: a broker embedded in the data dir")
	str(&s.NATSPrefix, "nats-prefix", "stagehand", "prefix of the NATS subjects and streams (several Stagehand installations can share one NATS cluster)")
	fs.DurationVar(&s.NATSSyncInterval, "nats-sync-interval", 0, "embedded broker only: how often its store (and the intake's inbox) is flushed to disk; 0 puts every delivery on disk before its 202, so it survives a power loss too (env "+EnvName("nats-sync-interval")+")")
	s.Retention = bot.DefaultRetention.Age
	fs.Var((*days)(&s.Retention), "retention", "how long the step logs and no longer needed artifact sets of finished executions are kept, e.g. 30d or 36h; 0 keeps everything. What is deployed, running, among the 10 newest promotable builds or among what production ran in its last 10 deploys is always kept, and so are the executions themselves with their log tails (env "+EnvName("retention")+")")
	fs.Var((*days)(&s.AuditRetention), "audit-retention", "how long audit records are kept, e.g. 400d or 36h; 0 keeps every record forever. The retention pass removes older records and records how many it removed; nothing else ever deletes or changes one (env "+EnvName("audit-retention")+")")
	fs.DurationVar(&s.RedeliverInterval, "redeliver-interval", DefaultRedeliverInterval, "how often one replica reads the App's webhook deliveries on GitHub and asks GitHub to send again each one of the last 3 days that failed (Stagehand down, unreachable or overloaded) and that Stagehand does not have, once per failed attempt (up to 5 redeliveries of one delivery); 0 turns automatic redelivery off (env "+EnvName("redeliver-interval")+")")
	str(&s.StepRunner, "step-runner", RunnerLocal, "where build, deploy and test steps run: local, in this process; or remote, on workers started with `stagehand worker` that take them from --nats-url (needs an external NATS) and hold none of the App's key, the webhook secret or the database credentials")
	str(&s.StepSandbox, "step-sandbox", SandboxBwrap, "where step commands run: bwrap, a bubblewrap sandbox that sees the system's programs, its workspace and the network, and nothing of the server (install bubblewrap: apt-get install bubblewrap); or none, as the server's user beside its files, where any pushed build script can read the App's private key and the webhook secret")
	str(&s.Dashboard, "dashboard", DashboardGitHub, "the dashboard and its JSON API: github, visitors sign in with GitHub and see the programs whose repository they can read (needs --github-client-id and --github-client-secret-file; without them no dashboard is served); public, anyone who reaches the port sees every program; or off")
	str(&s.GitHubClientID, "github-client-id", "", "the GitHub App's client ID, shown on its settings page (dashboard sign-in)")
	str(&s.GitHubClientSecretFile, "github-client-secret-file", "", "file holding a client secret of the GitHub App (dashboard sign-in); "+EnvPrefix+"GITHUB_CLIENT_SECRET may hold the secret itself")
	str(&s.GitHubWebURL, "github-web-url", "https://github.com/", "GitHub's web pages, where its OAuth endpoints login/oauth/authorize and login/oauth/access_token are (GitHub Enterprise: https://HOST/)")
	str(&s.SessionKeyFile, "session-key-file", "", "file holding the key that seals the dashboard's cookies and stored tokens (at least 32 random bytes, the same on every replica); empty: session-key in the data dir, made when missing")
	str(&s.MetricsListen, "metrics-listen", "", "separate HTTP address for GET /metrics (e.g. :9090), kept off the public port; empty: /metrics is on --listen")
	str(&s.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	str(&s.LogFormat, "log-format", "text", "log format: text or json (json for production)")
	return s
}

// RegisterStoreFlags adds the flags that say where serve keeps its state,
// --data-dir and --database-url, as serve has them, for commands that read
// the same state (stagehand audit export).
func RegisterStoreFlags(fs *pflag.FlagSet) *Server {
	s := &Server{}
	registerStoreFlags(fs, s)
	return s
}

func registerStoreFlags(fs *pflag.FlagSet, s *Server) {
	fs.StringVar(&s.DataDir, "data-dir", "./stagehand-data", "directory for the embedded database, broker, artifacts and workspaces (env "+EnvName("data-dir")+")")
	fs.StringVar(&s.DatabaseURL, "database-url", "", "state database; empty: SQLite in the data dir (env "+EnvName("database-url")+")")
}

// ResolveStore checks the flags of RegisterStoreFlags; it returns the
// problems.
func (s *Server) ResolveStore() []string {
	var problems []string
	if s.DatabaseURL != "" && !strings.HasPrefix(s.DatabaseURL, "postgres://") && !strings.HasPrefix(s.DatabaseURL, "postgresql://") {
		problems = append(problems, "--database-url must be a postgres:// URL (or empty for SQLite in the data dir)")
	}
	if s.DataDir == "" {
		problems = append(problems, "--data-dir is empty: name a directory for the database and the broker")
	}
	return problems
}

// ApplyEnv sets every flag not given on the command line from its
// STAGEHAND_* environment variable, when that variable is set.
func ApplyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		v := getenv(EnvName(f.Name))
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%q: %w", EnvName(f.Name), v, err))
		}
	})
	return errors.Join(errs...)
}

// Resolve reads the secret files and checks the configuration. Its error
// names everything that is missing or wrong at once, and how to fix it.
func (s *Server) Resolve(getenv func(string) string) error {
	var problems []string
	if s.GitHubAppID <= 0 {
		problems = append(problems, "the GitHub App ID is missing: pass --github-app-id or set "+EnvName("github-app-id")+" (it is on the App's settings page)")
	}
	switch {
	case s.GitHubPrivateKeyFile != "":
		pem, err := os.ReadFile(s.GitHubPrivateKeyFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the private key file cannot be read: %v", err))
		}
		s.PrivateKey = pem
	case getenv(EnvPrefix+"GITHUB_PRIVATE_KEY") != "":
		s.PrivateKey = []byte(getenv(EnvPrefix + "GITHUB_PRIVATE_KEY"))
	default:
		problems = append(problems, "the GitHub App private key is missing: pass --github-private-key-file (a .pem downloaded from the App's settings) or put the PEM in "+EnvPrefix+"GITHUB_PRIVATE_KEY")
	}
	switch {
	case s.GitHubWebhookSecret != "":
		s.WebhookSecret = []byte(s.GitHubWebhookSecret)
	case s.GitHubWebhookSecretFile != "":
		b, err := os.ReadFile(s.GitHubWebhookSecretFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the webhook secret file cannot be read: %v", err))
		}
		s.WebhookSecret = []byte(strings.TrimRight(string(b), "\r\n"))
		if err == nil && len(s.WebhookSecret) == 0 {
			problems = append(problems, "the webhook secret file "+s.GitHubWebhookSecretFile+" is empty")
		}
	default:
		problems = append(problems, "the webhook secret is missing: pass --github-webhook-secret or --github-webhook-secret-file, or set "+EnvName("github-webhook-secret")+" (the same secret as in the App's webhook settings); Stagehand never accepts unsigned deliveries")
	}
	problems = append(problems, s.resolveDashboard(getenv)...)
	for _, u := range []struct{ flag, value string }{
		{"public-url", s.PublicURL}, {"github-api-url", s.GitHubAPIURL}, {"github-git-url", s.GitHubGitURL},
		{"github-web-url", s.GitHubWebURL},
	} {
		if p, err := url.Parse(u.value); err != nil || p.Scheme == "" {
			problems = append(problems, fmt.Sprintf("--%s %q is not an absolute URL", u.flag, u.value))
		}
	}
	switch {
	case s.StepRunner != RunnerLocal && s.StepRunner != RunnerRemote:
		problems = append(problems, fmt.Sprintf("--step-runner %q: use %s (the default) or %s", s.StepRunner, RunnerLocal, RunnerRemote))
	case s.StepRunner == RunnerRemote && s.NATSURL == "":
		problems = append(problems, "--step-runner remote needs an external NATS server that the workers reach: pass --nats-url (or set "+EnvName("nats-url")+")")
	}
	if s.RedeliverInterval < 0 {
		problems = append(problems, fmt.Sprintf("--redeliver-interval %s: give a positive duration such as 5m, or 0 to turn automatic redelivery off", s.RedeliverInterval))
	}
	if s.StepSandbox != SandboxBwrap && s.StepSandbox != SandboxNone {
		problems = append(problems, fmt.Sprintf("--step-sandbox %q: use %s (the default) or %s", s.StepSandbox, SandboxBwrap, SandboxNone))
	}
	if _, err := ParseLogLevel(s.LogLevel); err != nil {
		problems = append(problems, err.Error())
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		problems = append(problems, fmt.Sprintf("--log-format %q: use text or json", s.LogFormat))
	}
	problems = append(problems, s.ResolveStore()...)
	if len(problems) > 0 {
		return errors.New("stagehand serve cannot start:\n  - " + strings.Join(problems, "\n  - "))
	}
	return nil
}

// resolveDashboard reads the App's client secret and checks the dashboard's
// flags; it returns the problems.
func (s *Server) resolveDashboard(getenv func(string) string) []string {
	var problems []string
	switch {
	case s.GitHubClientSecretFile != "":
		b, err := os.ReadFile(s.GitHubClientSecretFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the client secret file cannot be read: %v", err))
		}
		s.ClientSecret = []byte(strings.TrimSpace(string(b)))
		if err == nil && len(s.ClientSecret) == 0 {
			problems = append(problems, "the client secret file "+s.GitHubClientSecretFile+" is empty")
		}
	case getenv(EnvPrefix+"GITHUB_CLIENT_SECRET") != "":
		s.ClientSecret = []byte(strings.TrimSpace(getenv(EnvPrefix + "GITHUB_CLIENT_SECRET")))
	}
	switch {
	case s.GitHubClientID != "" && len(s.ClientSecret) == 0 && s.GitHubClientSecretFile == "":
		problems = append(problems, "--github-client-id is set but the client secret is missing: pass --github-client-secret-file (generate a client secret on the App's settings page) or set "+EnvPrefix+"GITHUB_CLIENT_SECRET")
	case s.GitHubClientID == "" && len(s.ClientSecret) > 0:
		problems = append(problems, "a client secret is set but --github-client-id is missing: pass the App's client ID (its settings page) or set "+EnvName("github-client-id"))
	}
	if s.Dashboard != DashboardGitHub && s.Dashboard != DashboardPublic && s.Dashboard != DashboardOff {
		problems = append(problems, fmt.Sprintf("--dashboard %q: use %s (sign in with GitHub, the default), %s or %s", s.Dashboard, DashboardGitHub, DashboardPublic, DashboardOff))
	}
	return problems
}

// ParseLogLevel turns debug, info, warn or error into a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// AppIDString is the App ID in decimal, for logs.
func (s *Server) AppIDString() string { return strconv.FormatInt(s.GitHubAppID, 10) }

// days is a duration flag that also takes whole days ("30d"), the unit
// retention is thought of in; it prints whole days that way too.
type days time.Duration

func (d *days) String() string { return bot.FormatDays(time.Duration(*d)) }

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return fmt.Errorf("%q is not a number of days: write it like 30d", s)
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration: write it like 30d, 36h or 0", s)
	}
	*d = days(v)
	return nil
}

func (d *days) Type() string { return "duration" }
