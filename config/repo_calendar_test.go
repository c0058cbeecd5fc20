package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stagehand-dev/stagehand/bot"
)

// locations compares time zones by name (time.Location has no Equal).
var locations = cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })

// calendarYAML is a valid file with production's calendar written from
// line 7 on.
func calendarYAML(production string) string {
	return `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production:
    deploy: ./deploy.sh
` + production + `pipelines:
  stage-only: {branch: main}
  prod-only: {}
`
}

func TestParseWindowsAndFreezes(t *testing.T) {
	src := `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production:
    deploy: ./deploy.sh
    windows:                       # production deploys start only inside one of these
      - {days: [mon, tue, wed, thu], from: "09:00", to: "16:00", timezone: Europe/Berlin}
      - days: [sat]
        from: "22:00"
        to: "02:00"
        timezone: UTC
    freezes:                       # and never inside one of these
      - {from: 2026-12-20T00:00:00+01:00, to: 2027-01-04T00:00:00+01:00, reason: "year-end freeze"}
pipelines:
  stage-only: {branch: main}
  prod-only: {}
`
	cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(src))
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	plus1 := time.FixedZone("", 3600)
	want := &bot.Environment{
		Deploy: "./deploy.sh", DeployTimeout: bot.DefaultDeployTimeout,
		Windows: []bot.Window{
			{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}, From: 9 * time.Hour, To: 16 * time.Hour, TimeZone: "Europe/Berlin", Location: berlin},
			{Days: []time.Weekday{time.Saturday}, From: 22 * time.Hour, To: 2 * time.Hour, TimeZone: "UTC", Location: time.UTC},
		},
		Freezes: []bot.Freeze{{From: time.Date(2026, 12, 20, 0, 0, 0, 0, plus1), To: time.Date(2027, 1, 4, 0, 0, 0, 0, plus1), Reason: "year-end freeze"}},
	}
	if diff := cmp.Diff(want, cfg.Production, locations); diff != "" {
		t.Errorf("production (-want +got):\n%s", diff)
	}
	// A stage that declares its own windows gets them; whole days too.
	cfg, diags = ParseRepoConfig(RepoConfigPath, []byte(`version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage:
    deploy: ./deploy.sh
    windows: [{days: [sun], from: "00:00", to: "24:00", timezone: America/New_York}]
pipelines:
  stage-only: {branch: main}
`))
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	if got := cfg.Stage.Windows; len(got) != 1 || got[0].To != 24*time.Hour || got[0].String() != "sun 00:00–24:00 America/New_York" {
		t.Errorf("stage windows = %+v", got)
	}
}

