package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/config"
)

const setupUsage = `Usage: stagehand setup --public-url https://stagehand.example.com [flags]

Creates Stagehand's GitHub App with GitHub's App manifest flow, in one
browser round trip: it serves a small page on this machine (--listen,
loopback by default) that shows what will be created and, on one click,
sends GitHub the App's manifest: its name, webhook (<public-url>/webhooks),
sign-in callback (<public-url>/auth/callback) and exactly the permissions
and events Stagehand needs. You press Create on GitHub; GitHub sends the
browser back here, and setup exchanges the one-hour code for the App's
credentials.

It stores them in the data directory: github-app.json (App ID, client ID,
GitHub's URLs), github-private-key.pem, github-webhook-secret and
github-client-secret, each readable by you only (mode 0600); it prints the
file names, never the values. "stagehand serve --data-dir DIR --public-url
URL" then finds them. With --kubernetes-secret NAME it stores nothing: it
prints a Kubernetes Secret for the Helm chart's github.existingSecret and
dashboard.existingSecret to stdout (kubectl apply -f -), and the helm values
to stderr.

It ends with the App's install URL (one click to choose the repositories)
and the exact command that runs the server with what was stored.

Flags:
`

// setupFlags are setup's flags.
type setupFlags struct {
	PublicURL, Org, Name, WebURL, APIURL, DataDir, Listen, K8sSecret string
}

// The Helm chart's keys of github.existingSecret and
// dashboard.existingSecret (charts/stagehand/values.yaml); chartcheck's
// TestSetupSecret checks the Secret printed with them against the chart.
const (
	chartPrivateKeyKey    = "private-key.pem"
	chartWebhookSecretKey = "webhook-secret"
	chartClientSecretKey  = "client-secret"
	chartSessionKeyKey    = "session-key"
)

