// Command stagehand is the Stagehand GitHub App: `stagehand serve` runs the
// server, `stagehand worker` runs its steps in scale-out, `stagehand validate` checks a .github/stagehand.yml, `stagehand
// audit export` writes the audit trail, `stagehand
// version` prints the build.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var exit exitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "stagehand:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a code after the command has already
// told the user what happened.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

const usage = `Stagehand runs stage-only, prod-only and full-stack deployment pipelines
for GitHub repositories, as a GitHub App.

Usage:
  stagehand playground         the whole tour on this machine, no GitHub needed
  stagehand setup [flags]      create the GitHub App in one browser round trip and store its credentials
  stagehand serve [flags]      run the GitHub App server (webhooks, pipelines, dashboard)
  stagehand doctor [flags]     check a server's setup: the App's permissions, webhook URL, database, broker, sandbox
  stagehand worker [flags]     run the steps of a server started with --step-runner remote
  stagehand validate [FILE]    check a configuration file (default .github/stagehand.yml)
  stagehand audit export       write the audit trail (jsonl or csv) for compliance
  stagehand version            print the version
  stagehand help [COMMAND]     show help

Run "stagehand serve --help" for the server's flags and environment variables.
`

// run is the whole program; main only adds the process around it, so tests
// can call run directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "worker":
		return worker(ctx, rest, getenv, stdout, stderr)
	case "playground":
		return runPlayground(ctx, rest, getenv, stdout, stderr)
	case "playground-hook":
		return playgroundHook(rest, os.Stdin, stdout)
	case "validate":
		return validate(rest, stdout, stderr)
	case "setup":
		return setup(ctx, rest, getenv, stdout, stderr)
	case "doctor":
		return doctor(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return audit(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		return version(rest, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "stagehand: unknown command %q\n\n%s", cmd, usage)
	return exitError{2}
}

// parseFlags parses a subcommand's flags. It reports whether the command
// should go on; when not, the caller returns err (nil after --help). A wrong
// flag is printed with where to read the right ones, as pflag's
// ContinueOnError prints nothing itself.
func parseFlags(fs *pflag.FlagSet, args []string, stderr io.Writer) (ok bool, err error) {
	err = fs.Parse(args)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, pflag.ErrHelp):
		return false, nil
	}
	fmt.Fprintf(stderr, "stagehand %s: %v\nRun \"stagehand %s --help\" to see its flags.\n", fs.Name(), err, fs.Name())
	return false, exitError{2}
}

// parseServerFlags parses the flags of a command that takes flags only and
// reads their STAGEHAND_* variables (a flag given wins). ok is false when
// it printed help or a usage error (err then says how to exit).
func parseServerFlags(fs *pflag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) (ok bool, err error) {
	if ok, err := parseFlags(fs, args, stderr); !ok {
		return false, err
	}
	if err := noArguments(fs, stderr); err != nil {
		return false, err
	}
	if err := config.ApplyEnv(fs, getenv); err != nil {
		return false, err
	}
	return true, nil
}

// noArguments refuses arguments to a command that takes flags only.
func noArguments(fs *pflag.FlagSet, stderr io.Writer) error {
	if fs.NArg() == 0 {
		return nil
	}
	fmt.Fprintf(stderr, "stagehand %s: unexpected argument %q: this command takes flags only.\nRun \"stagehand %s --help\" to see its flags.\n", fs.Name(), fs.Arg(0), fs.Name())
	return exitError{2}
}
