package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// calendarFixture is the dashboard fixture whose production declares
// mon–thu 09:00–16:00 Berlin windows, a freeze to come and one over; the
// fixture's clock is Sunday 2026-03-01 10:45 UTC.
func calendarFixture(t *testing.T) *dashFixture {
	f := newDashFixture(t)
	berlin, err := bot.LoadTimeZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	plus1 := time.FixedZone("", 3600)
	f.dash.Calendar = func(_ context.Context, _ int64, env bot.EnvironmentName) (bot.DeployCalendar, error) {
		if env != bot.Production {
			return bot.DeployCalendar{}, nil
		}
		return bot.DeployCalendar{
			Windows: []bot.Window{{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}, From: 9 * time.Hour, To: 16 * time.Hour, TimeZone: "Europe/Berlin", Location: berlin}},
			Freezes: []bot.Freeze{
				{From: time.Date(2026, 2, 1, 0, 0, 0, 0, plus1), To: time.Date(2026, 2, 2, 0, 0, 0, 0, plus1), Reason: "over already"},
				{From: time.Date(2026, 3, 5, 0, 0, 0, 0, plus1), To: time.Date(2026, 3, 6, 0, 0, 0, 0, plus1), Reason: "release train"},
			},
		}, nil
	}
	return f
}

// TestDashboardCalendar: the environments page shows production's
// windows, the freezes not over yet, and that it is closed until Monday.
func TestDashboardCalendar(t *testing.T) {
	f := calendarFixture(t)
	body := f.page("/programs/acme/app/environments")
	mustContain(t, "environments page", text(body),
		"Deploy windows closed: outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 21 h)",
		"mon–thu 09:00–16:00 Europe/Berlin",
		"release train 2026-03-05 00:00", "2026-03-06 00:00",
	)
	mustNotContain(t, "environments page", body, "over already")
	mustContain(t, "program page", text(f.page("/programs/acme/app")),
		"production commit 1111111 execution prod-only #2 artifact set",
		"Deploy windows: closed: outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 21 h)")
	if n := strings.Count(text(body), "Deploy windows"); n != 1 {
		t.Errorf("%d calendars shown; stage declares none", n)
	}
}

// TestAPICalendar: the JSON API returns the same.
func TestAPICalendar(t *testing.T) {
	f := calendarFixture(t)
	var got APIProgramDetail
	f.getJSON("/api/v1/programs/acme/app", http.StatusOK, &got)
	next := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	want := &APICalendar{
		Windows:  []string{"mon–thu 09:00–16:00 Europe/Berlin"},
		Freezes:  []APIFreeze{{From: time.Date(2026, 3, 4, 23, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 5, 23, 0, 0, 0, time.UTC), Reason: "release train"}},
		State:    "closed: outside the deploy windows of production (mon–thu 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 21 h)",
		NextOpen: &next,
	}
	if len(got.Environments) != 2 || got.Environments[0].Calendar != nil {
		t.Fatalf("environments = %+v; want stage without a calendar", got.Environments)
	}
	eq := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	if diff := cmp.Diff(want, got.Environments[1].Calendar, eq); diff != "" {
		t.Errorf("production's calendar (-want +got):\n%s", diff)
	}

	// A policy that cannot be read says so, and shows no calendar.
	f.dash.Calendar = func(context.Context, int64, bot.EnvironmentName) (bot.DeployCalendar, error) {
		return bot.DeployCalendar{}, errors.New("ls-remote failed")
	}
	got = APIProgramDetail{}
	f.getJSON("/api/v1/programs/acme/app", http.StatusOK, &got)
	if e := got.Environments[1]; e.Calendar != nil || e.CalendarError != "the policy's deploy windows and freezes could not be read" {
		t.Errorf("production with an unreadable policy: calendar %+v, error %q", e.Calendar, e.CalendarError)
	}
}
