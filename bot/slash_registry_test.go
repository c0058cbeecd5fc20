package bot

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRegistryIsTheSourceOfHelp adds a throw-away command to a copy of the
// registry: help shows it, the parser reads it, with its arguments and its
// right form in errors, and the README table has its row. Nothing else had
// to learn of it.
func TestRegistryIsTheSourceOfHelp(t *testing.T) {
	reg := append(slices.Clone(SlashCommands), Command{
		Name:     "wave",
		Usage:    "/stagehand wave [N]",
		Help:     []HelpRow{{"/stagehand wave [N]", "waves at execution N"}},
		Synopsis: "wave [N]", Effect: "wave at an execution",
		Production: always, ProductionHelp: "`wave`",
		Parse: slashNumberOnly,
	})
	for _, bare := range []bool{false, true} {
		help := reg.Help(bare)
		for _, want := range []string{"| `/stagehand wave [N]` | waves at execution N |", "and `wave` — also need"} {
			if !strings.Contains(help, want) {
				t.Errorf("Help(%v) does not show %q:\n%s", bare, want, help)
			}
		}
		if strings.Contains(help, "`/wave`") != bare {
			t.Errorf("Help(%v) shows the short form /wave: %v", bare, !bare)
		}
		if strings.Contains(SlashHelp(bare), "wave") {
			t.Errorf("SlashHelp(%v) shows the throw-away command of another registry", bare)
		}
	}
	cmds, errs := reg.Parse("/stagehand wave #7\n/wave 3\n/stagehand wave now", true)
	want := []SlashCommand{{Name: "wave", Line: 1, Raw: "/stagehand wave #7", Number: 7}, {Name: "wave", Line: 2, Raw: "/wave 3", Number: 3}}
	if diff := cmp.Diff(want, cmds); diff != "" {
		t.Errorf("Parse commands (-want +got):\n%s", diff)
	}
	wantErrs := []SlashError{{Line: 3, Raw: "/stagehand wave now", Message: `/stagehand wave: "now" is not an execution number; use /stagehand wave [N]`}}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Errorf("Parse errors (-want +got):\n%s", diff)
	}
	if _, errs := reg.Parse("/stagehand wav", false); len(errs) != 1 || !strings.Contains(errs[0].Message, "did you mean /stagehand wave?") {
		t.Errorf("a misspelt wave: %v", errs)
	}
	if !reg.Production(SlashCommand{Name: "wave"}) || SlashCommands.Production(SlashCommand{Name: "wave"}) {
		t.Error("Production does not read the registry's entry")
	}
	if !strings.Contains(reg.ReadmeTable(), "| `wave [N]` | wave at an execution |\n") {
		t.Errorf("ReadmeTable has no row for wave:\n%s", reg.ReadmeTable())
	}
}

// TestReadmeTable keeps the README's table of slash commands what the
// registry says: after changing a command, paste SlashCommands.ReadmeTable()
// (the test prints it) over the table in README.md.
func TestReadmeTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const header = "| command | effect |\n"
	_, rest, ok := strings.Cut(string(readme), header)
	if !ok {
		t.Fatalf("README.md has no table starting %q", header)
	}
	table := header
	for _, line := range strings.SplitAfter(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		table += line
	}
	if diff := cmp.Diff(SlashCommands.ReadmeTable(), table); diff != "" {
		t.Errorf("README.md's table of slash commands is not the registry's (-registry +README); it should read:\n%s\n%s", SlashCommands.ReadmeTable(), diff)
	}
}

func TestProductionCommands(t *testing.T) {
	for _, tc := range []struct {
		c    SlashCommand
		want bool
	}{
		{SlashCommand{Name: "help"}, false},
		{SlashCommand{Name: "run", Pipeline: ProdOnly}, false},
		{SlashCommand{Name: "promote"}, false},
		{SlashCommand{Name: "approve"}, true},
		{SlashCommand{Name: "reject"}, true},
		{SlashCommand{Name: "schedule", Now: true}, true},
		{SlashCommand{Name: "cancel"}, true},
		{SlashCommand{Name: "status"}, false},
		{SlashCommand{Name: "env", EnvAction: "list", Environment: Production}, false},
		{SlashCommand{Name: "env", EnvAction: "set", Environment: Stage}, false},
		{SlashCommand{Name: "env", EnvAction: "set", Environment: Production}, true},
		{SlashCommand{Name: "env", EnvAction: "unset", Environment: Production}, true},
		{SlashCommand{Name: "nope"}, false},
	} {
		if got := SlashCommands.Production(tc.c); got != tc.want {
			t.Errorf("Production(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
}
