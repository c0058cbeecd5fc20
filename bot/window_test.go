package bot

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadTimeZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// berlinWeekdays is the example: mon–thu 09:00–16:00 Europe/Berlin.
func berlinWeekdays(t *testing.T) Window {
	return Window{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}, From: 9 * time.Hour, To: 16 * time.Hour, TimeZone: "Europe/Berlin", Location: mustZone(t, "Europe/Berlin")}
}

func TestCalendarAt(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	night := Window{Days: []time.Weekday{time.Saturday}, From: 22 * time.Hour, To: 2 * time.Hour, TimeZone: "UTC", Location: time.UTC}
	yearEnd := Freeze{From: time.Date(2026, 12, 20, 0, 0, 0, 0, time.FixedZone("", 3600)), To: time.Date(2027, 1, 4, 0, 0, 0, 0, time.FixedZone("", 3600)), Reason: "year-end freeze"}
	for _, tc := range []struct {
		name  string
		cal   DeployCalendar
		now   time.Time
		open  bool
		next  time.Time
		opens string
	}{
		{name: "nothing declared", cal: DeployCalendar{}, now: at(2026, 11, 6, 20, 0), open: true, opens: "open now"},
		{name: "inside the window", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2026, 11, 5, 9, 0), open: true, opens: "open now"},
		{name: "at its close", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2026, 11, 5, 16, 0), next: at(2026, 11, 9, 9, 0), opens: "opens Mon 09:00 Europe/Berlin (in 3 d 17 h)"},
		{name: "friday evening waits for monday", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2026, 11, 6, 19, 0), next: at(2026, 11, 9, 9, 0), opens: "opens Mon 09:00 Europe/Berlin (in 2 d 14 h)"},
		{name: "sunday evening", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2026, 11, 8, 19, 0), next: at(2026, 11, 9, 9, 0), opens: "opens Mon 09:00 Europe/Berlin (in 14 h)"},
		{name: "monday morning", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2026, 11, 9, 8, 15), next: at(2026, 11, 9, 9, 0), opens: "opens Mon 09:00 Europe/Berlin (in 45 min)"},
		// Summer time starts in Berlin on Sunday 2027-03-28: Monday
		// 09:00 is 07:00 UTC, no longer 08:00.
		{name: "across the change to summer time", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2027, 3, 26, 18, 0), next: time.Date(2027, 3, 29, 7, 0, 0, 0, time.UTC), opens: "opens Mon 09:00 Europe/Berlin (in 2 d 14 h)"},
		{name: "across the change to winter time", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}}, now: at(2026, 10, 23, 18, 0), next: time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC), opens: "opens Mon 09:00 Europe/Berlin (in 2 d 16 h)"},
		{name: "a window across midnight, after midnight", cal: DeployCalendar{Windows: []Window{night}}, now: time.Date(2026, 11, 8, 1, 30, 0, 0, time.UTC), open: true, opens: "open now"},
		{name: "a window across midnight, after it closes", cal: DeployCalendar{Windows: []Window{night}}, now: time.Date(2026, 11, 8, 2, 0, 0, 0, time.UTC), next: time.Date(2026, 11, 14, 22, 0, 0, 0, time.UTC), opens: "opens Sat 14 Nov 2026 22:00 UTC (in 6 d 20 h)"},
		{name: "inside a freeze without windows", cal: DeployCalendar{Freezes: []Freeze{yearEnd}}, now: at(2026, 12, 31, 23, 59), next: yearEnd.To, opens: "opens Mon 00:00 +01:00 (in 3 d)"},
		{name: "a freeze spanning new year, then the window", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}, Freezes: []Freeze{yearEnd}}, now: at(2026, 12, 21, 10, 0), next: at(2027, 1, 4, 9, 0), opens: "opens Mon 4 Jan 2027 09:00 Europe/Berlin (in 13 d 23 h)"},
		{name: "the freeze's end", cal: DeployCalendar{Freezes: []Freeze{yearEnd}}, now: yearEnd.To, open: true, opens: "open now"},
		{name: "a window that opens inside a freeze", cal: DeployCalendar{Windows: []Window{berlinWeekdays(t)}, Freezes: []Freeze{{From: at(2026, 11, 9, 0, 0), To: at(2026, 11, 9, 12, 0), Reason: "x"}}}, now: at(2026, 11, 8, 12, 0), next: at(2026, 11, 9, 12, 0), opens: "opens Mon 12:00 Europe/Berlin (in 24 h)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.cal.At(tc.now)
			if st.Open != tc.open || !st.Next.Equal(tc.next) {
				t.Errorf("At(%s) = open %v next %s; want open %v next %s", tc.now, st.Open, st.Next, tc.open, tc.next)
			}
			if got := st.Opens(tc.now); got != tc.opens {
				t.Errorf("Opens = %q, want %q", got, tc.opens)
			}
		})
	}
}