// TestParseCalendarErrors: every field of a window and a freeze is
// checked, at its line and column.
func TestParseCalendarErrors(t *testing.T) {
	for _, tc := range []struct {
		name, production string
		diags            bot.Diagnostics
	}{
		{
			name:       "bad day name",
			production: "    windows: [{days: [mon, friday], from: \"09:00\", to: \"16:00\", timezone: UTC}]\n",
			diags:      bot.Diagnostics{errAt(7, 28, `environments.production.windows[0].days[1]: unknown day "friday"; use mon, tue, wed, thu, fri, sat or sun`)},
		},
		{
			name:       "no days",
			production: "    windows: [{days: [], from: \"09:00\", to: \"16:00\", timezone: UTC}]\n",
			diags:      bot.Diagnostics{errAt(7, 22, "environments.production.windows[0].days: list at least one day, such as [mon, tue, wed, thu]")},
		},
		{
			name:       "a day twice",
			production: "    windows: [{days: [mon, Mon], from: \"09:00\", to: \"16:00\", timezone: UTC}]\n",
			diags:      bot.Diagnostics{errAt(7, 22, "environments.production.windows[0].days: Mon is listed twice; list each day once")},
		},
		{
			name:       "bad times",
			production: "    windows: [{days: [mon], from: \"9am\", to: \"25:00\", timezone: UTC}]\n",
			diags: bot.Diagnostics{
				errAt(7, 35, `environments.production.windows[0].from: invalid time of day "9am": write "HH:MM" on the 24-hour clock, from "00:00" to "24:00", such as "09:00"`),
				errAt(7, 46, `environments.production.windows[0].to: invalid time of day "25:00": write "HH:MM" on the 24-hour clock, from "00:00" to "24:00", such as "09:00"`),
			},
		},
		{
			name:       "a time as a number",
			production: "    windows: [{days: [mon], from: 900, to: \"16:00\", timezone: UTC}]\n",
			diags:      bot.Diagnostics{errAt(7, 35, `environments.production.windows[0].from: expected a time of day written "HH:MM", such as "09:00", got the number 900`)},
		},
		{
			name:       "from equals to",
			production: "    windows: [{days: [mon], from: \"09:00\", to: \"09:00\", timezone: UTC}]\n",
			diags:      bot.Diagnostics{errAt(7, 48, `environments.production.windows[0].to: the window opens and closes at 09:00: it would never be open; for a whole day write from: "00:00", to: "24:00"`)},
		},
		{
			name:       "opening at 24:00",
			production: "    windows: [{days: [mon], from: \"24:00\", to: \"02:00\", timezone: UTC}]\n",
			diags:      bot.Diagnostics{errAt(7, 35, "environments.production.windows[0].from: a window cannot open at 24:00; write 00:00")},
		},
		{
			name:       "unknown time zone",
			production: "    windows: [{days: [mon], from: \"09:00\", to: \"16:00\", timezone: Europe/Berlim}]\n",
			diags:      bot.Diagnostics{errAt(7, 67, `environments.production.windows[0].timezone: unknown time zone "Europe/Berlim": name an IANA zone such as Europe/Berlin, America/New_York or UTC`)},
		},
		{
			name:       "Local is not a time zone here",
			production: "    windows: [{days: [mon], from: \"09:00\", to: \"16:00\", timezone: Local}]\n",
			diags:      bot.Diagnostics{errAt(7, 67, `environments.production.windows[0].timezone: unknown time zone "Local": name an IANA zone such as Europe/Berlin or UTC`)},
		},
		{
			name:       "missing keys and an unknown one",
			production: "    windows:\n      - days: [mon]\n        form: \"09:00\"\n",
			diags: bot.Diagnostics{
				errAt(8, 9, "environments.production.windows[0].from: required; add from: with the time it opens, such as from: \"09:00\""),
				errAt(8, 9, "environments.production.windows[0].to: required; add to: with the time it closes, such as to: \"16:00\""),
				errAt(8, 9, "environments.production.windows[0].timezone: required; add timezone: with an IANA time zone, such as timezone: Europe/Berlin"),
				errAt(9, 9, "environments.production.windows[0].form: unknown key; allowed here: days, from, to, timezone"),
			},
		},
		{
			name:       "windows not a list",
			production: "    windows: {days: [mon]}\n",
			diags:      bot.Diagnostics{errAt(7, 14, "environments.production.windows: expected a list of windows, each a mapping with days, from, to and timezone, got a mapping")},
		},
		{
			name:       "bad RFC 3339 times",
			production: "    freezes: [{from: 2026-12-20, to: \"2027-01-04 00:00\", reason: x}]\n",
			diags: bot.Diagnostics{
				errAt(7, 22, `environments.production.freezes[0].from: invalid time "2026-12-20": write an RFC 3339 time with its offset, such as 2026-12-20T00:00:00+01:00 or 2026-12-20T00:00:00Z`),
				errAt(7, 38, `environments.production.freezes[0].to: invalid time "2027-01-04 00:00": write an RFC 3339 time with its offset, such as 2026-12-20T00:00:00+01:00 or 2026-12-20T00:00:00Z`),
			},
		},
		{
			name:       "freeze ends before it starts",
			production: "    freezes: [{from: 2027-01-04T00:00:00+01:00, to: 2026-12-20T00:00:00+01:00, reason: x}]\n",
			diags:      bot.Diagnostics{errAt(7, 53, "environments.production.freezes[0].to: the freeze ends at 2026-12-20T00:00:00+01:00, which is not after its start 2027-01-04T00:00:00+01:00; to must be later than from")},
		},
		{
			name:       "freeze without a reason",
			production: "    freezes:\n      - from: 2026-12-20T00:00:00Z\n        to: 2027-01-04T00:00:00Z\n      - {from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z, reason: \"  \"}\n",
			diags: bot.Diagnostics{
				errAt(8, 9, `environments.production.freezes[0].reason: required; add reason: with what everyone held by it reads, such as reason: "year-end freeze"`),
				errAt(10, 72, `environments.production.freezes[1].reason: expected the reason as a string, such as "year-end freeze", got an empty string`),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(calendarYAML(tc.production)))
			if diff := cmp.Diff(tc.diags, diags); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if cfg != nil {
				t.Errorf("an invalid calendar gave a config")
			}
		})
	}
}
