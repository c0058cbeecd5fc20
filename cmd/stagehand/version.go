package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// Version is set at build time with -ldflags "-X main.Version=v1.2.3".
var Version = ""

func version(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: stagehand version\n\nPrints Stagehand's version, the commit it was built from, and Go's version.\n")
	}
	if ok, err := parseFlags(fs, args, stderr); !ok {
		return err
	}
	if err := noArguments(fs, stderr); err != nil {
		return err
	}
	v, rev, dirty := Version, "", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	fmt.Fprintf(stdout, "stagehand %s", v)
	if rev != "" {
		fmt.Fprintf(stdout, " commit %s%s", rev, dirty)
	}
	fmt.Fprintf(stdout, " %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
