package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/config"
	hworker "github.com/stagehand-dev/stagehand/handlers/worker"
	"github.com/stagehand-dev/stagehand/router"
	"github.com/stagehand-dev/stagehand/state"
)

const workerUsage = `Usage: stagehand worker --nats-url URL [flags]

Runs the build, deploy and test steps of a Stagehand server started with
--step-runner remote. It takes each step's work from NATS (the commit, a
short-lived token that may read that one repository, the scripts and their
environment), runs the scripts in a bubblewrap sandbox, and sends the log,
the result and the artifact set back over NATS. It needs none of the App's
private key, the webhook secret or the database: give it none. Connect it
with a NATS user that may use the worker's subjects only (see
docs/operating.md). Every flag can also be set with the environment variable
named after it.

Flags:
`

// workerConfig is the configuration of `stagehand worker`.
type workerConfig struct {
	NATSURL, NATSUser, NATSPasswordFile, NATSCreds, NATSPrefix string
	DataDir, StepSandbox, LogLevel, LogFormat                  string
	Concurrency                                                int
}

func worker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var c workerConfig
	env := func(flag string) string { return " (env " + config.EnvName(flag) + ")" }
	fs.StringVar(&c.NATSURL, "nats-url", "", "the NATS server (or cluster, comma-separated) of the Stagehand servers"+env("nats-url"))
	fs.StringVar(&c.NATSUser, "nats-user", "", "NATS user of the worker role"+env("nats-user"))
	fs.StringVar(&c.NATSPasswordFile, "nats-password-file", "", "file holding that user's password"+env("nats-password-file"))
	fs.StringVar(&c.NATSCreds, "nats-creds", "", "NATS credentials file (JWT and NKey seed), instead of a user and password"+env("nats-creds"))
	fs.StringVar(&c.NATSPrefix, "nats-prefix", "stagehand", "the servers' --nats-prefix"+env("nats-prefix"))
	fs.StringVar(&c.DataDir, "data-dir", "stagehand-worker", "directory for the steps' workspaces and the artifact sets they use"+env("data-dir"))
	fs.StringVar(&c.StepSandbox, "step-sandbox", config.SandboxBwrap, "bwrap: every command in a bubblewrap sandbox that sees the system's programs, its workspace and the network; none: as the worker's user, beside its files and NATS credentials"+env("step-sandbox"))
	fs.IntVar(&c.Concurrency, "concurrency", 4, "steps run at once"+env("concurrency"))
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error"+env("log-level"))
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json"+env("log-format"))
	fs.Usage = func() { fmt.Fprint(stderr, workerUsage+fs.FlagUsages()) }
	if ok, err := parseServerFlags(fs, args, getenv, stderr); !ok {
		return err
	}
	if err := c.check(); err != nil {
		return fmt.Errorf("%w\n\nRun \"stagehand worker --help\" for every flag.", err)
	}
	logger, err := newLogger(&config.Server{LogLevel: c.LogLevel, LogFormat: c.LogFormat}, stderr)
	if err != nil {
		return err
	}
	return runWorker(ctx, c, logger)
}

// check says everything that is wrong with c at once.
func (c workerConfig) check() error {
	var problems []string
	if c.NATSURL == "" {
		problems = append(problems, "the NATS server is missing: pass --nats-url (the servers' --nats-url) or set "+config.EnvName("nats-url"))
	}
	if c.NATSCreds != "" && c.NATSUser != "" {
		problems = append(problems, "pass either --nats-creds or --nats-user, not both")
	}
	if (c.NATSUser == "") != (c.NATSPasswordFile == "") {
		problems = append(problems, "--nats-user and --nats-password-file go together")
	}
	if c.StepSandbox != config.SandboxBwrap && c.StepSandbox != config.SandboxNone {
		problems = append(problems, fmt.Sprintf("--step-sandbox %q: use %s (the default) or %s", c.StepSandbox, config.SandboxBwrap, config.SandboxNone))
	}
	if c.Concurrency < 1 {
		problems = append(problems, "--concurrency must be at least 1")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// runWorker connects to NATS and runs steps until ctx ends.
func runWorker(ctx context.Context, c workerConfig, logger *slog.Logger) error {
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating the worker's data directory: %w", err)
	}
	var sandbox *runner.Sandbox
	if c.StepSandbox == config.SandboxNone {
		logger.Warn("steps run without a sandbox (--step-sandbox none): every build, deploy and test script runs as the worker's user and can read its NATS credentials and other steps' workspaces")
	} else {
		optOut := fmt.Sprintf("or pass --step-sandbox none (%s=none) to run steps as the worker's user, beside its files and NATS credentials", config.EnvName("step-sandbox"))
		s, err := bwrapSandbox(ctx, hiddenFrom(c.DataDir, c.NATSPasswordFile, c.NATSCreds), nil, optOut, logger)
		if err != nil {
			return err
		}
		sandbox = s
	}
	opts := []nats.Option{
		nats.Name("stagehand-worker"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.CustomInboxPrefix(router.WorkerInboxPrefix(c.NATSPrefix)),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS connection lost, reconnecting", bot.LogError, err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Error("NATS connection error", bot.LogError, err)
		}),
	}
	switch {
	case c.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	case c.NATSUser != "":
		pw, err := os.ReadFile(c.NATSPasswordFile)
		if err != nil {
			return fmt.Errorf("reading the NATS password of --nats-password-file: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.NATSUser, strings.TrimSpace(string(pw))))
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s (check --nats-url and the worker's NATS user): %w", c.NATSURL, err)
	}
	defer nc.Close()
	local, err := state.OpenArtifacts(filepath.Join(c.DataDir, "artifacts"))
	if err != nil {
		return fmt.Errorf("opening the artifact store in %s: %w", c.DataDir, err)
	}
	artifacts, err := router.BindNATSArtifacts(ctx, nc, c.NATSPrefix, local)
	if err != nil {
		return err
	}
	artifacts.TempDir = filepath.Join(c.DataDir, "tmp")
	if err := os.MkdirAll(artifacts.TempDir, 0o750); err != nil {
		return err
	}
	wr := &hworker.WorkRunner{Artifacts: artifacts, DataDir: c.DataDir, Path: os.Getenv("PATH"), Sandbox: sandbox,
		Checkouts: &runner.CheckoutCache{Dir: filepath.Join(c.DataDir, "checkouts")}}
	w := &router.Worker{Conn: nc, Prefix: c.NATSPrefix, Run: wr.Run, Concurrency: c.Concurrency, Logger: logger}
	logger.Info("stagehand worker is taking steps", "work_subject", router.StepWorkSubjects(c.NATSPrefix).Run, "concurrency", c.Concurrency, "sandbox", sandbox != nil)
	err = w.Serve(ctx)
	logger.Info("stopped")
	return err
}
