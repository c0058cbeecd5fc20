package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/config"
)

// setupRun is one `stagehand setup` running in the test.
type setupRun struct {
	addr           string
	stdout, stderr *syncBuffer
	done           chan error
	cancel         context.CancelFunc
}

// startSetup runs setup against the stand-in gh (its web pages and API),
// with the page on a free loopback port, until it ends or the test does.
func startSetup(t *testing.T, gh *githubtest.Server, args ...string) *setupRun {
	t.Helper()
	return startSetupArgs(t, append([]string{"--github-web-url", gh.URL(), "--github-api-url", gh.URL()}, args...)...)
}

// startSetupArgs runs "stagehand setup ARGS", its page on a free loopback
// port unless ARGS say --listen, until it ends or the test does.
func startSetupArgs(t *testing.T, args ...string) *setupRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &setupRun{addr: freeAddr(t), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1), cancel: cancel}
	all := append([]string{"setup", "--listen", r.addr}, args...)
	for i, a := range args[:max(len(args)-1, 0)] {
		if a == "--listen" {
			r.addr = strings.Replace(args[i+1], "0.0.0.0:", "127.0.0.1:", 1)
		}
	}
	go func() { r.done <- run(ctx, all, func(string) string { return "" }, r.stdout, r.stderr) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		if t.Failed() {
			t.Logf("setup's stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	})
	waitFor(t, 30e9, "the setup page", func() bool {
		resp, err := http.Get("http://" + r.addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return r
}

// browser is a client with cookies that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func getPage(t *testing.T, c *http.Client, u string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

var (
	formAction    = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	manifestField = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
)

// click opens the setup page in c and presses its button: the manifest
// form goes to the stand-in, which answers with the way back. It returns
// the manifest sent and the URL GitHub sends the browser back to.
func (r *setupRun) click(t *testing.T, c *http.Client) (manifest map[string]any, back string) {
	t.Helper()
	return r.clickAt(t, c, "http://"+r.addr+"/")
}

// clickAt is click with the page opened at pageURL, following a redirect
// as a browser does.
func (r *setupRun) clickAt(t *testing.T, c *http.Client, pageURL string) (manifest map[string]any, back string) {
	t.Helper()
	status, h, page := getPage(t, c, pageURL)
	if status == http.StatusSeeOther {
		status, _, page = getPage(t, c, h.Get("Location"))
	}
	action, field := formAction.FindStringSubmatch(page), manifestField.FindStringSubmatch(page)
	if status != http.StatusOK || action == nil || field == nil {
		t.Fatalf("the setup page (%d) has no manifest form:\n%s", status, page)
	}
	raw := html.UnescapeString(field[1])
	if err := json.Unmarshal([]byte(raw), &manifest); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(url.Values{"manifest": {raw}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, h, _ = do(t, c, req)
	if status != http.StatusFound {
		t.Fatalf("GitHub's new-App form answered %d", status)
	}
	return manifest, h.Get("Location")
}

// finish follows GitHub's way back in c, which must succeed, and waits
// for setup to end well; it returns the page.
func (r *setupRun) finish(t *testing.T, c *http.Client, back string) string {
	t.Helper()
	status, _, body := getPage(t, c, back)
	if status != http.StatusOK {
		t.Fatalf("the way back: %d %s", status, body)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("setup: %v", err)
	}
	r.done <- nil // for the cleanup
	return body
}

// wantManifest is the manifest setup must send for publicURL: exactly
// the permissions and events Stagehand needs, the URLs from the flags.
func wantManifest(name, publicURL, setupAddr string) map[string]any {
	perms := map[string]any{}
	for k, v := range githubapp.NeededPermissionMap() {
		perms[k] = v
	}
	var events []any
	for _, e := range githubapp.NeededEvents {
		events = append(events, e)
	}
	return map[string]any{
		"name": name, "url": publicURL,
		"description":     "Stage-only, prod-only and full-stack deployment pipelines (Stagehand).",
		"hook_attributes": map[string]any{"url": publicURL + "/webhooks", "active": true},
		"redirect_url":    "http://" + setupAddr + "/setup/done",
		"callback_urls":   []any{publicURL + "/auth/callback"},
		"public":          false, "request_oauth_on_install": false,
		"default_permissions": perms, "default_events": events,
	}
}

// TestSetupFlow: setup against the stand-in sends the exact manifest,
// refuses a forged state and another browser, stores the credentials
// (mode 0600, printing only file names), prints the install URL and the
// serve command; that command alone starts a server that handles a
// signed delivery and finds the App as it needs it. The code, replayed,
// is refused.
func TestSetupFlow(t *testing.T) {
	h := newHarness(t)
	h.gh.AddUser("alice")
	h.gh.SignInOnWeb("alice")
	public := "http://" + h.addr
	r := startSetup(t, h.gh, "--public-url", public, "--data-dir", h.dataDir, "--name", "Stagehand test")
	c := browser(t)
	manifest, back := r.click(t, c)
	if diff := cmp.Diff(wantManifest("Stagehand test", public, r.addr), manifest); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	created := h.gh.CreatedApps()
	if len(created) != 1 || created[0].Owner != "alice" || created[0].State == "" {
		t.Fatalf("created %+v", created)
	}
	backURL, err := url.Parse(back)
	if err != nil || backURL.Host != r.addr || backURL.Query().Get("state") != created[0].State {
		t.Fatalf("sent back to %s", back)
	}

	// Forged: another state; another browser (no cookie); a POST.
	forged := *backURL
	q := forged.Query()
	q.Set("state", "forged"+created[0].State)
	forged.RawQuery = q.Encode()
	if status, _, body := getPage(t, c, forged.String()); status != http.StatusBadRequest || !strings.Contains(body, "the state does not match") {
		t.Errorf("a forged state: %d %s", status, body)
	}
	if status, _, body := getPage(t, browser(t), back); status != http.StatusBadRequest || !strings.Contains(body, "another browser") {
		t.Errorf("another browser with the right state: %d %s", status, body)
	}
	if len(h.gh.CreatedApps()) != 1 || fileExists(filepath.Join(h.dataDir, config.StoredAppFile)) {
		t.Fatal("a refused answer stored something")
	}

	// The real answer.
	if body := r.finish(t, c, back); !strings.Contains(body, h.gh.URL()+"apps/stagehand-test/installations/new") {
		t.Fatalf("the way back has no install link: %s", body)
	}

	// Replayed, the code is refused by GitHub, with the reason.
	_, err = githubapp.ConvertManifest(context.Background(), h.gh.URL(), nil, backURL.Query().Get("code"))
	if !errors.Is(err, githubapp.ErrCodeRefused) || !strings.Contains(err.Error(), githubtest.MsgManifestCodeUsed) {
		t.Errorf("the code replayed: %v", err)
	}

	// Stored: every file 0600, nothing secret printed.
	var secrets []string
	for _, name := range config.StoredFiles {
		p := filepath.Join(h.dataDir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		if !strings.Contains(r.stdout.String(), p) {
			t.Errorf("stdout does not name %s", p)
		}
		if name != config.StoredAppFile {
			b, _ := os.ReadFile(p)
			secrets = append(secrets, strings.TrimSpace(string(b)))
		}
	}
	for _, s := range secrets {
		lines := strings.Split(s, "\n")
		piece := lines[len(lines)/2] // a line of the key, or the secret
		if strings.Contains(r.stdout.String()+r.stderr.String(), piece) {
			t.Errorf("setup printed a secret value")
		}
	}
	wantCmd := "stagehand serve --data-dir " + h.dataDir + " --public-url " + public
	if out := r.stdout.String(); !strings.Contains(out, wantCmd) || !strings.Contains(out, h.gh.URL()+"apps/stagehand-test/installations/new") {
		t.Errorf("stdout lacks %q or the install URL:\n%s", wantCmd, out)
	}

	// serve with only --data-dir and --public-url (and this test's port,
	// sandbox and log level) finds the rest and handles a signed delivery.
	h.secret = secrets[1]
	logs := startServeWith(t, h, "serve", "--data-dir", h.dataDir, "--public-url", public, "--listen", h.addr, "--step-sandbox", testSandboxMode(), "--log-level", "debug")
	if code := h.send(t, "push", "setup-1", githubtest.Payload("push/branch-created.json")); code != http.StatusAccepted {
		t.Fatalf("a signed delivery: %d", code)
	}
	waitFor(t, 60e9, "the delivery to be handled", func() bool { return h.processed(t, "setup-1") })
	in := func(name string) string { return filepath.Join(h.dataDir, name) }
	wantSources := "the GitHub App's credentials: app id from " + in(config.StoredAppFile) + ", private key from " + in(config.StoredPrivateKeyFile) +
		", webhook secret from " + in(config.StoredWebhookSecretFile) + ", client id from " + in(config.StoredAppFile) + ", client secret from " + in(config.StoredClientSecretFile)
	waitFor(t, 30e9, "the permissions check", func() bool { return strings.Contains(logs.String(), "has every permission and event Stagehand needs") })
	if !strings.Contains(logs.String(), wantSources) {
		t.Errorf("serve's log does not say where the credentials came from (%q):\n%s", wantSources, logs)
	}

	// The stored client ID and secret sign alice in to the dashboard
	// (GitHub's authorize page, the way back, the code exchanged).
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := getPage(t, &http.Client{Jar: jar}, public+"/")
	if status != http.StatusOK || !regexp.MustCompile(`id="viewer"[^>]*>alice<`).MatchString(body) {
		t.Errorf("the dashboard with the stored sign-in: %d, alice is not signed in:\n%s", status, body)
	}
	h.gh.AssertNoErrors(t)
}

// startServeWith runs args until the test ends and waits until ready.
func startServeWith(t *testing.T, h *harness, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs)
		}
	})
	h.waitReady(t)
	return logs
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestSetupRefusedCode: a code older than an hour, or one exchanged
// already (by whoever learned it first), is refused by GitHub with the
// reason, which setup shows on the page and in the terminal; nothing is
// stored and setup goes on waiting.
func TestSetupRefusedCode(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(t *testing.T, gh *githubtest.Server, code string)
		reason string
	}{
		{"expired", func(t *testing.T, gh *githubtest.Server, _ string) { gh.ExpireManifestCodes() }, githubtest.MsgManifestCodeExpired},
		{"used", func(t *testing.T, gh *githubtest.Server, code string) {
			if _, err := githubapp.ConvertManifest(context.Background(), gh.URL(), nil, code); err != nil {
				t.Fatal(err)
			}
		}, githubtest.MsgManifestCodeUsed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := githubtest.New(t)
			gh.AddUser("alice")
			gh.SignInOnWeb("alice")
			dir := filepath.Join(t.TempDir(), "data")
			r := startSetup(t, gh, "--public-url", "https://stagehand.example.com", "--data-dir", dir)
			c := browser(t)
			_, back := r.click(t, c)
			u, err := url.Parse(back)
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, gh, u.Query().Get("code"))
			status, _, body := getPage(t, c, back)
			if status != http.StatusBadGateway || !strings.Contains(html.UnescapeString(body), tt.reason) {
				t.Errorf("the way back: %d %s", status, body)
			}
			if !strings.Contains(r.stderr.String(), tt.reason) || fileExists(filepath.Join(dir, config.StoredAppFile)) {
				t.Errorf("the terminal does not say why, or something was stored:\n%s", r.stderr)
			}
			select {
			case err := <-r.done:
				r.done <- err
				t.Fatalf("setup ended: %v", err)
			default:
			}
			gh.AssertNoErrors(t)
		})
	}
}

// TestSetupRefusesADataDirItCannotWrite: setup checks before anything is
// created on GitHub that it can store the credentials in --data-dir; found
// only after the App was created, they would be lost with it.
func TestSetupRefusesADataDirItCannotWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	stderr := &syncBuffer{}
	err := run(ctx, []string{"setup", "--public-url", "https://stagehand.example.com", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(file, "data")},
		func(string) string { return "" }, io.Discard, stderr)
	want := "--data-dir " + filepath.Join(file, "data") + " cannot hold the App's credentials (" + file + " is not a directory): choose a directory you may write"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(stderr.String(), "Open http://") {
		t.Errorf("setup: %v, want %q before the page opens; stderr:\n%s", err, want, stderr)
	}
}

// TestSetupPageAttacks: the page listens on loopback by default; a POST
// (another site's form in someone's browser) changes nothing; a request
// under another host name (DNS rebinding) is refused; the page's form may
// go to GitHub only.
func TestSetupPageAttacks(t *testing.T) {
	gh := githubtest.New(t)
	var f setupFlags
	fs := newSetupFlagSet(&f)
	if got := fs.Lookup("listen").DefValue; !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("--listen defaults to %q, want loopback", got)
	}
	r := startSetup(t, gh, "--public-url", "https://stagehand.example.com", "--data-dir", filepath.Join(t.TempDir(), "d"))
	c := browser(t)
	for _, path := range []string{"/", "/setup/done?code=x&state=y"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+path, strings.NewReader("manifest=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if status, h, _ := do(t, c, req); status != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" {
			t.Errorf("POST %s: %d, want 405", path, status)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.addr+"/", nil)
	req.Host = "rebound.test:" + strings.Split(r.addr, ":")[1]
	if status, _, body := do(t, c, req); status != http.StatusMisdirectedRequest || strings.Contains(body, "manifest") {
		t.Errorf("another host name: %d %s", status, body)
	}
	status, h, _ := getPage(t, c, "http://"+r.addr+"/")
	if status != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "form-action 'self' "+strings.TrimSuffix(gh.URL(), "/")) ||
		!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the page's policy: %q", h.Get("Content-Security-Policy"))
	}
	if len(gh.CreatedApps()) != 0 {
		t.Error("an App was created")
	}
}

