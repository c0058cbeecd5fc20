package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// runDoctor runs stagehand doctor with args and returns its lines as
// "status what" (what: the documented check the line starts with, or the
// whole line when none) and its whole output.
func runDoctor(t *testing.T, args ...string) (lines []string, out string, err error) {
	t.Helper()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	err = run(context.Background(), append([]string{"doctor"}, args...), func(string) string { return "" }, stdout, stderr)
	checks := doctorLines(nil)
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		status, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		for _, c := range checks {
			if what := strings.TrimPrefix(c, "ok "); strings.HasPrefix(rest, what+": ") {
				rest = what
				break
			}
		}
		lines = append(lines, status+" "+rest)
	}
	return lines, stdout.String() + stderr.String(), err
}

// doctorLines are the lines documented in doctor's help, each with the
// status given (default ok).
func doctorLines(status map[string]string) []string {
	what := []string{"configuration", "GitHub App"}
	for _, p := range githubapp.NeededPermissions {
		what = append(what, "permission "+p.String())
	}
	for _, e := range githubapp.NeededEvents {
		what = append(what, "event "+e)
	}
	what = append(what, "webhook URL", "database", "broker", "sandbox", "secrets directory")
	var out []string
	for _, w := range what {
		s := status[w]
		if s == "" {
			s = "ok"
		}
		out = append(out, s+" "+w)
	}
	return out
}

// TestDoctor: on a good setup (a server running with the flags doctor is
// given) every line passes; on a broken one (a permission and an event
// taken from the App, an unreachable database and broker, no bwrap on
// PATH, no server at the public URL, a secrets directory that is not
// there) each of those lines fails and says what to do, and doctor exits 1.
func TestDoctor(t *testing.T) {
	h := newHarness(t)
	secrets := t.TempDir()
	public := "http://" + h.addr
	args := append(h.args()[1:], "--public-url", public, "--secrets-dir", secrets, "--github-web-url", h.gh.URL())

	t.Run("good", func(t *testing.T) {
		h.startServe(t, "--public-url", public, "--secrets-dir", secrets)
		lines, out, err := runDoctor(t, args...)
		want := map[string]string{}
		if testSandboxMode() == "none" {
			want["sandbox"] = "skip"
		}
		if diff := cmp.Diff(doctorLines(want), lines); diff != "" || err != nil {
			t.Errorf("doctor (%v), lines (-want +got):\n%s\n%s", err, diff, out)
		}
		for _, s := range []string{"stagehand (App ID 4242) answers at " + h.gh.URL(), public + "/webhooks answers (401 to an unsigned delivery, as it should)", "SQLite in " + h.dataDir + " answers"} {
			if !strings.Contains(out, s) {
				t.Errorf("doctor's output lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("broken", func(t *testing.T) {
		if _, err := exec.LookPath("bwrap"); err != nil && testSandboxMode() == "none" {
			t.Skip("bubblewrap is not installed: the sandbox line cannot pass, nor be broken")
		}
		perms := githubapp.NeededPermissionMap()
		perms["checks"] = "read"
		h.gh.SetAppSettings(testAppID, perms, []string{"check_run", "issue_comment", "push", "repository"})
		t.Setenv("PATH", t.TempDir())
		missingSecrets := filepath.Join(t.TempDir(), "missing")
		broken := append(args, "--database-url", "postgres://stagehand@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", "--step-sandbox", "bwrap",
			"--nats-url", "nats://127.0.0.1:1", "--secrets-dir", missingSecrets)
		lines, out, err := runDoctor(t, broken...)
		want := doctorLines(map[string]string{"permission Checks: write": "FAIL", "event check_suite": "FAIL",
			"webhook URL": "FAIL", "database": "FAIL", "broker": "FAIL", "sandbox": "FAIL", "secrets directory": "FAIL"})
		var exit exitError
		if diff := cmp.Diff(append(want, "7 check(s) failed."), lines); diff != "" || !errors.As(err, &exit) || exit.code != 1 {
			t.Errorf("doctor (%v), lines (-want +got):\n%s\n%s", err, diff, out)
		}
		settings := h.gh.URL() + "settings/apps/stagehand/permissions"
		for _, s := range []string{
			"FAIL  permission Checks: write: the App has read; add it on " + settings + ", then accept the new permissions on each installation",
			"FAIL  event check_suite: the App is not subscribed; subscribe to it on " + settings,
			"FAIL  webhook URL: " + public + "/webhooks does not answer from here",
			"start stagehand serve there, or fix the address (--public-url), DNS, ingress or firewall",
			"check that PostgreSQL runs there and the URL's user, password and database",
			"FAIL  sandbox: bubblewrap (the bwrap program) is not installed",
			"install bubblewrap (apt-get install bubblewrap",
			"FAIL  broker: NATS of --nats-url does not answer (",
			"): start it, or fix the URL and its credentials",
			"FAIL  secrets directory: open " + missingSecrets + ": no such file or directory: make --secrets-dir a directory this user may read",
		} {
			if !strings.Contains(out, s) {
				t.Errorf("doctor's output lacks %q:\n%s", s, out)
			}
		}
	})
}

// TestDoctorWithoutAnApp: doctor run where no App is given nor stored
// (in another directory than setup's, say) says first that "stagehand
// setup" makes one or that --data-dir should name where it stored one; it
// makes no data directory (the database line says serve would make it
// there), and one serve could not make fails the database line.
func TestDoctorWithoutAnApp(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notYet := filepath.Join(tmp, "not", "yet")
	tests := []struct {
		name, dataDir string
		want          []string
		wantOut       []string
	}{
		{"a data dir not made yet", notYet,
			[]string{"FAIL configuration", "FAIL configuration", "FAIL configuration", "FAIL configuration", "skip GitHub App",
				"FAIL webhook URL", "ok database", "ok broker", "skip sandbox", "skip secrets directory", "5 check(s) failed."},
			[]string{`FAIL  configuration: no GitHub App is given, and ` + notYet + ` holds none that "stagehand setup" stored (github-app.json): run stagehand setup --public-url URL, or pass the --data-dir it stored the App in`,
				"ok    database: SQLite in " + filepath.Join(notYet, "stagehand.db") + " (made when serve first starts)"}},
		{"a data dir under a file", filepath.Join(file, "data"),
			[]string{"FAIL configuration", "skip GitHub App", "FAIL webhook URL", "FAIL database", "ok broker", "skip sandbox", "skip secrets directory", "3 check(s) failed."},
			[]string{"FAIL  database: SQLite in " + filepath.Join(file, "data") + " cannot be made: " + file + " is not a directory: make --data-dir a directory serve may write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, out, err := runDoctor(t, "--data-dir", tt.dataDir, "--public-url", "http://127.0.0.1:1", "--step-sandbox", "none")
			if diff := cmp.Diff(tt.want, lines); diff != "" || err == nil {
				t.Errorf("doctor (%v), lines (-want +got):\n%s\n%s", err, diff, out)
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(out, s) {
					t.Errorf("doctor's output lacks %q:\n%s", s, out)
				}
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
				t.Errorf("doctor left %d entries in %s, want the file only", len(entries), tmp)
			}
		})
	}
}
