package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPlaygroundSignsInItsVisitor: the playground's dashboard signs its
// visitor in as the sample user through the stand-in's GitHub pages, with
// no setup; a GitHub user who may not read the sample repository, signed
// in the same way, sees nothing of it.
func TestPlaygroundSignsInItsVisitor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary (its push hook runs it); skipped with -short")
	}
	started, dir := startPlayground(t)
	base := strings.Replace(started, "127.0.0.1", "localhost", 1) // the address it prints

	// Push a change, as the page's button does: the program appears.
	token, err := os.ReadFile(filepath.Join(dir, "playground", "hook-token"))
	if err != nil {
		t.Fatal(err)
	}
	resp := playgroundPost{origin: base, fetchSite: "same-origin", token: strings.TrimSpace(string(token))}.send(t, base, "/playground/push", nil, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Push a change: %s", resp.Status)
	}

	you := newVisitor()
	var page string
	waitFor(t, 30*time.Second, "the sample program on the visitor's dashboard", func() bool {
		var status int
		status, _, page = fetchOrZero(you, base+"/programs/playground/shop")
		return status == http.StatusOK
	})
	if !strings.Contains(page, `<b id="viewer">you</b>`) {
		t.Errorf("the program's page does not say the visitor is signed in as you")
	}

	// The stranger signs in through the same pages (GitHub's login hint
	// picks them) and sees nothing of the sample repository.
	stranger := newVisitor()
	single := &http.Client{Jar: stranger.Jar, Timeout: 10 * time.Second, CheckRedirect: noRedirects.CheckRedirect}
	status, loc, _ := fetchOrZero(single, base+"/auth/login?next=%2F")
	authz, err := url.Parse(loc)
	if status != http.StatusFound || err != nil {
		t.Fatalf("GET /auth/login: %d to %q", status, loc)
	}
	q := authz.Query()
	q.Set("login", playgroundStranger)
	authz.RawQuery = q.Encode()
	status, _, list := fetchOrZero(stranger, authz.String())
	if status != http.StatusOK || !strings.Contains(list, `<b id="viewer">stranger</b>`) || strings.Contains(list, "playground/shop") {
		t.Errorf("the stranger's program list: %d, want them signed in and no playground/shop\n%s", status, list)
	}
	for _, path := range []string{"/programs/playground/shop", "/programs/playground/shop/executions/1", "/api/v1/programs/playground/shop"} {
		if status, _, _ := fetchOrZero(stranger, base+path); status != http.StatusNotFound {
			t.Errorf("the stranger: GET %s %d, want 404", path, status)
		}
	}
}

// newVisitor is a browser: a cookie jar, following redirects.
func newVisitor() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// fetchOrZero GETs url with c: the status (0 when nothing answers), the
// Location and the body.
func fetchOrZero(c *http.Client, url string) (int, string, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}
