package bot

import (
	"context"
	"fmt"
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
		Who: production, ProductionHelp: "`wave`",
		Parse: slashNumberOnly,
		Run: func(_ context.Context, call Call, c SlashCommand) (string, error) {
			return fmt.Sprintf("@%s waves at #%d", call.Request.Actor, c.Number), nil
		},
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
	if reg.Access(cmds[0]) != AccessProduction || SlashCommands.Access(cmds[0]) != AccessWrite {
		t.Error("Access does not read the registry's entry")
	}
	ctx := context.Background()
	if got, err := reg.Run(ctx, Call{Request: Internal("alice")}, cmds[0]); got != "@alice waves at #7" || err != nil {
		t.Errorf("Run(wave #7) = %q, %v", got, err)
	}
	if _, err := SlashCommands.Run(ctx, Call{Request: Internal("alice")}, cmds[0]); err == nil {
		t.Error("SlashCommands ran the throw-away command of another registry")
	}
	// The help command lists the registry it was read with.
	helpCmds, _ := reg.Parse("/help", true)
	if got, err := reg.Run(ctx, Call{BareAliases: true}, helpCmds[0]); got != reg.Help(true) || err != nil {
		t.Errorf("Run(/help) = %q, %v; want reg.Help(true)", got, err)
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

func TestCommandAccess(t *testing.T) {
	for _, tc := range []struct {
		c    SlashCommand
		want Access
	}{
		{SlashCommand{Name: "help"}, AccessAnyone},
		{SlashCommand{Name: "run", Pipeline: ProdOnly}, AccessWrite},
		{SlashCommand{Name: "promote"}, AccessWrite},
		{SlashCommand{Name: "approve"}, AccessProduction},
		{SlashCommand{Name: "reject"}, AccessProduction},
		{SlashCommand{Name: "schedule", Now: true}, AccessProduction},
		{SlashCommand{Name: "cancel"}, AccessProduction},
		{SlashCommand{Name: "status"}, AccessWrite},
		{SlashCommand{Name: "env", EnvAction: "list", Environment: Production}, AccessWrite},
		{SlashCommand{Name: "env", EnvAction: "set", Environment: Stage}, AccessWrite},
		{SlashCommand{Name: "env", EnvAction: "set", Environment: Production}, AccessProduction},
		{SlashCommand{Name: "env", EnvAction: "unset", Environment: Production}, AccessProduction},
		{SlashCommand{Name: "nope"}, AccessWrite},
	} {
		if got := SlashCommands.Access(tc.c); got != tc.want {
			t.Errorf("Access(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
	for _, c := range SlashCommands {
		if c.Run == nil {
			t.Errorf("%s has no action", c.Name)
		}
	}
}
