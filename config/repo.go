// Package config reads Stagehand's configuration files.
package config

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

// RepoConfigPath is where a repository keeps its Stagehand configuration.
const RepoConfigPath = bot.ConfigPath

// ParseRepoConfig parses the bytes of a .github/stagehand.yml (SPEC §3).
// filename is used only in diagnostics. It returns a config only when there
// are no errors; warnings may accompany it.
//
// The parser walks goccy/go-yaml's AST by hand so that every diagnostic
// points at the line and column of the key or value it is about, then runs
// (*bot.Config).Check and places each of its problems at the key it names.
// Choices the specification leaves open:
//   - environments.<env>.deploy_timeout is an extra, optional key: a Go
//     duration limiting the deploy command (default bot.DefaultDeployTimeout).
//   - A key written with no value (or null) counts as an empty mapping or list
//     where a mapping or list is expected, and is an error where a string,
//     boolean, number or duration is expected.
//   - Strings must be strings: branch: 2024 or run: 5 is an error (quote it).
//     Only variable values may be numbers or booleans, and they keep the text
//     written in the file (0x10 stays "0x10", 1.50 stays "1.50").
//   - Anchors and aliases are followed; merge keys (<<) and tags (!!str) are
//     refused, and so is a file holding more than one YAML document.
//   - Check runs even when the walk found errors, so one pass reports as
//     much as possible. A section that is present but broken still counts as
//     present, and a Check problem about a key whose value is not the
//     mapping it should be (pipelines: 5) is dropped as redundant.
func ParseRepoConfig(filename string, data []byte) (*bot.Config, bot.Diagnostics) {
	w := newWalker(filename)
	cfg := w.walkFile(data)
	if cfg != nil {
		for _, p := range cfg.Check() {
			if w.errPaths[p.Path] {
				continue // the walk already said this value is not a mapping
			}
			line, col := w.lookup(p.Path)
			d := bot.Diagnostic{Path: filename, Line: line, Column: col, Message: p.Path + ": " + p.Message}
			if p.Warning {
				d.Severity = bot.SeverityWarning
			}
			w.diags = append(w.diags, d)
		}
	}
	ds := w.diags
	slices.SortStableFunc(ds, func(a, b bot.Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	if len(ds.Errors()) > 0 {
		return nil, ds
	}
	return cfg, ds
}

// ValidateFile reads and parses the configuration file at path. The error
// is only for a file that cannot be read; problems in its content are in the
// returned Diagnostics.
func ValidateFile(path string) (bot.Diagnostics, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read stagehand config %s: %w", path, err)
	}
	_, ds := ParseRepoConfig(path, data)
	return ds, nil
}

// lookup returns the position of the key at the dotted path, falling back to
// its nearest parent that exists in the file, and to 1:1 for the whole file.
func (w *walker) lookup(path string) (line, col int) {
	for path != "" {
		if p, ok := w.pos[path]; ok {
			return p.line, p.col
		}
		i := strings.LastIndex(path, ".")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 1, 1
}
