package main

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/handlers/notify"
	"github.com/stagehand-dev/stagehand/handlers/reporter"
	"github.com/stagehand-dev/stagehand/handlers/web"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
	hworker "github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/router"
	"github.com/stagehand-dev/stagehand/state"
)

const serveUsage = `Usage: stagehand serve [flags]

Runs the Stagehand GitHub App server: it takes GitHub's webhook deliveries on
POST /webhooks, keeps them in a durable broker, and runs the pipelines they
start. Every flag can also be set with the environment variable named after
it. A webhook secret, the App ID and the App's private key are required:
given by flags or variables, or found where "stagehand setup" stored them in
--data-dir (a flag or variable wins; the log at start says which was used).
At start serve compares the App's permissions and events with what
Stagehand needs (GET /app) and warns of each one missing.

Flags:
`

// shutdownTimeout bounds each phase of a graceful shutdown.
const shutdownTimeout = 30 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.RegisterServerFlags(fs)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage+fs.FlagUsages()) }
	if ok, err := parseServerFlags(fs, args, getenv, stderr); !ok {
		return err
	}
	// What `stagehand setup` stored in the data directory fills what the
	// flags and variables leave out.
	sources, err := cfg.UseStoredApp(fs, getenv)
	if err != nil {
		return err
	}
	if err := cfg.Resolve(getenv); err != nil {
		return fmt.Errorf("%w\n\nRun \"stagehand serve --help\" for every flag, or \"stagehand setup --help\" to create the App and store its credentials in the data directory.", err)
	}
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	if len(sources) > 0 {
		logger.Info("the GitHub App's credentials: "+strings.Join(sources, ", "), "app_id", cfg.GitHubAppID)
	}
	return serveWith(ctx, cfg, logger, extras{})
}

// parts are the pieces of a running server that a caller of serveWith (the
// playground) builds on.
type parts struct {
	store  bot.Store
	engine *bot.Engine
	mux    *http.ServeMux
}

// extras let the playground add to the same server code path.
type extras struct {
	// routes adds routes to the server's mux before it starts listening.
	routes func(p parts) error
	// listening is told the address the server listens on.
	listening func(addr string)
	// dashboard adds HTML to an execution's page (the playground's buttons).
	dashboard func(r *http.Request, ex bot.Execution) template.HTML
	// listener, when set, is where the server serves instead of listening
	// on cfg.Listen (the playground listens before it creates anything, so
	// a busy port is told at once). The caller closes it.
	listener net.Listener
	// stepWritable are directories step commands may write besides their
	// workspace (the playground's sites, where its sample deploys publish).
	stepWritable []string
}

// listenOn listens on addr, with an error that says what to do.
func listenOn(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w (is another server using it? choose another with --listen)", addr, err)
	}
	return ln, nil
}

func newLogger(cfg *config.Server, w io.Writer) (*slog.Logger, error) {
	level, err := config.ParseLogLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(bot.ContextLogHandler{Handler: h}), nil
}

