package githubapp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

const (
	appID   = 42
	cfgPath = ".github/stagehand.yml"
	sha     = "abc1234def5678abc1234def5678abc1234def56"
)

type testKey struct {
	pem []byte
	key *rsa.PrivateKey
}

// Key generation is slow: make two per test binary.
var keys = sync.OnceValue(func() [2]testKey {
	var out [2]testKey
	for i := range out {
		out[i].pem, out[i].key = githubtest.GenerateAppKey(nil)
	}
	return out
})

// setup starts a stand-in knowing app 42's key, with installation 1 on
// acme/app and installation 2 on other/lib, and an App pointed at it.
func setup(t *testing.T, opts ...githubtest.Option) (*githubapp.App, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New(t, opts...)
	gh.SetAppKey(appID, &keys()[0].key.PublicKey)
	gh.AddInstallation(1, "acme")
	gh.AddRepo(1, "acme", "app")
	gh.AddInstallation(2, "other")
	gh.AddRepo(2, "other", "lib")
	gh.SetFile("acme", "app", sha, cfgPath, []byte("version: 1\n"))
	gh.SetFile("other", "lib", "main", cfgPath, []byte("version: 1 # lib\n"))
	app, err := githubapp.New(githubapp.Options{AppID: appID, PrivateKeyPEM: keys()[0].pem, APIURL: gh.URL(), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return app, gh
}

// fastRetry keeps the default 5 attempts with short backoffs.
var fastRetry = githubapp.RetryPolicy{BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}

// tokenCalls lists the paths of the access-token requests the stand-in saw.
func tokenCalls(gh *githubtest.Server) []string {
	var paths []string
	for _, c := range gh.Calls() {
		if c.Operation == "POST /app/installations/{installation_id}/access_tokens" {
			paths = append(paths, c.Path)
		}
	}
	sort.Strings(paths)
	return paths
}

func TestTokenFetchedOnceAndReused(t *testing.T) {
	app, gh := setup(t)
	ctx := context.Background()
	for range 3 {
		if _, err := app.FetchFile(ctx, 1, "acme", "app", cfgPath, sha); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"/app/installations/1/access_tokens"}, tokenCalls(gh)); diff != "" {
		t.Errorf("token requests (-want +got):\n%s", diff)
	}
	gh.AssertNoErrors(t)
}

func TestTwoInstallationsGetTwoTokens(t *testing.T) {
	app, gh := setup(t)
	ctx := context.Background()
	// Concurrently, to let the race detector look at the shared parts.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = app.FetchFile(ctx, 1, "acme", "app", cfgPath, sha)
			} else {
				_, err = app.FetchFile(ctx, 2, "other", "lib", cfgPath, "")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	want := []string{"/app/installations/1/access_tokens", "/app/installations/2/access_tokens"}
	if diff := cmp.Diff(want, tokenCalls(gh)); diff != "" {
		t.Errorf("token requests (-want +got):\n%s", diff)
	}
	gh.AssertNoErrors(t)
}

// ghinstallation refreshes a token a minute before it expires: with tokens
// living 30 seconds every request needs a new one.
func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	app, gh := setup(t, githubtest.WithTokenTTL(30*time.Second))
	for range 3 {
		if _, err := app.FetchFile(context.Background(), 1, "acme", "app", cfgPath, sha); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(tokenCalls(gh)); got != 3 {
		t.Errorf("%d token requests, want 3", got)
	}
	gh.AssertNoErrors(t)
}

func TestFetchFile(t *testing.T) {
	tests := []struct {
		name               string
		installation       int64
		owner, repo, path  string
		ref                string
		want               string
		wantErr            string
		wantNotFound       bool
		setupFault, faultP string
	}{
		{name: "at sha", installation: 1, owner: "acme", repo: "app", path: cfgPath, ref: sha, want: "version: 1\n"},
		{name: "default branch", installation: 2, owner: "other", repo: "lib", path: cfgPath, want: "version: 1 # lib\n"},
		{name: "branch by name", installation: 2, owner: "other", repo: "lib", path: cfgPath, ref: "main", want: "version: 1 # lib\n"},
		{name: "missing at sha", installation: 1, owner: "acme", repo: "app", path: ".github/other.yml", ref: sha,
			wantErr: "acme/app has no .github/other.yml at abc1234", wantNotFound: true},
		{name: "missing at branch", installation: 1, owner: "acme", repo: "app", path: cfgPath, ref: "feature/x",
			wantErr: "acme/app has no .github/stagehand.yml at feature/x", wantNotFound: true},
		{name: "repo of another installation", installation: 2, owner: "acme", repo: "app", path: cfgPath, ref: sha,
			wantErr: "acme/app has no .github/stagehand.yml at abc1234", wantNotFound: true},
		{name: "directory", installation: 1, owner: "acme", repo: "app", path: ".github", ref: sha,
			wantErr: "read .github from acme/app at abc1234: it is a directory"},
		{name: "unknown installation", installation: 9, owner: "acme", repo: "app", path: cfgPath, ref: sha,
			wantErr: "could not refresh installation id 9's token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, gh := setup(t)
			got, err := app.FetchFile(context.Background(), tt.installation, tt.owner, tt.repo, tt.path, tt.ref)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, string(got)); diff != "" {
					t.Errorf("content (-want +got):\n%s", diff)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if errors.Is(err, bot.ErrNotFound) != tt.wantNotFound {
					t.Errorf("errors.Is(%v, bot.ErrNotFound) = %v, want %v", err, !tt.wantNotFound, tt.wantNotFound)
				}
			}
			gh.AssertNoErrors(t)
		})
	}
}