func TestCalendarDescribe(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	cal := DeployCalendar{Windows: []Window{berlinWeekdays(t)}, Freezes: []Freeze{{From: time.Date(2026, 12, 20, 0, 0, 0, 0, berlin), To: time.Date(2027, 1, 4, 0, 0, 0, 0, berlin), Reason: "year-end freeze"}}}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2026, 11, 5, 10, 0, 0, 0, berlin), ""},
		{time.Date(2026, 11, 8, 19, 0, 0, 0, berlin), "outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 14 h)"},
		{time.Date(2026, 12, 24, 12, 0, 0, 0, berlin), "production is frozen until 2027-01-04T00:00:00+01:00: year-end freeze; opens Mon 4 Jan 2027 09:00 Europe/Berlin (in 10 d 21 h)"},
	} {
		if got := cal.Describe(Production, tc.now); got != tc.want {
			t.Errorf("Describe(%s) = %q, want %q", tc.now, got, tc.want)
		}
	}
}

func TestDayListAndParsing(t *testing.T) {
	for days, want := range map[string]string{
		"mon tue wed thu": "mon–thu", "mon wed fri": "mon, wed, fri", "sat sun": "sat, sun", "fri sat sun mon": "mon, fri–sun",
	} {
		var ds []time.Weekday
		for _, n := range strings.Fields(days) {
			d, ok := ParseDay(n)
			if !ok {
				t.Fatalf("ParseDay(%q) failed", n)
			}
			ds = append(ds, d)
		}
		if got := dayList(ds); got != want {
			t.Errorf("dayList(%s) = %q, want %q", days, got, want)
		}
	}
	for s, ok := range map[string]bool{"09:00": true, "24:00": true, "00:00": true, "24:01": false, "9:00": false, "09:60": false, "ab:cd": false, "-1:00": false} {
		if _, got := ParseTimeOfDay(s); got != ok {
			t.Errorf("ParseTimeOfDay(%q) ok = %v", s, got)
		}
	}
}

// TestMergePolicyKeepsTheCalendar is an attack on the windows: the
// commit's own file (a side branch) declaring no windows or freezes, or
// its own, never changes the default branch's.
func TestMergePolicyKeepsTheCalendar(t *testing.T) {
	cal := DeployCalendar{Windows: []Window{berlinWeekdays(t)}, Freezes: []Freeze{{From: time.Unix(0, 0), To: time.Unix(1e10, 0), Reason: "frozen"}}}
	policy := &Config{Production: &Environment{Deploy: "./policy.sh", Windows: cal.Windows, Freezes: cal.Freezes}}
	lifted := &Config{Production: &Environment{Deploy: "./deploy.sh"}}
	got := MergePolicy(lifted, policy).Production
	if len(got.Windows) != 1 || len(got.Freezes) != 1 {
		t.Errorf("a commit's file without windows lifted the policy's: %+v", got)
	}
	own := &Config{Stage: &Environment{Deploy: "./deploy.sh", Windows: cal.Windows}, Production: &Environment{Deploy: "./deploy.sh", Freezes: cal.Freezes}}
	merged := MergePolicy(own, &Config{Stage: &Environment{}, Production: &Environment{}})
	if merged.Stage.Calendar().Restricted() || merged.Production.Calendar().Restricted() {
		t.Errorf("a commit's file declared windows or freezes of its own: %+v %+v", merged.Stage, merged.Production)
	}
}

// TestBinaryCarriesTimeZones: the shipped binary embeds Go's time zone
// database (time/tzdata), so deploy windows work on a server without one.
func TestBinaryCarriesTimeZones(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/stagehand").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !slices.Contains(strings.Fields(string(out)), "time/tzdata") {
		t.Error("./cmd/stagehand does not link time/tzdata: deploy windows would need the server's time zone database")
	}
}
