package bot

import (
	"fmt"
	"strings"
)

// Severity says whether a Diagnostic stops a configuration from being used.
type Severity int

const (
	// SeverityError: the file is invalid; nothing it declares is used.
	SeverityError Severity = iota
	// SeverityWarning: the file is valid but something in it is unwise.
	SeverityWarning
)

// String is "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one error or warning in a configuration file, at the line
// and column (1-based) of the key or value it is about.
type Diagnostic struct {
	Path         string // the file, as the parser was told its name
	Line, Column int
	Severity     Severity
	Message      string
}

// String formats the diagnostic as "path:line:col: message", with
// "warning: " before the message of a warning.
func (d Diagnostic) String() string {
	if d.Severity == SeverityWarning {
		return fmt.Sprintf("%s:%d:%d: warning: %s", d.Path, d.Line, d.Column, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.Path, d.Line, d.Column, d.Message)
}

// Diagnostics is a list of errors and warnings, sorted by position.
type Diagnostics []Diagnostic

// Errors returns the entries that are errors.
func (ds Diagnostics) Errors() Diagnostics {
	return ds.of(SeverityError)
}

// Warnings returns the entries that are warnings.
func (ds Diagnostics) Warnings() Diagnostics {
	return ds.of(SeverityWarning)
}

func (ds Diagnostics) of(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Err returns nil when there are no errors (warnings do not count), and
// otherwise a *ConfigError carrying every diagnostic, warnings included.
func (ds Diagnostics) Err() error {
	if len(ds.Errors()) == 0 {
		return nil
	}
	return &ConfigError{Diagnostics: ds}
}

// ConfigError is a configuration file with errors. It carries all of the
// file's diagnostics, so whoever shows it can annotate each one where it is.
type ConfigError struct {
	Diagnostics Diagnostics
}

// Error lists the errors, one "path:line:col: message" line each.
func (e *ConfigError) Error() string {
	errs := e.Diagnostics.Errors()
	lines := make([]string, len(errs))
	for i, d := range errs {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// ConfigParser parses the bytes of a .github/stagehand.yml. It returns a
// config only when the file has no errors; the diagnostics come either way
// (a valid file may have warnings).
type ConfigParser func(data []byte) (*Config, Diagnostics)

// Config parses data for a caller that needs only a valid config: a file
// with errors is a *ConfigError, its warnings are dropped.
func (p ConfigParser) Config(data []byte) (*Config, error) {
	cfg, ds := p(data)
	if err := ds.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}