// TestSetupPageAtLocalhost: the page opened as http://localhost:PORT/
// (a name the person may type) sends the browser to the address the
// terminal prints, where GitHub sends it back; so does a page listening
// on every interface, whose address is loopback at its port: the cookie
// the page gives is then where the way back goes, and the flow ends well
// instead of being refused as "another browser".
func TestSetupPageAtLocalhost(t *testing.T) {
	for _, every := range []bool{false, true} {
		t.Run(fmt.Sprintf("every interface %v", every), func(t *testing.T) {
			gh := githubtest.New(t)
			gh.AddUser("alice")
			gh.SignInOnWeb("alice")
			dir := filepath.Join(t.TempDir(), "data")
			addr := freeAddr(t)
			_, port, _ := strings.Cut(addr, ":")
			args := []string{"--public-url", "https://stagehand.example.com", "--data-dir", dir, "--listen", addr}
			if every {
				args[len(args)-1] = "0.0.0.0:" + port
			}
			r := startSetupArgs(t, append([]string{"--github-web-url", gh.URL(), "--github-api-url", gh.URL()}, args...)...)
			if want := "Open http://" + addr + "/ in your browser"; !strings.Contains(r.stderr.String(), want) {
				t.Errorf("setup does not say %q:\n%s", want, r.stderr)
			}
			c := browser(t)
			status, h, _ := getPage(t, c, "http://localhost:"+port+"/")
			if want := "http://" + addr + "/"; status != http.StatusSeeOther || h.Get("Location") != want {
				t.Errorf("http://localhost:%s/ answered %d to %q, want 303 to %s", port, status, h.Get("Location"), want)
			}
			_, back := r.clickAt(t, c, "http://localhost:"+port+"/")
			r.finish(t, c, back)
			if !fileExists(filepath.Join(dir, config.StoredAppFile)) {
				t.Error("nothing stored")
			}
		})
	}
}

