package bot

import (
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones without a system database: the binary is self-contained
)

// Window is a recurring deploy window of an environment: on each of Days,
// deploys may start from From until To, wall-clock time in Location. A
// window whose To is not after its From spans midnight: it closes at To on
// the next day. To may be 24*time.Hour (midnight at the end of the day).
type Window struct {
	Days     []time.Weekday
	From, To time.Duration // since midnight, in Location
	// TimeZone is the IANA name Location was loaded from ("Europe/Berlin").
	TimeZone string
	Location *time.Location
}

// Freeze is a period in which an environment is never deployed to.
type Freeze struct {
	From, To time.Time
	Reason   string
}

// LoadTimeZone loads an IANA time zone from Go's embedded database
// (time/tzdata), so no system database is needed. "Local" is refused: a
// window must mean the same on every server.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q: name an IANA zone such as Europe/Berlin or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: name an IANA zone such as Europe/Berlin, America/New_York or UTC", name)
	}
	return loc, nil
}

// ParseDay reads a day name: mon, tue, wed, thu, fri, sat or sun.
func ParseDay(s string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(s, dayNames[d]) {
			return d, true
		}
	}
	return 0, false
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseTimeOfDay reads "HH:MM" (00:00 to 24:00) as the time since midnight.
func ParseTimeOfDay(s string) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, c := range s[:2] + s[3:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
}

// span is the window's opening that starts on the given calendar day in
// its Location.
func (w Window) span(year int, month time.Month, day int) (start, end time.Time) {
	start = wallClock(year, month, day, w.From, w.Location)
	if w.To > w.From {
		end = wallClock(year, month, day, w.To, w.Location)
	} else {
		end = wallClock(year, month, day+1, w.To, w.Location)
	}
	return start, end
}

// wallClock is the instant the clocks in loc show since after midnight of
// the day. Across a daylight-saving change the wall-clock time is kept
// (09:00 stays 09:00); a time the change skips is moved by time.Date.
func wallClock(year int, month time.Month, day int, since time.Duration, loc *time.Location) time.Time {
	h, m := int(since/time.Hour), int(since%time.Hour/time.Minute)
	return time.Date(year, month, day, h, m, 0, 0, loc)
}

// openings calls f with the window's openings that start on the days from
// the day of t (in Location) plus first to plus last, in order.
func (w Window) openings(t time.Time, first, last int, f func(start, end time.Time) bool) {
	lt := t.In(w.Location)
	for i := first; i <= last; i++ {
		d := time.Date(lt.Year(), lt.Month(), lt.Day()+i, 12, 0, 0, 0, w.Location)
		if !slices.Contains(w.Days, d.Weekday()) {
			continue
		}
		start, end := w.span(d.Year(), d.Month(), d.Day())
		if !f(start, end) {
			return
		}
	}
}

// Contains reports whether t is inside one of the window's openings.
func (w Window) Contains(t time.Time) bool {
	in := false
	w.openings(t, -1, 0, func(start, end time.Time) bool {
		in = !t.Before(start) && t.Before(end)
		return !in
	})
	return in
}

// next is the earliest instant at or after t inside the window; zero when
// the window has no days.
func (w Window) next(t time.Time) time.Time {
	var at time.Time
	w.openings(t, -1, 8, func(start, end time.Time) bool {
		if !end.After(t) {
			return true
		}
		at = start
		if t.After(start) {
			at = t
		}
		return false
	})
	return at
}

// Contains reports whether t is inside the freeze.
func (f Freeze) Contains(t time.Time) bool {
	return !t.Before(f.From) && t.Before(f.To)
}

// DeployCalendar is when an environment may be deployed to: inside one of
// its windows (always, when it declares none) and outside every freeze.
type DeployCalendar struct {
	Windows []Window
	Freezes []Freeze
}

// Calendar is the environment's deploy calendar.
func (env *Environment) Calendar() DeployCalendar {
	if env == nil {
		return DeployCalendar{}
	}
	return DeployCalendar{Windows: env.Windows, Freezes: env.Freezes}
}

// Restricted reports whether the calendar restricts deploys at all.
func (c DeployCalendar) Restricted() bool {
	return len(c.Windows) > 0 || len(c.Freezes) > 0
}

// Status is the calendar at t: open, or closed and why, until when.
type Status struct {
	Open bool
	// Freeze is the freeze in effect at t, if any.
	Freeze *Freeze
	// Next is when deploys may start again (zero while open, and when the
	// calendar never opens again).
	Next time.Time
	// NextZone is the time zone Next is shown in: the window that opens
	// then, or the offset of the freeze that ends then.
	NextZone string
	// Window is the window that opens at Next, if any.
	Window *Window
}

// maxCalendarSteps bounds the search for the next opening: each step moves
// past one freeze, so it is reached only with that many overlapping ones.
const maxCalendarSteps = 1000

