package bot_test

import (
	"os/exec"
	"strings"
	"testing"
)

// mayImport lists, per package, the project packages it may import
// (ARCHITECTURE.md). Packages not listed may import nothing of the project.
var mayImport = map[string][]string{
	"bot":                      {},
	"bot/githubapp":            {"bot"},
	"bot/runner":               {},
	"bot/githubapp/githubtest": {"bot"},
	// The schema checks of the stand-in, for tests only (a blank import).
	"bot/githubapp/githubtest/schemacheck": {"bot/githubapp/githubtest"},
	"config":                               {"bot"},
	"state":                                {"bot"},
	"state/storetest":                      {"bot"},
	"handlers":                             {}, // documentation and the tests that drive the rooms together
	"handlers/webhook":                     {"bot", "bot/githubapp", "handlers/reporter"},
	"handlers/worker":                      {"bot", "bot/runner", "bot/githubapp"},
	"handlers/reporter":                    {"bot", "bot/githubapp"},
	"handlers/web":                         {"bot", "bot/githubapp"},
	"router":                               {"bot", "handlers/worker", "state"},
	"cmd/stagehand":                        {"*"},
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestBotImportsStandardLibraryOnly keeps the domain free of
// infrastructure: no go-github, no watermill, no SQL drivers.
func TestBotImportsStandardLibraryOnly(t *testing.T) {
	for _, dep := range goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./bot") {
		if dep != "" && !strings.HasSuffix(dep, "/stagehand/bot") {
			t.Errorf("bot imports %s; the domain may use the standard library only", dep)
		}
	}
}

// TestShippedBinaryLinksNoTestCode keeps test machinery out of the binary
// we ship: the playground serves the GitHub stand-in, but neither the
// testing package nor the schema validator of its tests may come with it.
func TestShippedBinaryLinksNoTestCode(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./cmd/stagehand") {
		if dep == "testing" || strings.HasPrefix(dep, "testing/") ||
			strings.HasPrefix(dep, "github.com/santhosh-tekuri/jsonschema") {
			t.Errorf("the shipped binary (./cmd/stagehand) links %s; keep it to test code "+
				"(go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/stagehand tells who imports it)", dep)
		}
	}
}

// TestImportArrows enforces who may import whom inside the project.
func TestImportArrows(t *testing.T) {
	mod := goList(t, "-m")[0] + "/"
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		allowed, known := mayImport[pkg]
		if !known {
			t.Errorf("package %s is not in the layout table of layout_test.go and ARCHITECTURE.md", pkg)
			continue
		}
		if len(allowed) == 1 && allowed[0] == "*" {
			continue
		}
		for _, imp := range fields[1:] {
			rel, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if !contains(allowed, rel) {
				t.Errorf("%s imports %s; it may import only %v", pkg, rel, allowed)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
