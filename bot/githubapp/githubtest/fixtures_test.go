package githubtest_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
)

func TestPayloadsAreValidJSON(t *testing.T) {
	names := githubtest.PayloadNames()
	var onDisk []string
	err := filepath.WalkDir("testdata/webhooks", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			onDisk = append(onDisk, filepath.ToSlash(strings.TrimPrefix(path, filepath.FromSlash("testdata/webhooks/"))))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(onDisk, names); diff != "" {
		t.Errorf("PayloadNames differs from testdata/webhooks (-disk +embedded):\n%s", diff)
	}
	if len(names) != 39 {
		t.Errorf("got %d payloads, want the 39 copied", len(names))
	}
	for _, name := range names {
		data := githubtest.Payload(name)
		if !json.Valid(data) {
			t.Errorf("%s: not valid JSON", name)
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil || len(v) == 0 {
			t.Errorf("%s: not a JSON object: %v", name, err)
		}
	}
	// Payload returns a copy: editing it must not change the next one.
	p := githubtest.Payload("push/branch-created.json")
	p[0] = 'X'
	if githubtest.Payload("push/branch-created.json")[0] != '{' {
		t.Error("Payload shares its bytes between calls")
	}
}

func TestPayloadPanicsOnUnknownName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Payload(unknown) did not panic")
		}
	}()
	githubtest.Payload("push/nope.json")
}

// Every copied file needs a provenance line (licence requirement).
func TestSourcesListsEveryFile(t *testing.T) {
	sources, err := os.ReadFile("testdata/SOURCES.md")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, "testdata"+string(filepath.Separator)))
		if !strings.Contains(string(sources), "| "+rel+" |") {
			t.Errorf("testdata/SOURCES.md has no line for %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, lic := range []string{"octokit-webhooks", "go-playground-webhooks", "octokit-openapi"} {
		if _, err := os.Stat("testdata/LICENSES/" + lic + ".LICENSE"); err != nil {
			t.Errorf("licence text missing: %v", err)
		}
	}
}

func TestSign(t *testing.T) {
	tests := []struct{ secret, body, want string }{
		// GitHub's documented test vector (docs "Validating webhook deliveries").
		{"It's a Secret to Everybody", "Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
		// RFC 4231 test case 2.
		{"Jefe", "what do ya want for nothing?", "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, githubtest.Sign([]byte(tt.secret), []byte(tt.body))); diff != "" {
			t.Errorf("Sign(%q, %q) (-want +got):\n%s", tt.secret, tt.body, diff)
		}
	}
}

func TestOpenAPIIsTheSubset(t *testing.T) {
	var doc struct {
		OpenAPI string   `json:"openapi"`
		Ops     []string `json:"x-subset-operations"`
	}
	if err := json.Unmarshal(githubtest.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" || len(doc.Ops) != 27 {
		t.Errorf("openapi %q with %d operations, want 3.0.3 with 27", doc.OpenAPI, len(doc.Ops))
	}
}