// At says whether deploys may start at t and, if not, when they may next.
func (c DeployCalendar) At(t time.Time) Status {
	var st Status
	if f := c.freezeAt(t); f != nil {
		st.Freeze = f
	} else if w := c.windowAt(t); w != nil || len(c.Windows) == 0 {
		st.Open = true
		return st
	}
	cur := t
	for range maxCalendarSteps {
		at, w := c.nextWindow(cur)
		if at.IsZero() {
			return st
		}
		if f := c.freezeAt(at); f != nil {
			cur = f.To
			continue
		}
		st.Next, st.Window = at, w
		if w != nil {
			st.NextZone = w.TimeZone
		} else {
			st.NextZone = at.Format("-07:00")
		}
		return st
	}
	return st
}

func (c DeployCalendar) freezeAt(t time.Time) *Freeze {
	var found *Freeze
	for i, f := range c.Freezes {
		if f.Contains(t) && (found == nil || f.To.After(found.To)) {
			found = &c.Freezes[i]
		}
	}
	return found
}

func (c DeployCalendar) windowAt(t time.Time) *Window {
	for i, w := range c.Windows {
		if w.Contains(t) {
			return &c.Windows[i]
		}
	}
	return nil
}

// nextWindow is the earliest instant at or after t inside a window, and
// that window (t itself and nil when there are no windows).
func (c DeployCalendar) nextWindow(t time.Time) (time.Time, *Window) {
	if len(c.Windows) == 0 {
		return t, nil
	}
	var at time.Time
	var win *Window
	for i, w := range c.Windows {
		if n := w.next(t); !n.IsZero() && (at.IsZero() || n.Before(at)) {
			at, win = n, &c.Windows[i]
		}
	}
	return at, win
}

// Describe says, viewer-neutrally, why deploys to env may not start at now
// and when they may: "outside the deploy windows of production (mon–thu
// 09:00–16:00 Europe/Berlin); opens Mon 09:00 Europe/Berlin (in 14 h)".
// "" when the calendar is open at now.
func (c DeployCalendar) Describe(env EnvironmentName, now time.Time) string {
	st := c.At(now)
	if st.Open {
		return ""
	}
	var why string
	if st.Freeze != nil {
		why = fmt.Sprintf("%s is frozen until %s: %s", env, st.Freeze.To.Format(time.RFC3339), st.Freeze.Reason)
	} else {
		var ws []string
		for _, w := range c.Windows {
			ws = append(ws, w.String())
		}
		why = fmt.Sprintf("outside the deploy windows of %s (%s)", env, strings.Join(ws, "; "))
	}
	return why + "; " + st.Opens(now)
}

// Opens is "opens Mon 09:00 Europe/Berlin (in 14 h)" for a closed status,
// in the time zone of what opens; a date is added when it is a week or more
// away. "open now" when open, "never opens again" when nothing opens.
func (st Status) Opens(now time.Time) string {
	switch {
	case st.Open:
		return "open now"
	case st.Next.IsZero():
		return "never opens again: every later time is frozen"
	}
	return fmt.Sprintf("opens %s (in %s)", FormatOpening(st.Next, st.NextZone, now), Until(st.Next.Sub(now)))
}

// FormatOpening is "Mon 09:00 Europe/Berlin", or "Mon 4 Jan 2027 09:00
// Europe/Berlin" when at is six days or more after now. zone is an IANA
// name, or an offset such as "+01:00".
func FormatOpening(at time.Time, zone string, now time.Time) string {
	shown := at
	if loc, err := time.LoadLocation(zone); err == nil && zone != "" && zone != "Local" {
		shown = at.In(loc)
	}
	layout := "Mon 15:04"
	if at.Sub(now) >= 6*24*time.Hour {
		layout = "Mon 2 Jan 2006 15:04"
	}
	return shown.Format(layout) + " " + zone
}

// Until is a duration in words for "in …", to the nearest minute: "45
// min", "14 h", "3 d 2 h".
func Until(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if hours == 0 {
		return fmt.Sprintf("%d d", days)
	}
	return fmt.Sprintf("%d d %d h", days, hours)
}

// String is "mon–thu 09:00–16:00 Europe/Berlin".
func (w Window) String() string {
	return fmt.Sprintf("%s %s–%s %s", dayList(w.Days), clock(w.From), clock(w.To), w.TimeZone)
}

// dayList writes days as ranges where they follow each other: "mon–thu",
// "mon, wed, fri", "sat–sun".
func dayList(days []time.Weekday) string {
	order := func(d time.Weekday) int { return (int(d) + 6) % 7 } // monday first
	sorted := slices.Clone(days)
	slices.SortFunc(sorted, func(a, b time.Weekday) int { return order(a) - order(b) })
	sorted = slices.Compact(sorted)
	var parts []string
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && order(sorted[j+1]) == order(sorted[j])+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, dayNames[sorted[i]]+"–"+dayNames[sorted[j]])
		case j > i:
			parts = append(parts, dayNames[sorted[i]], dayNames[sorted[j]])
		default:
			parts = append(parts, dayNames[sorted[i]])
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
