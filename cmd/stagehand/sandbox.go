package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/stagehand-dev/stagehand/bot/runner"
	"github.com/stagehand-dev/stagehand/config"
)

// stepSandbox is where the step worker runs commands (--step-sandbox): a
// bubblewrap sandbox that shows neither the data directory nor the
// directories of the server's secret files, with writable added to what a
// step may write; or, with none, no sandbox (nil) and a warning. It
// refuses when bwrap is missing or cannot make a sandbox here, saying what
// to install or how to opt out.
func stepSandbox(ctx context.Context, cfg *config.Server, writable []string, logger *slog.Logger) (*runner.Sandbox, error) {
	optOut := fmt.Sprintf("or, only if every script pushed to the repositories is trusted, pass --step-sandbox none (%s=none) to run steps as this server's user, beside its files", config.EnvName("step-sandbox"))
	if cfg.StepSandbox == config.SandboxNone {
		logger.Warn("steps run without a sandbox (--step-sandbox none): every build, deploy and test script of a pushed commit runs as this server's user and can read its private key, webhook secret, database and data directory; install bubblewrap (apt-get install bubblewrap) and drop --step-sandbox none")
		return nil, nil
	}
	return bwrapSandbox(ctx, hiddenFrom(cfg.DataDir, cfg.GitHubPrivateKeyFile, cfg.GitHubWebhookSecretFile), writable, optOut, logger)
}

// hiddenFrom is what a sandbox must not show: the data directory and the
// directories of the secret files (those set).
func hiddenFrom(dataDir string, files ...string) []string {
	hide := []string{dataDir}
	for _, f := range files {
		if f != "" {
			hide = append(hide, filepath.Dir(f))
		}
	}
	return hide
}

// bwrapSandbox makes a bubblewrap sandbox that hides hide and checks that
// it works here; its errors say what to install or allow, then optOut.
func bwrapSandbox(ctx context.Context, hide, writable []string, optOut string, logger *slog.Logger) (*runner.Sandbox, error) {
	bwrap, err := runner.LookBwrap()
	if err != nil {
		return nil, fmt.Errorf("steps run in a bubblewrap sandbox (--step-sandbox bwrap, the default), but %w.\nInstall it (apt-get install bubblewrap; dnf install bubblewrap; apk add bubblewrap), %s", err, optOut)
	}
	s := &runner.Sandbox{Bwrap: bwrap, Hide: hide, Writable: writable}
	if err := s.Check(ctx); err != nil {
		return nil, fmt.Errorf("steps run in a bubblewrap sandbox (--step-sandbox bwrap, the default), but %w.\n"+
			"bwrap needs unprivileged user namespaces: allow them (sysctl user.max_user_namespaces=15000 and, on Debian and Ubuntu, kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0; in a container, a seccomp profile that allows unshare), %s", err, optOut)
	}
	logger.Info("steps run in a bubblewrap sandbox", "bwrap", bwrap)
	return s, nil
}

// playgroundSandbox chooses the playground's --step-sandbox: bwrap when it
// works on this machine, none otherwise, with a note for the playground's
// page saying so.
func playgroundSandbox(ctx context.Context) (mode, note string) {
	bwrap, err := runner.LookBwrap()
	if err == nil {
		err = (&runner.Sandbox{Bwrap: bwrap}).Check(ctx)
	}
	switch {
	case err == nil:
		return config.SandboxBwrap, ""
	case errors.Is(err, runner.ErrNoBwrap):
		return config.SandboxNone, "The sample's scripts run without a sandbox, as you: bubblewrap is not installed. " +
			"Install it (apt-get install bubblewrap) to see them run as stagehand serve runs them, confined to their workspace."
	default:
		return config.SandboxNone, "The sample's scripts run without a sandbox, as you: bubblewrap cannot make one on this machine (" + err.Error() + ")."
	}
}
