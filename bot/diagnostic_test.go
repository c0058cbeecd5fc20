package bot_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

const diagPath = ".github/stagehand.yml"

func errAt(line, col int, msg string) bot.Diagnostic {
	return bot.Diagnostic{Path: diagPath, Line: line, Column: col, Message: msg}
}

func warnAt(line, col int, msg string) bot.Diagnostic {
	return bot.Diagnostic{Path: diagPath, Line: line, Column: col, Message: msg, Severity: bot.SeverityWarning}
}

func TestDiagnosticString(t *testing.T) {
	tests := []struct {
		d    bot.Diagnostic
		want string
	}{
		{errAt(3, 5, "build.run: required"), ".github/stagehand.yml:3:5: build.run: required"},
		{warnAt(7, 3, "pipelines.full-stack: not recommended"), ".github/stagehand.yml:7:3: warning: pipelines.full-stack: not recommended"},
		{bot.Diagnostic{Path: "x.yml", Line: 1, Column: 1, Message: "empty"}, "x.yml:1:1: empty"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestDiagnosticsErrorsWarningsErr(t *testing.T) {
	ds := bot.Diagnostics{errAt(1, 1, "a"), warnAt(2, 1, "b"), errAt(3, 1, "c")}
	if diff := cmp.Diff(bot.Diagnostics{errAt(1, 1, "a"), errAt(3, 1, "c")}, ds.Errors()); diff != "" {
		t.Errorf("Errors() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(bot.Diagnostics{warnAt(2, 1, "b")}, ds.Warnings()); diff != "" {
		t.Errorf("Warnings() (-want +got):\n%s", diff)
	}
	want := ".github/stagehand.yml:1:1: a\n.github/stagehand.yml:3:1: c"
	if err := ds.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
	if err := (bot.Diagnostics{warnAt(2, 1, "b")}).Err(); err != nil {
		t.Errorf("Err() with only warnings = %v, want nil", err)
	}
	if err := bot.Diagnostics(nil).Err(); err != nil {
		t.Errorf("Err() of nothing = %v, want nil", err)
	}
}

// TestConfigErrorCarriesEveryDiagnostic: the error of an invalid file keeps
// its warnings beside its errors, for whoever annotates them; ConfigParser's
// Config gives that error, or the config of a valid file.
func TestConfigErrorCarriesEveryDiagnostic(t *testing.T) {
	ds := bot.Diagnostics{errAt(1, 1, "a"), warnAt(2, 1, "b")}
	var ce *bot.ConfigError
	if err := ds.Err(); !errors.As(err, &ce) {
		t.Fatalf("Err() = %#v, want a *bot.ConfigError", err)
	}
	if diff := cmp.Diff(ds, ce.Diagnostics); diff != "" {
		t.Errorf("ConfigError.Diagnostics (-want +got):\n%s", diff)
	}

	valid := &bot.Config{Version: 1}
	parse := bot.ConfigParser(func(data []byte) (*bot.Config, bot.Diagnostics) {
		if string(data) == "bad" {
			return nil, ds
		}
		return valid, bot.Diagnostics{warnAt(2, 1, "b")}
	})
	if cfg, err := parse.Config([]byte("bad")); cfg != nil || !errors.As(err, &ce) {
		t.Errorf("Config(bad) = %v, %v; want a *bot.ConfigError", cfg, err)
	}
	if cfg, err := parse.Config([]byte("good")); cfg != valid || err != nil {
		t.Errorf("Config(good) = %v, %v; want the config, no error", cfg, err)
	}
}