// serveWith builds every part, runs until ctx ends, then shuts down in
// order: stop taking deliveries, let handlers in flight finish (what does
// not finish is redelivered after a restart), close the broker and the
// store.
func serveWith(ctx context.Context, cfg *config.Server, logger *slog.Logger, x extras) (err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	// With --step-runner remote, this process runs no command of a
	// repository: the workers do, each in its own sandbox.
	var sandbox *runner.Sandbox
	if cfg.StepRunner != config.RunnerRemote {
		if sandbox, err = stepSandbox(ctx, cfg, x.stepWritable, logger); err != nil {
			return err
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeLogged(logger, "state store", store.Close)

	broker, err := router.OpenBroker(ctx, router.BrokerOptions{DataDir: cfg.DataDir, URL: cfg.NATSURL, Prefix: cfg.NATSPrefix, SyncInterval: cfg.NATSSyncInterval, Logger: logger})
	if err != nil {
		return err
	}
	defer closeLogged(logger, "broker", broker.Close)
	// The intake stores into the broker: with the embedded one through the
	// inbox, which shares one fsync among the deliveries in flight and
	// forwards them (router.Inbox); with an external NATS directly, the
	// cluster's own replication and sync policy behind each PubAck.
	var inbox *router.Inbox
	if cfg.NATSURL == "" {
		inbox, err = router.OpenInbox(ctx, router.InboxOptions{Path: filepath.Join(cfg.DataDir, "intake.db"), NoSync: cfg.NATSSyncInterval > 0, Logger: logger}, broker)
		if err != nil {
			return err
		}
		defer closeLogged(logger, "intake inbox", inbox.Close) // before the broker
		// The embedded broker holds the data directory's lock: no other
		// process uses this database, so the leases a crashed run left
		// (the reporter's, the sender's, the redelivery pass's) are
		// taken over now rather than when they expire.
		if sq, ok := store.(*state.SQLite); ok {
			n, err := sq.ReleaseLeases(ctx, time.Now())
			if err != nil {
				return err
			}
			if n > 0 {
				logger.Info("took over the leases a previous run in this data directory left", "leases", n)
			}
		}
	}

	app, err := githubapp.New(githubapp.Options{AppID: cfg.GitHubAppID, PrivateKeyPEM: cfg.PrivateKey, APIURL: cfg.GitHubAPIURL})
	if err != nil {
		return err
	}
	// The App's permissions and events are compared with what Stagehand
	// needs, apart from the start: a shortfall is a warning (the App can be
	// fixed while this runs), and GitHub being slow delays nothing.
	checkDone := make(chan struct{})
	checkCtx, stopCheck := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	go func() {
		defer close(checkDone)
		warnAppShortfalls(checkCtx, app, cfg.GitHubWebURL, logger)
	}()
	defer func() { stopCheck(); <-checkDone }()
	artifacts, err := state.OpenArtifacts(filepath.Join(cfg.DataDir, "artifacts"))
	if err != nil {
		return fmt.Errorf("opening the artifact store in %s: %w", cfg.DataDir, err)
	}
	metrics := router.NewMetrics(broker.PoisonCount, webhook.Events()...)
	// Every diagnostic, warnings included, travels typed to the
	// stagehand/config check run.
	parse := bot.ConfigParser(func(data []byte) (*bot.Config, bot.Diagnostics) {
		return config.ParseRepoConfig(config.RepoConfigPath, data)
	})
	// Kept checkouts live in the data directory, which no step's sandbox shows.
	git := &hworker.GitRepos{BaseURL: cfg.GitHubGitURL, Scratch: filepath.Join(cfg.DataDir, "tmp"), Token: app.Token,
		Cache: &runner.CheckoutCache{Dir: filepath.Join(cfg.DataDir, "checkouts")}}
	if strings.HasPrefix(cfg.GitHubGitURL, "file://") {
		git.Token = nil // local repositories need no token
	}
	// Policy (SPEC §3) is read from each repository's default branch.
	policies := &webhook.Policies{Heads: git, Files: app, Parse: parse}
	engine := &bot.Engine{
		Store: store, Clock: bot.SystemClock{}, Jobs: router.JobQueue{Publisher: broker.Publisher()},
		Source: hworker.RepoSource{GitRepos: git, Files: app}, ParseConfig: parse, Policy: policies, Logger: logger, PublicURL: cfg.PublicURL,
		Artifacts: artifacts,
	}
	// With an external NATS, every replica reaches every artifact set: they
	// are shared through a JetStream object store, the local store caching.
	var stepArtifacts hworker.ArtifactStore = artifacts
	if cfg.NATSURL != "" {
		shared, err := router.NewNATSArtifacts(ctx, broker, artifacts)
		if err != nil {
			return fmt.Errorf("opening the shared artifact store on NATS: %w", err)
		}
		shared.TempDir = filepath.Join(cfg.DataDir, "tmp")
		if err := os.MkdirAll(shared.TempDir, 0o750); err != nil {
			return err
		}
		stepArtifacts = shared
		engine.Artifacts = shared // a restore finds a set another replica built
	}
	secrets := hworker.SecretsDir{Dir: cfg.SecretsDir}
	engine.Secrets = secrets // env list says whether each declared secret has a value
	worker := &hworker.StepWorker{Engine: engine, Git: git, Artifacts: stepArtifacts, DataDir: cfg.DataDir, Path: os.Getenv("PATH"), Sandbox: sandbox, Secrets: secrets, Logger: logger}
	if cfg.StepRunner == config.RunnerRemote {
		worker.Remote, worker.Specs = broker.StepDispatcher(), git
		logger.Info("build, deploy and test steps run on workers of the worker role (--step-runner remote)", "work_subject", router.StepWorkSubjects(cfg.NATSPrefix).Run)
	}
	webhooks := &webhook.Webhooks{
		Store: store, Engine: engine, Commands: engine, GitHub: app, Checks: app, AppID: cfg.GitHubAppID, PublicURL: cfg.PublicURL,
		Files: app, Policies: policies, Clock: bot.SystemClock{}, Logger: logger, ParseConfig: parse,
		Refusals:  func(action string) { metrics.Refusals.WithLabelValues(action).Inc() },
		Overrides: metrics.Overrides.Inc,
	}
	metrics.CountGitHubCalls(app.Calls)
	reporter := &reporter.Reporter{Store: store, GitHub: app, Clock: bot.SystemClock{}, Logger: logger, PublicURL: cfg.PublicURL, ParseConfig: parse}
	msgRouter, err := router.NewRouter(router.RouterOptions{
		Logger: logger, Subscriber: broker.Subscriber(), Publisher: broker.Publisher(),
		Metrics: metrics, Webhooks: router.WebhookHandler(webhooks.Handle), Steps: worker.Handle, CloseTimeout: shutdownTimeout,
		Deliveries: router.StoreDeliveryLog{Store: store},
	})
	if err != nil {
		return err
	}
	routerDone := make(chan error, 1)
	go func() { routerDone <- msgRouter.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-msgRouter.Running():
	case err := <-routerDone:
		return fmt.Errorf("the message router stopped at start: %w", err)
	}

	// The reconcile loop takes over what a crash or a lost message left:
	// steps whose worker died, due schedules, queued executions.
	reconcileCtx, stopReconcile := context.WithCancel(context.WithoutCancel(ctx))
	reconcileDone := make(chan struct{})
	go func() {
		defer close(reconcileDone)
		reconcileLoop(reconcileCtx, engine, logger)
	}()
	// A change to an execution wakes the reporter at once: the store says
	// so after the commit (in this process, and with PostgreSQL from the
	// other replicas too, by LISTEN/NOTIFY); the periodic pass is the
	// safety net.
	if feed, ok := store.(executionChanges); ok {
		reporter.Wake = feed.ExecutionChanges(reconcileCtx)
	}
	reporterDone := make(chan struct{})
	go func() {
		defer close(reporterDone)
		reporter.Run(reconcileCtx)
	}()
	// Retention: this process's step logs and artifact store (in
	// scale-out, its local copy of the shared artifact sets).
	// It also removes the audit records older than --audit-retention (a
	// pass on each replica: the second finds nothing left to remove).
	retainer := &hworker.Retainer{Store: store, Artifacts: artifacts, DataDir: cfg.DataDir, AuditAge: cfg.AuditRetention, Clock: bot.SystemClock{}, Logger: logger,
		Policy: bot.Retention{Age: cfg.Retention, KeepPromotable: bot.DefaultRetention.KeepPromotable, KeepDeployed: bot.DefaultRetention.KeepDeployed}}
	retainerDone := make(chan struct{})
	go func() {
		defer close(retainerDone)
		retainer.Run(reconcileCtx, time.Hour)
	}()
	// Notifications (handlers/notify): the engine queues them in its
	// transactions; one replica at a time (a lease) posts them, apart from
	// the pipeline.
	sender := &notify.Sender{Outbox: notify.StoreOutbox{Store: store, PublicURL: cfg.PublicURL}, Secrets: secrets,
		Logger: logger, Metrics: notify.NewMetrics(metrics.Registry), PassBudget: 10 * time.Second} // + a 10 s attempt < the 30 s lease
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		sender.Run(reconcileCtx, 2*time.Second, notify.StoreLease(store, notify.NewHolder(), time.Now, 30*time.Second))
	}()
	defer func() { stopReconcile(); <-reconcileDone; <-reporterDone; <-retainerDone; <-senderDone }()

	mux := http.NewServeMux()
	metricsOnMux := metrics // nil: /metrics is on --metrics-listen
	if cfg.MetricsListen != "" {
		metricsOnMux = nil
		stopMetrics, err := serveMetrics(cfg, metrics, logger)
		if err != nil {
			_ = msgRouter.Close()
			return err
		}
		defer stopMetrics(context.Background())
	}
	intake := &router.Intake{
		Secrets: [][]byte{cfg.WebhookSecret}, Publisher: broker.Publisher(),
		Events: webhook.EventSet(), Metrics: metrics, Logger: logger,
		Deliveries: router.StoreDeliveryLog{Store: store},
	}
	if inbox != nil {
		intake.Publisher = inbox
	}
	router.Routes(mux, intake, metricsOnMux, map[string]router.Checker{"state": store, "broker": broker})
	dashboard := &web.Dashboard{Store: store, Artifacts: artifacts, Logs: hworker.LogFiles{DataDir: cfg.DataDir}, Clock: bot.SystemClock{}, Logger: logger, Variables: engine.Variables, Calendar: engine.Calendar,
		Secrets: hworker.DeclaredSecrets{Policy: policies, Source: secrets}.Status, ParseConfig: parse,
		// Production's Restore button: authorized as a comment's restore
		// (webhooks), carried out by the engine's Restore.
		Restores: &web.Restores{Approvers: webhooks, Engine: engine, Audit: store}}
	if x.dashboard != nil {
		dashboard.Extra = func(r *http.Request, _ bot.Program, ex bot.Execution, _ []bot.Step) template.HTML {
			return x.dashboard(r, ex)
		}
	}
	if err := serveDashboard(mux, cfg, store, dashboard, logger); err != nil {
		_ = msgRouter.Close()
		return err
	}
	if x.routes != nil {
		if err := x.routes(parts{store: store, engine: engine, mux: mux}); err != nil {
			_ = msgRouter.Close()
			return err
		}
	}
	// Timeouts for every route. A webhook's body gets its own, shorter
	// deadline from the intake (router.DefaultBodyTimeout, 10 s: GitHub
	// gives up after that); ReadTimeout bounds the other routes' requests,
	// whose bodies are small forms. WriteTimeout runs from the end of the
	// headers to the end of the answer, so it must fit the largest answer,
	// a step log (at most 8 MiB: 70 KB/s is enough) and the intake's waits
	// (10 s body, 2 s budget, the broker's store); IdleTimeout closes kept-
	// alive connections nobody uses.
	srv := &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln := x.listener
	if ln == nil {
		if ln, err = listenOn(cfg.Listen); err != nil {
			_ = msgRouter.Close()
			return err
		}
	}
	logger.Info("stagehand is serving", "listen", ln.Addr().String(), "public_url", cfg.PublicURL,
		"data_dir", cfg.DataDir, "github_api_url", cfg.GitHubAPIURL, "app_id", cfg.GitHubAppID)
	if x.listening != nil {
		x.listening(ln.Addr().String())
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	// Automatic redelivery starts once deliveries can be taken: what it
	// asks GitHub for comes back to this listener.
	stopRedeliver := startRedeliver(ctx, cfg, app, store, metrics, logger)
	defer stopRedeliver()

	select {
	case <-ctx.Done():
		logger.Info("shutting down: no new deliveries; waiting for handlers in flight")
	case err = <-httpDone:
		err = fmt.Errorf("the HTTP server stopped: %w", err)
	case rerr := <-routerDone:
		err = fmt.Errorf("the message router stopped: %w", rerr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		logger.Warn("HTTP shutdown", bot.LogError, serr)
	}
	if cerr := msgRouter.Close(); cerr != nil {
		logger.Warn("message router shutdown", bot.LogError, cerr)
	}
	if werr := worker.Shutdown(shutdownCtx); werr != nil {
		logger.Warn("step worker shutdown", bot.LogError, werr)
	}
	logger.Info("stopped")
	return err
}

// executionChanges is a store that tells when an execution changed
// (state.SQLite, state.Postgres).
type executionChanges interface {
	ExecutionChanges(ctx context.Context) <-chan struct{}
}

// redeliverLease is the lease the replica asking GitHub for redeliveries holds.
const redeliverLease = "redeliver"

// startRedeliver runs automatic redelivery every --redeliver-interval on
// the replica holding its lease, until the returned stop is called; with
// an interval of 0 it does nothing.
func startRedeliver(ctx context.Context, cfg *config.Server, app *githubapp.App, store bot.Store, metrics *router.Metrics, logger *slog.Logger) (stop func()) {
	if cfg.RedeliverInterval <= 0 {
		logger.Info("automatic redelivery is off (--redeliver-interval 0): a webhook GitHub could not deliver is lost")
		return func() {}
	}
	deliveries := router.StoreDeliveryLog{Store: store}
	holder := bot.NewLeaseHolder()
	r := &router.Redeliverer{
		GitHub: app, Accepted: deliveries, Requests: deliveries, Events: webhook.EventSet(),
		// Held from pass to pass; a replica that dies loses it a minute
		// after the next pass was due (a single server on the embedded
		// broker takes it over when it starts again: serveWith).
		Lease:    bot.StoreLease(store, redeliverLease, holder, time.Now, cfg.RedeliverInterval+time.Minute),
		Outcomes: metrics.Redeliveries, Logger: logger, Clock: bot.SystemClock{},
	}
	logger.Info("automatic redelivery is on", "interval", cfg.RedeliverInterval, "lookback", router.DefaultRedeliverLookback)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(runCtx, cfg.RedeliverInterval)
	}()
	return func() {
		cancel()
		<-done
		// A clean stop (an upgrade, a restart) hands the lease over at
		// once: the next process's first pass asks for what GitHub could
		// not deliver meanwhile.
		giveCtx, giveDone := context.WithTimeout(context.Background(), 5*time.Second)
		defer giveDone()
		if err := bot.GiveBack(giveCtx, store, redeliverLease, holder, time.Now()); err != nil {
			logger.Warn("giving the redeliver lease back", bot.LogError, err)
		}
	}
}

// openStore opens PostgreSQL when --database-url is set, SQLite in the data
// dir otherwise.
func openStore(ctx context.Context, cfg *config.Server) (bot.Store, error) {
	if cfg.DatabaseURL != "" {
		s, err := state.OpenPostgres(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL database of --database-url: %w", err)
		}
		return s, nil
	}
	s, err := state.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "stagehand.db"))
	if err != nil {
		return nil, fmt.Errorf("opening the state database in %s: %w", cfg.DataDir, err)
	}
	return s, nil
}

// reconcileInterval is how often the engine looks for work left behind.
const reconcileInterval = 2 * time.Second

func reconcileLoop(ctx context.Context, engine *bot.Engine, logger *slog.Logger) {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		if err := engine.Reconcile(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("reconcile", bot.LogError, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func closeLogged(logger *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		logger.Warn("closing "+what, bot.LogError, err)
	}
}
