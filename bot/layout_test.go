package bot_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mayImport reads, per package, the project packages it may import from
// the table "Packages and who may import whom" of ARCHITECTURE.md: a row
// is | `package` | what it holds | may import |, the last cell "nothing",
// "everything", "—" (not a Go package) or a list of `packages`.
func mayImport(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "## Packages and who may import whom")
	if !ok {
		t.Fatal("ARCHITECTURE.md has no section \"Packages and who may import whom\"")
	}
	out := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "## ") {
			break
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 || !strings.HasPrefix(cells[0], "`") {
			continue
		}
		pkg := strings.Trim(cells[0], "`")
		allowed := cells[2]
		switch {
		case allowed == "—":
			continue // not a Go package
		case allowed == "everything":
			out[pkg] = []string{"*"}
		case strings.HasPrefix(allowed, "nothing"):
			out[pkg] = []string{}
		default:
			for _, name := range strings.Split(allowed, ", ") {
				out[pkg] = append(out[pkg], strings.Trim(name, "`"))
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no package rows in ARCHITECTURE.md's layout table")
	}
	return out
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
	table := mayImport(t)
	seen := map[string]bool{}
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		seen[pkg] = true
		allowed, known := table[pkg]
		if !known {
			t.Errorf("package %s is not in ARCHITECTURE.md's layout table; add a row saying what it holds and what it may import", pkg)
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
				t.Errorf("%s imports %s; ARCHITECTURE.md lets it import only %v", pkg, rel, allowed)
			}
		}
	}
	for pkg := range table {
		if !seen[pkg] {
			t.Errorf("ARCHITECTURE.md's layout table lists %s, which go list ./... does not know", pkg)
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
