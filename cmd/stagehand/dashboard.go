package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/handlers/web"
	"github.com/stagehand-dev/stagehand/router"
)

// serveDashboard adds the dashboard and its JSON API to mux as --dashboard
// says (SPEC §7: a visitor sees the programs whose repository they can
// read on GitHub):
//
//   - github (the default) with the App's client id and secret: every page
//     and API call needs a sign-in with GitHub or a GitHub token;
//   - github without them, or off: no dashboard; / and /api/v1/ say how to
//     turn it on, and so does the log at start;
//   - public: no sign-in, with a warning at start.
func serveDashboard(mux *http.ServeMux, cfg *config.Server, store bot.Transactor, d *web.Dashboard, logger *slog.Logger) error {
	switch {
	case cfg.Dashboard == config.DashboardPublic:
		logger.Warn("the dashboard is public (--dashboard public): anyone who reaches "+cfg.Listen+
			" sees every program, its commits, branches, step logs and variables; to have visitors sign in with GitHub instead, "+
			"set --github-client-id and --github-client-secret-file and leave --dashboard at github", "public_url", cfg.PublicURL)
		d.Public = true
		d.Restores = nil // nobody signs in, so nobody is known to be an approver
		d.Register(mux)
		return nil
	case cfg.Dashboard == config.DashboardGitHub && cfg.SignInConfigured():
		key, err := sessionKey(cfg)
		if err != nil {
			return err
		}
		public := strings.TrimRight(cfg.PublicURL, "/")
		ua, err := githubapp.NewUserAuth(githubapp.UserAuthOptions{ClientID: cfg.GitHubClientID, ClientSecret: string(cfg.ClientSecret),
			WebURL: cfg.GitHubWebURL, APIURL: cfg.GitHubAPIURL, RedirectURL: public + "/auth/callback"})
		if err != nil {
			return err
		}
		signIn, err := web.NewSignIn(web.SignInOptions{Store: store, Flow: ua, GitHub: ua, Revoker: ua,
			SessionKey: key, PublicURL: public, Clock: bot.SystemClock{}, Logger: logger})
		if err != nil {
			return err
		}
		d.Guard, d.Identify = signIn.Require, signIn.Identify
		d.Register(mux)
		signIn.Register(mux)
		logger.Info("the dashboard asks visitors to sign in with GitHub", "callback_url", signIn.CallbackURL(),
			"github_web_url", cfg.GitHubWebURL, "access_ttl", web.DefaultAccessTTL, "session_lifetime", web.SessionLifetime)
		return nil
	}
	why := "the dashboard is off (--dashboard off)"
	if cfg.Dashboard == config.DashboardGitHub {
		why = "sign-in with GitHub is not configured, so Stagehand serves no dashboard. To turn it on, set --github-client-id and " +
			"--github-client-secret-file (the GitHub App's client ID and a client secret, from its settings page) and register " +
			strings.TrimRight(cfg.PublicURL, "/") + "/auth/callback as the App's callback URL; or, to serve it to anyone who reaches " +
			"the port, pass --dashboard public"
	}
	logger.Warn(why)
	off := dashboardOff(why)
	for _, pattern := range []string{"GET /{$}", "/programs/", "/api/v1/", "/auth/"} {
		mux.Handle(pattern, off)
	}
	return nil
}

// dashboardOff answers the dashboard's paths when it is not served: 404,
// saying why.
func dashboardOff(why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "{\"error\": %q}\n", why)
			return
		}
		http.Error(w, "Stagehand: "+why+".", http.StatusNotFound)
	})
}

// sessionKeyName is the session key's file in the data dir.
const sessionKeyName = "session-key"

// sessionKey reads --session-key-file, or the data dir's session-key,
// which it makes (32 random bytes, hex, mode 0600) when it is missing. A
// file named with the flag must exist: it is the key every replica shares.
func sessionKey(cfg *config.Server) ([]byte, error) {
	path := cfg.SessionKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, sessionKeyName)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if err := makeSessionKey(path); err != nil {
				return nil, err
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the session key (--session-key-file): %w", err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if dec, err := hex.DecodeString(string(key)); err == nil {
		key = dec
	}
	if len(key) < web.MinSessionKeyBytes {
		return nil, fmt.Errorf("the session key in %s is too short: %d bytes, want at least %d random ones (e.g. openssl rand -hex 32 > %s)",
			path, len(key), web.MinSessionKeyBytes, path)
	}
	return key, nil
}

func makeSessionKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("making the session key in the data dir: %w", err)
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(key)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serveMetrics serves GET /metrics on --metrics-listen, apart from the
// public port, until stop is called.
func serveMetrics(cfg *config.Server, metrics *router.Metrics, logger *slog.Logger) (stop func(context.Context), err error) {
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("listening for /metrics on %s: %w (is another server using it? choose another with --metrics-listen)", cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	router.MetricsRoutes(mux, metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("the metrics server stopped", bot.LogError, err)
		}
	}()
	logger.Info("metrics are served apart", "metrics_listen", ln.Addr().String())
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			logger.Warn("metrics server shutdown", bot.LogError, err)
		}
		<-done
	}, nil
}
