package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/config"
	"github.com/stagehand-dev/stagehand/state"
)

const auditUsage = `Usage: stagehand audit export --since TIME [--until TIME] [--format jsonl|csv] [flags]

Writes the audit trail to stdout, oldest first: every decision and refusal
that changed, or tried to change, something (pushes' triggers, starts,
promotions, approvals with their quorum, rejections, break-glass overrides,
cancels, variable changes by name, policy-file changes on the default branch,
dashboard sign-ins), with who, when, the program and execution, the outcome
(done or refused), the refusal's code and words, and the GitHub delivery it
came from. Secret and variable values are never in it.

It reads the state serve keeps: --data-dir (SQLite in it) or --database-url
(PostgreSQL), and their environment variables, as serve does. It changes no record;
a data directory without a database gives no records (jsonl: nothing; csv:
only the header) and exit status 0.

TIME is RFC 3339 (2026-12-01T09:00:00Z) or a date (2026-12-01, midnight UTC).
Records at or after --since and before --until are written.

Formats:
  jsonl  one JSON object a line
  csv    RFC 4180, with a header line

Columns (csv) and fields (jsonl): ` + state.AuditExportColumns + `

Flags:
`

// audit runs `stagehand audit SUBCOMMAND`.
func audit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stderr, "Usage: stagehand audit export --since TIME [--until TIME] [--format jsonl|csv]\n\nRun \"stagehand audit export --help\" for what it writes.\n")
		if len(args) == 0 {
			return exitError{2}
		}
		return nil
	}
	if args[0] != "export" {
		fmt.Fprintf(stderr, "stagehand audit: unknown subcommand %q: the one there is, is export\n", args[0])
		return exitError{2}
	}
	return auditExport(ctx, args[1:], getenv, stdout, stderr)
}

func auditExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("audit export", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.RegisterStoreFlags(fs)
	since := fs.String("since", "", "write records at or after this time (required)")
	until := fs.String("until", "", "write records before this time (default: all until now)")
	format := fs.String("format", "jsonl", "jsonl or csv")
	fs.Usage = func() {
		fmt.Fprint(stderr, auditUsage)
		fs.PrintDefaults()
	}
	if ok, err := parseFlags(fs, args, stderr); !ok {
		return err
	}
	if err := noArguments(fs, stderr); err != nil {
		return err
	}
	for _, name := range []string{"data-dir", "database-url"} {
		if v := getenv(config.EnvName(name)); v != "" && !fs.Changed(name) {
			if err := fs.Set(name, v); err != nil {
				return err
			}
		}
	}
	var problems []string
	var f bot.AuditFilter
	var err error
	if *since == "" {
		problems = append(problems, "--since is required: the first time to export, e.g. --since 2026-12-01")
	} else if f.Since, err = parseAuditTime(*since); err != nil {
		problems = append(problems, "--since: "+err.Error())
	}
	if *until != "" {
		if f.Until, err = parseAuditTime(*until); err != nil {
			problems = append(problems, "--until: "+err.Error())
		} else if !f.Since.IsZero() && !f.Until.After(f.Since) {
			problems = append(problems, "--until must come after --since")
		}
	}
	if *format != "jsonl" && *format != "csv" {
		problems = append(problems, fmt.Sprintf("--format %q: use jsonl or csv", *format))
	}
	problems = append(problems, cfg.ResolveStore()...)
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "stagehand audit export:\n  - %s\nRun \"stagehand audit export --help\" to see its flags.\n", strings.Join(problems, "\n  - "))
		return exitError{2}
	}

	if cfg.DatabaseURL == "" {
		// Export only reads: a data directory without a database (empty,
		// or not there yet) has no records, and is not made.
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "stagehand.db")); errors.Is(err, os.ErrNotExist) {
			return state.ExportAudit(ctx, nil, f, *format, stdout)
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return state.ExportAudit(ctx, store, f, *format, stdout)
}

// parseAuditTime reads RFC 3339 or a date (midnight UTC).
func parseAuditTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-12-01T09:00:00Z) nor a date (2026-12-01)", s)
}