// TestSetupKubernetesSecret: with --kubernetes-secret, stdout is the
// Secret alone, with exactly the chart's existingSecret keys holding the
// App's credentials; nothing is stored; stderr ends with the helm values.
func TestSetupKubernetesSecret(t *testing.T) {
	gh := githubtest.New(t)
	gh.AddUser("alice")
	gh.SignInOnWeb("alice")
	dir := filepath.Join(t.TempDir(), "data")
	r := startSetup(t, gh, "--public-url", "https://stagehand.example.com", "--data-dir", dir, "--kubernetes-secret", "stagehand-github", "--org", "acme")
	c := browser(t)
	_, back := r.click(t, c)
	r.finish(t, c, back)
	var secret struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal([]byte(r.stdout.String()), &secret); err != nil {
		t.Fatalf("stdout is not YAML: %v\n%s", err, r.stdout)
	}
	var keys []string
	decoded := map[string][]byte{}
	for k, v := range secret.Data {
		keys = append(keys, k)
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		decoded[k] = b
	}
	if diff := cmp.Diff([]string{"client-secret", "private-key.pem", "session-key", "webhook-secret"}, sortedCopy(keys)); diff != "" || secret.Kind != "Secret" || secret.Metadata.Name != "stagehand-github" {
		t.Errorf("Secret %s %s, keys (-want +got):\n%s", secret.Kind, secret.Metadata.Name, diff)
	}
	created := gh.CreatedApps()
	app, err := githubapp.New(githubapp.Options{AppID: created[0].ID, PrivateKeyPEM: decoded["private-key.pem"], APIURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := app.Settings(context.Background()); err != nil || s.Owner.Login != "acme" {
		t.Errorf("the Secret's key does not authenticate as the new App of acme: %v %+v", err, s)
	}
	if len(decoded["session-key"]) < 32 || len(decoded["webhook-secret"]) == 0 || len(decoded["client-secret"]) == 0 {
		t.Errorf("short values in the Secret")
	}
	if fileExists(filepath.Join(dir, config.StoredAppFile)) {
		t.Error("files were stored too")
	}
	for _, want := range []string{"--set github.existingSecret=stagehand-github", "--set dashboard.existingSecret=stagehand-github", "--set publicUrl=https://stagehand.example.com", "kubectl apply"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	gh.AssertNoErrors(t)
}

// TestSetupSecretGolden: the Secret setup prints for fixed credentials is
// charts/stagehand/chartcheck/testdata/setup-secret.yaml, which chartcheck's
// TestSetupSecret checks against the chart's existingSecret keys.
func TestSetupSecretGolden(t *testing.T) {
	got := kubernetesSecret("stagehand-github", &githubapp.Created{ClientSecret: []byte("client-secret-value"),
		PEM:           []byte("-----BEGIN RSA PRIVATE KEY-----\nchartcheck-not-a-real-key\n-----END RSA PRIVATE KEY-----\n"),
		WebhookSecret: []byte("webhook-secret-value")}, []byte("0123456789abcdef0123456789abcdef"))
	golden := filepath.Join("..", "..", "charts", "stagehand", "chartcheck", "testdata", "setup-secret.yaml")
	if os.Getenv("STAGEHAND_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("the printed Secret differs from %s (STAGEHAND_UPDATE_GOLDEN=1 rewrites it; then run .ci/chart-check) (-want +got):\n%s", golden, diff)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// TestREADMEListsWhatTheAppNeeds: README's manual install lists exactly
// the permissions and events of githubapp.NeededPermissions and
// NeededEvents (the manifest's and the permissions check's list), in bold
// as GitHub's settings page names them.
func TestREADMEListsWhatTheAppNeeds(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "### By hand")
	end := strings.Index(readme, "## Running the server")
	if start < 0 || end < start {
		t.Fatal("README has no \"### By hand\" under \"Install it as a GitHub App\"")
	}
	section := readme[start:end]
	perms := regexp.MustCompile(`\*\*([A-Z][a-z ]+: (?:read|write))\*\*`).FindAllStringSubmatch(section, -1)
	var got, want []string
	for _, m := range perms {
		got = append(got, m[1])
	}
	for _, p := range githubapp.NeededPermissions {
		want = append(want, p.Label+": "+p.Level)
	}
	if diff := cmp.Diff(sortedCopy(want), sortedCopy(got)); diff != "" {
		t.Errorf("README's permissions (-needed +listed):\n%s", diff)
	}
	events := section[strings.Index(section, "Subscribe to events:"):]
	events = events[:strings.Index(events, "(installation")]
	got, want = nil, nil
	for _, m := range regexp.MustCompile(`\*\*([a-z ]+)\*\*`).FindAllStringSubmatch(events, -1) {
		got = append(got, m[1])
	}
	for _, e := range githubapp.NeededEvents {
		want = append(want, strings.ReplaceAll(e, "_", " "))
	}
	if diff := cmp.Diff(sortedCopy(want), sortedCopy(got)); diff != "" {
		t.Errorf("README's events (-needed +listed):\n%s", diff)
	}
}

// TestSetupAgainstThePlayground: the setup command a running playground
// prints works against its stand-in as printed (only the data directory
// and the page's port moved into the test's own), although the
// playground's own App is on the stand-in already (its start-up check
// asked GET /app); then serve, as README runs it, finds the stored App and
// passes its permissions check.
func TestSetupAgainstThePlayground(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"playground", "--listen", freeAddr(t), "--data-dir", t.TempDir()}, func(string) string { return "" }, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("playground: %v", err)
		}
	})
	const prefix = "go run ./cmd/stagehand setup "
	waitFor(t, 60e9, "the playground to print the setup command and check its own App", func() bool {
		return strings.Contains(stdout.String(), prefix) && strings.Contains(stderr.String(), "has every permission and event Stagehand needs")
	})
	printed := stdout.String()[strings.Index(stdout.String(), prefix)+len(prefix):]
	printed = strings.ReplaceAll(printed[:strings.Index(printed, "\n\n")], "\\\n", " ")
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inREADME := string(readme)[strings.Index(string(readme), "```sh\n"+prefix)+len("```sh\n"+prefix):]
	inREADME = strings.ReplaceAll(inREADME[:strings.Index(inREADME, "\n#")], "\\\n", " ")
	standIn := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`)
	if got, want := strings.Join(strings.Fields(standIn.ReplaceAllString(printed, "http://127.0.0.1:PORT/")), " "), strings.Join(strings.Fields(inREADME), " "); got != want {
		t.Errorf("the playground prints\n  %s\nREADME shows\n  %s", got, want)
	}
	dir := filepath.Join(t.TempDir(), "setup-demo")
	r := startSetupArgs(t, append(shellWords(t, printed), "--data-dir", dir)...)
	c := browser(t)
	_, back := r.click(t, c)
	r.finish(t, c, back)
	stored, err := config.ReadStoredApp(dir)
	if err != nil || stored == nil || !strings.Contains(printed, "--github-api-url "+stored.APIURL) {
		t.Fatalf("stored %+v, %v; printed %s", stored, err, printed)
	}
	logs := &syncBuffer{}
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	serveAddr := freeAddr(t)
	go func() {
		served <- run(serveCtx, []string{"serve", "--data-dir", dir, "--public-url", "http://" + serveAddr, "--listen", serveAddr, "--step-sandbox", testSandboxMode()},
			func(string) string { return "" }, io.Discard, logs)
	}()
	defer func() {
		stopServe()
		if err := <-served; err != nil || t.Failed() {
			t.Errorf("serve (%v), its log:\n%s", err, logs)
		}
	}()
	// The permissions check is logged before serve listens: doctor's
	// webhook URL check needs both.
	waitFor(t, 60e9, "serve's permissions check and its listener", func() bool {
		return strings.Contains(logs.String(), `has every permission and event Stagehand needs" app=`+stored.Slug) &&
			strings.Contains(logs.String(), `msg="stagehand is serving"`)
	})
	if want := "app id from " + filepath.Join(dir, config.StoredAppFile); !strings.Contains(logs.String(), want) {
		t.Errorf("serve's log lacks %q:\n%s", want, logs)
	}
	// README: doctor passes every check there (no --secrets-dir: skipped).
	want := map[string]string{"secrets directory": "skip"}
	if testSandboxMode() == "none" {
		want["sandbox"] = "skip"
	}
	lines, out, err := runDoctor(t, "--data-dir", dir, "--public-url", "http://"+serveAddr, "--step-sandbox", testSandboxMode())
	if diff := cmp.Diff(doctorLines(want), lines); diff != "" || err != nil {
		t.Errorf("doctor (%v), lines (-want +got):\n%s\n%s", err, diff, out)
	}
}

// shellWords splits s as a POSIX shell would, for the commands a test
// copies from stdout: words, and "…" quoted words without escapes.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("unbalanced quote in %q", s)
			}
			words, s = append(words, s[1:end+1]), s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t\n")
		if end < 0 {
			end = len(s)
		}
		if strings.ContainsAny(s[:end], `"'`) {
			t.Fatalf("quotes inside a word: %q", s[:end])
		}
		words, s = append(words, s[:end]), s[end:]
	}
	return words
}
