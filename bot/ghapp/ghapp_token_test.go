package ghapp

import (
	"context"
	"strings"
	"testing"

	"github.com/stagehand-dev/stagehand/bot/ghapp/fakegithub"
)

func TestTokenIsCachedAndFresh(t *testing.T) {
	gh := fakegithub.New(t)
	pemBytes, key := fakegithub.GenerateAppKey(t)
	gh.SetAppKey(77, &key.PublicKey)
	gh.AddInstallation(5, "acme")
	app, err := New(Options{AppID: 77, PrivateKeyPEM: pemBytes, APIURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := app.Token(context.Background(), 5)
	if err != nil || first == "" {
		t.Fatalf("Token = %q, %v", first, err)
	}
	second, err := app.Token(context.Background(), 5)
	if err != nil || second != first {
		t.Errorf("second Token = %q, %v; want the cached %q", second, err, first)
	}
	n := 0
	for _, c := range gh.Calls() {
		if strings.HasSuffix(c.Path, "/access_tokens") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("access_tokens called %d times, want 1", n)
	}
	gh.AssertNoErrors(t)
}
