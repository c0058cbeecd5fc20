package main

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/stagehand-dev/stagehand/config"
)

func validate(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("validate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: stagehand validate [FILE]\n\nChecks a Stagehand configuration file (default %s) and prints every\nproblem as file:line:col: message. Exits 1 when the file has errors;\nwarnings alone do not fail it.\n", config.RepoConfigPath)
	}
	if ok, err := parseFlags(fs, args, stderr); !ok {
		return err
	}
	file := config.RepoConfigPath
	switch fs.NArg() {
	case 0:
	case 1:
		file = fs.Arg(0)
	default:
		fs.Usage()
		return exitError{2}
	}
	diags, err := config.ValidateFile(file)
	if err != nil {
		return err
	}
	for _, d := range diags {
		fmt.Fprintln(stdout, d.String())
	}
	if n := len(diags.Errors()); n > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s)\n", file, n, len(diags.Warnings()))
		return exitError{1}
	}
	fmt.Fprintf(stdout, "%s: valid (%d warning(s))\n", file, len(diags.Warnings()))
	return nil
}