func TestNotFoundMessage(t *testing.T) {
	app, gh := setup(t)
	_, err := app.FetchFile(context.Background(), 1, "acme", "app", ".github/x.yml", sha)
	if diff := cmp.Diff("acme/app has no .github/x.yml at abc1234", fmt.Sprint(err)); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	gh.AssertNoErrors(t)
}

func TestNewRejectsBadOptions(t *testing.T) {
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8EC(t)})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &keys()[0].key.PublicKey)})
	pkcs8, err := x509.MarshalPKCS8PrivateKey(keys()[0].key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    githubapp.Options
		wantErr string // prefix; empty means New succeeds
	}{
		{"PKCS#1 key", githubapp.Options{AppID: 1, PrivateKeyPEM: keys()[0].pem}, ""},
		{"PKCS#8 key, GHES URL", githubapp.Options{AppID: 1, PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), APIURL: "https://ghe.example.com/api/v3"}, ""},
		{"empty key", githubapp.Options{AppID: 1}, "github private key: not a PEM RSA key: "},
		{"not PEM", githubapp.Options{AppID: 1, PrivateKeyPEM: []byte("hello")}, "github private key: not a PEM RSA key: "},
		{"EC key", githubapp.Options{AppID: 1, PrivateKeyPEM: ecPEM}, "github private key: not a PEM RSA key: "},
		{"public key", githubapp.Options{AppID: 1, PrivateKeyPEM: pubPEM}, "github private key: not a PEM RSA key: "},
		{"no app id", githubapp.Options{PrivateKeyPEM: keys()[0].pem}, "github app id: "},
		{"relative API URL", githubapp.Options{AppID: 1, PrivateKeyPEM: keys()[0].pem, APIURL: "api.github.com"}, "github api url "},
		{"ftp API URL", githubapp.Options{AppID: 1, PrivateKeyPEM: keys()[0].pem, APIURL: "ftp://x/"}, "github api url "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := githubapp.New(tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Errorf("New error %v, want prefix %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "PRIVATE KEY"):
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

func TestWrongKeyIsRejected(t *testing.T) {
	gh := githubtest.New(t)
	gh.SetAppKey(appID, &keys()[1].key.PublicKey) // the server knows another key
	gh.AddRepo(1, "acme", "app")
	app, err := githubapp.New(githubapp.Options{AppID: appID, PrivateKeyPEM: keys()[0].pem, APIURL: strings.TrimSuffix(gh.URL(), "/")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.FetchFile(context.Background(), 1, "acme", "app", cfgPath, sha)
	if err == nil || errors.Is(err, bot.ErrNotFound) || !strings.Contains(err.Error(), "401") {
		t.Errorf("FetchFile with a wrong key: %v, want a 401 error that is not ErrNotFound", err)
	}
	_, _, err = app.AppClient().Apps.FindRepositoryInstallation(context.Background(), "acme", "app")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("AppClient with a wrong key: %v, want 401", err)
	}
	gh.AssertNoErrors(t)
}

func TestAppClient(t *testing.T) {
	app, gh := setup(t)
	inst, _, err := app.AppClient().Apps.FindRepositoryInstallation(context.Background(), "other", "lib")
	if err != nil {
		t.Fatal(err)
	}
	got := struct{ ID, AppID int64 }{inst.GetID(), inst.GetAppID()}
	if diff := cmp.Diff(struct{ ID, AppID int64 }{2, appID}, got); diff != "" {
		t.Errorf("installation (-want +got):\n%s", diff)
	}
	gh.AssertNoErrors(t)
}

// Faults that last longer than the retries surface as errors, and the
// client works again afterwards.
func TestFaultsSurfaceAsErrors(t *testing.T) {
	attempts := githubapp.DefaultRetryPolicy.MaxAttempts
	tests := []struct {
		name, prefix string
		status       int
		header       http.Header
		wantErr      string
	}{
		{"contents 500", "/repos/acme/app/contents/", 500, nil, "500"},
		{"contents 502", "/repos/acme/app/contents/", 502, nil, "502"},
		{"token endpoint 500", "/app/installations/1/access_tokens", 500, nil, "500 Internal Server Error"},
		{"rate limited", "/repos/acme/app/contents/", 403,
			http.Header{"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {fmt.Sprint(time.Now().Add(time.Second).Unix())}}, "rate limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, gh := setup(t)
			gh.FailNext(tt.prefix, attempts, tt.status, tt.header)
			_, err := app.FetchFile(context.Background(), 1, "acme", "app", cfgPath, sha)
			if err == nil || errors.Is(err, bot.ErrNotFound) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q and not ErrNotFound", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "ghs_") {
				t.Errorf("error holds a token: %v", err)
			}
			n := 0
			for _, c := range gh.Calls() {
				if strings.HasPrefix(c.Path, tt.prefix) {
					n++
				}
			}
			if n != attempts {
				t.Errorf("%d requests to %s, want %d attempts", n, tt.prefix, attempts)
			}
			// The transport answers rate limits itself, so go-github does
			// not block the next request locally.
			if _, err := app.FetchFile(context.Background(), 1, "acme", "app", cfgPath, sha); err != nil {
				t.Errorf("after the faults: %v", err)
			}
			gh.AssertNoErrors(t)
		})
	}
}

func TestContextCancelsHeldRequest(t *testing.T) {
	app, gh := setup(t)
	release := gh.Hold("/repos/acme/app/contents/")
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := app.FetchFile(ctx, 1, "acme", "app", cfgPath, sha)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	gh.AssertNoErrors(t)
}

func TestInstallationRejectsBadID(t *testing.T) {
	app, gh := setup(t)
	if _, err := app.FetchFile(context.Background(), 0, "acme", "app", cfgPath, sha); err == nil || !strings.Contains(err.Error(), "installation id") {
		t.Errorf("FetchFile with installation 0: %v, want an error about the installation id", err)
	}
	if _, err := app.Token(context.Background(), 0, githubapp.Repository{Name: "app"}); err == nil || !strings.Contains(err.Error(), "installation id") {
		t.Errorf("Token with installation 0: %v, want an error about the installation id", err)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Errorf("sent %d requests, want none", n)
	}
}

func mustPKCS8EC(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustPKIX(t *testing.T, pub *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