func setup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f setupFlags
	fs := newSetupFlagSet(&f)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, setupUsage+fs.FlagUsages()) }
	if ok, err := parseFlags(fs, args, stderr); !ok {
		return err
	}
	if err := noArguments(fs, stderr); err != nil {
		return err
	}
	if err := applyEnvOf(fs, getenv, "public-url", "github-web-url", "github-api-url", "data-dir"); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return fmt.Errorf("%w\nRun \"stagehand setup --help\" for its flags.", err)
	}
	ln, err := listenOn(f.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	state, err := randomToken(32)
	if err != nil {
		return err
	}
	page := &setupPage{flags: f, state: state, addr: pageAddr(ln.Addr()), done: make(chan *githubapp.Created, 1), log: stderr}
	page.manifest = githubapp.NewManifest(f.Name, f.PublicURL, "http://"+page.addr+setupDonePath)
	if !isLoopback(ln.Addr()) {
		fmt.Fprintf(stderr, "warning: the setup page listens on %s, not on loopback only: anyone who reaches it sees what it would send GitHub (never the credentials)\n", ln.Addr())
	}
	fmt.Fprintf(stderr, "Open http://%s/ in your browser and click \"Create the GitHub App on GitHub\" (Ctrl-C to give up).\n", page.addr)
	srv := &http.Server{Handler: page, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var created *githubapp.Created
	select {
	case <-ctx.Done():
		_ = srv.Close()
		return fmt.Errorf("setup stopped before GitHub created the App: %w", ctx.Err())
	case err := <-served:
		return fmt.Errorf("the setup page stopped: %w", err)
	case created = <-page.done:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(shutdownCtx) // lets the browser have its last page
	cancel()
	return f.finish(created, page.stored, stdout, stderr)
}

// newSetupFlagSet declares setup's flags.
func newSetupFlagSet(f *setupFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("setup", pflag.ContinueOnError)
	fs.StringVar(&f.PublicURL, "public-url", "", "where GitHub and people will reach the server, e.g. https://stagehand.example.com (required; env "+config.EnvName("public-url")+")")
	fs.StringVar(&f.Org, "org", "", "create the App owned by this organization (you must be one of its owners); empty: owned by your own account")
	fs.StringVar(&f.Name, "name", "Stagehand", "the App's name on GitHub (unique on GitHub: add your organization's name when it is taken)")
	fs.StringVar(&f.WebURL, "github-web-url", "https://github.com/", "GitHub's web pages (GitHub Enterprise: https://HOST/; env "+config.EnvName("github-web-url")+")")
	fs.StringVar(&f.APIURL, "github-api-url", "", "GitHub's REST API; empty: https://api.github.com/ for github.com, <github-web-url>api/v3/ otherwise (env "+config.EnvName("github-api-url")+")")
	fs.StringVar(&f.DataDir, "data-dir", "./stagehand-data", "where the credentials are stored, serve's --data-dir (env "+config.EnvName("data-dir")+")")
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:8091", "address of the local setup page; keep it on loopback (127.0.0.1, [::1]): the page is for the browser on this machine")
	fs.StringVar(&f.K8sSecret, "kubernetes-secret", "", "print a Kubernetes Secret of this name (for the Helm chart's existingSecret) to stdout instead of storing files")
	return fs
}

// check checks the flags and fills the API URL's default.
func (f *setupFlags) check() error {
	var problems []string
	if f.PublicURL == "" {
		problems = append(problems, "--public-url is required: the https:// address where GitHub will send webhooks and people will open the dashboard")
	}
	for _, u := range []struct{ flag, value string }{{"public-url", f.PublicURL}, {"github-web-url", f.WebURL}, {"github-api-url", f.APIURL}} {
		if p, err := url.Parse(u.value); u.value != "" && (err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "") {
			problems = append(problems, fmt.Sprintf("--%s %q is not an http(s) URL", u.flag, u.value))
		}
	}
	if f.APIURL == "" {
		f.APIURL = defaultAPIURL(f.WebURL)
	}
	if f.K8sSecret == "" {
		if err := config.CheckNoStoredApp(f.DataDir); err != nil {
			problems = append(problems, err.Error())
		} else if err := canMakeIn(f.DataDir); err != nil {
			// Found only after GitHub made the App, its credentials would
			// be lost: the App would have to be deleted and made again.
			problems = append(problems, fmt.Sprintf("--data-dir %s cannot hold the App's credentials (%v): choose a directory you may write", f.DataDir, err))
		}
	}
	if len(problems) > 0 {
		return errors.New("stagehand setup cannot start:\n  - " + strings.Join(problems, "\n  - "))
	}
	return nil
}

// defaultAPIURL is the REST API of the GitHub whose web pages are at webURL.
func defaultAPIURL(webURL string) string {
	if u, err := url.Parse(webURL); err == nil && strings.EqualFold(u.Host, "github.com") {
		return githubapp.DefaultAPIURL
	}
	return strings.TrimSuffix(webURL, "/") + "/api/v3/"
}

// applyEnvOf sets the named flags from their STAGEHAND_… variables when not
// given, as serve does (setup shares these with serve; --listen is not
// read from STAGEHAND_LISTEN, which is serve's public address).
func applyEnvOf(fs *pflag.FlagSet, getenv func(string) string, names ...string) error {
	var errs []error
	for _, name := range names {
		v := getenv(config.EnvName(name))
		if fs.Lookup(name).Changed || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%q: %w", config.EnvName(name), v, err))
		}
	}
	return errors.Join(errs...)
}

// pageAddr is the address the page is opened at and GitHub sends the
// browser back to: where it listens, or loopback at its port when it
// listens on every interface (a browser may not open 0.0.0.0 or [::]).
func pageAddr(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return a.String()
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// randomToken is n random bytes, base64url.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// finish stores (or prints) what GitHub created and says what to do next.
func (f setupFlags) finish(created *githubapp.Created, stored []string, stdout, stderr io.Writer) error {
	out := stdout
	if f.K8sSecret != "" {
		out = stderr // stdout holds the Secret alone
	}
	fmt.Fprintf(out, "\nGitHub created the App %q (App ID %d, owned by %s).\n", created.Name, created.ID, created.Owner)
	if f.K8sSecret != "" {
		sessionKey := make([]byte, 32)
		if _, err := rand.Read(sessionKey); err != nil {
			return err
		}
		if _, err := stdout.Write(kubernetesSecret(f.K8sSecret, created, []byte(hex.EncodeToString(sessionKey)))); err != nil {
			return err
		}
		fmt.Fprintf(out, "The Kubernetes Secret %s went to stdout (keys %s, %s, %s, %s): kubectl apply -f - it.\n",
			f.K8sSecret, chartPrivateKeyKey, chartWebhookSecretKey, chartClientSecretKey, chartSessionKeyKey)
	} else {
		fmt.Fprintf(out, "Its credentials are stored in %s (readable by you only):\n", f.DataDir)
		for _, p := range stored {
			fmt.Fprintf(out, "  %s\n", p)
		}
	}
	fmt.Fprintf(out, "\n1. Install the App on the repositories that should get pipelines:\n   %s\n", created.InstallURL())
	if f.K8sSecret != "" {
		fmt.Fprintf(out, "\n2. Install the chart with it:\n   %s\n", strings.Join(helmCommand(f, created), " \\\n     "))
		return nil
	}
	fmt.Fprintf(out, "\n2. Start the server where %s reaches it:\n   stagehand serve --data-dir %s --public-url %s\n", f.PublicURL, shellQuote(f.DataDir), shellQuote(f.PublicURL))
	return nil
}

// helmCommand is the helm install of the chart with the printed Secret.
func helmCommand(f setupFlags, created *githubapp.Created) []string {
	cmd := []string{"helm install stagehand charts/stagehand",
		"--set github.appId=" + fmt.Sprint(created.ID),
		"--set github.existingSecret=" + f.K8sSecret,
		"--set dashboard.clientId=" + created.ClientID,
		"--set dashboard.existingSecret=" + f.K8sSecret,
		"--set publicUrl=" + shellQuote(f.PublicURL)}
	if f.APIURL != githubapp.DefaultAPIURL {
		cmd = append(cmd, "--set github.apiUrl="+shellQuote(f.APIURL), "--set github.gitUrl="+shellQuote(f.WebURL), "--set dashboard.webUrl="+shellQuote(f.WebURL))
	}
	return cmd
}

// kubernetesSecret is the Secret the chart's github.existingSecret and
// dashboard.existingSecret take, with the chart's default keys.
func kubernetesSecret(name string, created *githubapp.Created, sessionKey []byte) []byte {
	var b strings.Builder
	enc := func(v []byte) string { return base64.StdEncoding.EncodeToString(v) }
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/name: stagehand\ntype: Opaque\ndata:\n", name)
	fmt.Fprintf(&b, "  %s: %s\n", chartClientSecretKey, enc(created.ClientSecret))
	fmt.Fprintf(&b, "  %s: %s\n", chartPrivateKeyKey, enc(created.PEM))
	fmt.Fprintf(&b, "  %s: %s\n", chartSessionKeyKey, enc(sessionKey))
	fmt.Fprintf(&b, "  %s: %s\n", chartWebhookSecretKey, enc(created.WebhookSecret))
	return []byte(b.String())
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// setupPage is the local page: GET / shows what will be created and the
// button; GET /setup/done is where GitHub sends the browser back.
type setupPage struct {
	flags    setupFlags
	state    string
	addr     string
	manifest githubapp.Manifest
	log      io.Writer

	mu       sync.Mutex
	finished bool
	stored   []string
	done     chan *githubapp.Created
}

const (
	setupDonePath = "/setup/done"
	setupCookie   = "stagehand_setup"
)

func (p *setupPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	// Another site's page in this browser may not frame this one, and this
	// page's form may be sent to GitHub only.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' "+origin(p.flags.WebURL))
	if !p.ownHost(r.Host) {
		// A name that points at 127.0.0.1 (DNS rebinding) would otherwise
		// let another site read this page and its state.
		http.Error(w, "This setup page answers only at http://"+p.addr+"/", http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet {
		// Nothing here changes on a POST: a form of another site posted
		// here by someone's browser does nothing.
		h.Set("Allow", "GET")
		http.Error(w, "Only GET: the setup page takes no forms.", http.StatusMethodNotAllowed)
		return
	}
	if r.Host != p.addr {
		// localhost:PORT or another loopback name: the cookie must be
		// set where GitHub sends the browser back (the redirect_url's
		// host), or the way back is refused as another browser's.
		http.Redirect(w, r, "http://"+p.addr+r.URL.RequestURI(), http.StatusSeeOther)
		return
	}
	switch r.URL.Path {
	case "/":
		p.serveStart(w)
	case setupDonePath:
		p.serveDone(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ownHost reports whether host is the address the page listens on, or
// localhost at its port.
func (p *setupPage) ownHost(host string) bool {
	_, port, err := net.SplitHostPort(p.addr)
	return err == nil && (host == p.addr || host == "localhost:"+port || host == "127.0.0.1:"+port || host == "[::1]:"+port)
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "'none'"
	}
	return u.Scheme + "://" + u.Host
}

// serveStart shows the page and gives this browser the state in a cookie:
// only the browser that opened the page can complete the flow.
func (p *setupPage) serveStart(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: setupCookie, Value: p.state, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	renderSetupPage(w, http.StatusOK, p.startView())
}

// serveDone checks the state GitHub hands back, in the URL and in this
// browser's cookie, then exchanges the code for the App's credentials.
func (p *setupPage) serveDone(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cookie, _ := r.Cookie(setupCookie)
	switch {
	case !equalToken(q.Get("state"), p.state):
		fmt.Fprintln(p.log, "refused an answer whose state is not this setup's (not from the page it served)")
		renderSetupPage(w, http.StatusBadRequest, setupView{Title: "Refused: the state does not match", Problem: "This answer does not carry the state of the page this setup served, so it did not come from the click on it. Nothing was stored. Open http://" + p.addr + "/ and click the button there."})
		return
	case cookie == nil || !equalToken(cookie.Value, p.state):
		fmt.Fprintln(p.log, "refused an answer from a browser that did not open the setup page")
		renderSetupPage(w, http.StatusBadRequest, setupView{Title: "Refused: another browser", Problem: "This browser did not open this setup's page: finish in the browser that did, or open http://" + p.addr + "/ here and click the button again."})
		return
	case q.Get("code") == "":
		renderSetupPage(w, http.StatusBadRequest, setupView{Title: "No code from GitHub", Problem: "GitHub sent no code: the App was not created. Open http://" + p.addr + "/ and click again."})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock() // one conversion at a time; the first success ends setup
	if p.finished {
		renderSetupPage(w, http.StatusGone, setupView{Title: "Done already", Problem: "This setup has stored an App already."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	created, err := githubapp.ConvertManifest(ctx, p.flags.APIURL, nil, q.Get("code"))
	if err != nil {
		fmt.Fprintf(p.log, "GitHub did not hand over the App's credentials: %v\n", err)
		renderSetupPage(w, http.StatusBadGateway, setupView{Title: "GitHub did not hand over the App's credentials", Problem: err.Error()})
		return
	}
	if p.flags.K8sSecret == "" {
		p.stored, err = config.WriteStoredApp(p.flags.DataDir, config.StoredApp{AppID: created.ID, Slug: created.Slug, ClientID: created.ClientID, HTMLURL: created.HTMLURL,
			APIURL: p.flags.APIURL, WebURL: p.flags.WebURL}, config.StoredSecrets{PrivateKey: created.PEM, WebhookSecret: created.WebhookSecret, ClientSecret: created.ClientSecret})
		if err != nil {
			fmt.Fprintf(p.log, "GitHub created the App %s (App ID %d) but its credentials could not be stored: %v\nDelete the App on its settings page and run setup again.\n", created.Slug, created.ID, err)
			renderSetupPage(w, http.StatusInternalServerError, setupView{Title: "The credentials could not be stored", Problem: err.Error()})
			return
		}
	}
	p.finished = true
	renderSetupPage(w, http.StatusOK, setupView{Title: "Created " + created.Name, Done: true, InstallURL: created.InstallURL(), Flags: p.flags})
	p.done <- created
}

func equalToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
