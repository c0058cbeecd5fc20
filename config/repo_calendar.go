package config

import (
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The keys of a deploy window and of a freeze (environments.<env>.windows
// and .freezes).
var (
	windowKeys = mapSpec{"key", []string{"days", "from", "to", "timezone"}}
	freezeKeys = mapSpec{"key", []string{"from", "to", "reason"}}
)

// windows reads environments.<env>.windows: a list of
// {days: [mon, …], from: "09:00", to: "16:00", timezone: Europe/Berlin}.
// A window whose to is not after its from spans midnight; from == to is
// refused (write 00:00 to 24:00 for a whole day).
func (w *walker) windows(e entry) []bot.Window {
	items, _ := w.list(e, "windows, each a mapping with days, from, to and timezone")
	var out []bot.Window
	for _, it := range items {
		entries, ok := w.fields(it.path, it.pos, it.value, windowKeys)
		if !ok {
			continue
		}
		win, valid := bot.Window{}, true
		var fromAt, toAt *entry
		for i, f := range entries {
			switch f.key {
			case "days":
				win.Days, ok = w.days(f)
			case "from", "to":
				var d time.Duration
				d, ok = w.timeOfDay(f)
				if f.key == "from" {
					win.From, fromAt = d, &entries[i]
				} else {
					win.To, toAt = d, &entries[i]
				}
			case "timezone":
				win.Location, win.TimeZone, ok = w.timeZone(f)
			}
			valid = valid && ok
		}
		if fromAt != nil && win.From == 24*time.Hour {
			w.errorf(fromAt.valuePos, fromAt.path, "a window cannot open at 24:00; write 00:00")
			valid = false
		}
		if fromAt != nil && toAt != nil && valid && win.From == win.To {
			w.errorf(toAt.valuePos, toAt.path, "the window opens and closes at %s: it would never be open; for a whole day write from: \"00:00\", to: \"24:00\"", scalarText(toAt.value))
			valid = false
		}
		if w.requireAll(entries, it, windowRequired) && valid {
			out = append(out, win)
		}
	}
	return out
}

// requirement is a key an item must have, with the hint for when it is
// missing.
type requirement struct{ key, hint string }

var (
	windowRequired = []requirement{
		{"days", "list the days it opens on, such as days: [mon, tue, wed, thu]"},
		{"from", `add from: with the time it opens, such as from: "09:00"`},
		{"to", `add to: with the time it closes, such as to: "16:00"`},
		{"timezone", "add timezone: with an IANA time zone, such as timezone: Europe/Berlin"},
	}
	freezeRequired = []requirement{
		{"from", "add from: with when it starts, an RFC 3339 time such as 2026-12-20T00:00:00+01:00"},
		{"to", "add to: with when it ends, an RFC 3339 time such as 2027-01-04T00:00:00+01:00"},
		{"reason", `add reason: with what everyone held by it reads, such as reason: "year-end freeze"`},
	}
)

// requireAll reports each required key the item lacks; false when one is
// missing.
func (w *walker) requireAll(entries []entry, it item, keys []requirement) bool {
	all := true
	for _, k := range keys {
		n := len(w.diags)
		w.require(entries, it.pos, it.path, k.key, k.hint)
		all = all && len(w.diags) == n
	}
	return all
}

// days reads a non-empty list of day names without repeats.
func (w *walker) days(e entry) ([]time.Weekday, bool) {
	const expected = "day names: mon, tue, wed, thu, fri, sat, sun"
	names, ok := w.stringList(e, expected, func(it item, s string) bool {
		if _, found := bot.ParseDay(s); !found {
			w.errorf(it.pos, it.path, "unknown day %q; use mon, tue, wed, thu, fri, sat or sun", s)
			return false
		}
		return true
	})
	if !ok {
		return nil, false
	}
	if len(names) == 0 {
		w.errorf(e.valuePos, e.path, "list at least one day, such as [mon, tue, wed, thu]")
		return nil, false
	}
	var days []time.Weekday
	seen := map[time.Weekday]bool{}
	for _, n := range names {
		d, _ := bot.ParseDay(n)
		if seen[d] {
			w.errorf(e.valuePos, e.path, "%s is listed twice; list each day once", n)
			return nil, false
		}
		seen[d] = true
		days = append(days, d)
	}
	return days, true
}

// timeOfDay reads "HH:MM", 00:00 to 24:00.
func (w *walker) timeOfDay(e entry) (time.Duration, bool) {
	s, ok := w.str(e, `a time of day written "HH:MM", such as "09:00"`)
	if !ok {
		return 0, false
	}
	d, ok := bot.ParseTimeOfDay(s)
	if !ok {
		w.errorf(e.valuePos, e.path, `invalid time of day %q: write "HH:MM" on the 24-hour clock, from "00:00" to "24:00", such as "09:00"`, s)
		return 0, false
	}
	return d, true
}

func (w *walker) timeZone(e entry) (*time.Location, string, bool) {
	s, ok := w.nonEmptyStr(e, "an IANA time zone such as Europe/Berlin")
	if !ok {
		return nil, "", false
	}
	loc, err := bot.LoadTimeZone(s)
	if err != nil {
		w.errorf(e.valuePos, e.path, "%v", err)
		return nil, "", false
	}
	return loc, s, true
}

// freezes reads environments.<env>.freezes: a list of {from: RFC 3339,
// to: RFC 3339, reason: "…"}; the reason is required, since it is what
// everyone held by the freeze reads.
func (w *walker) freezes(e entry) []bot.Freeze {
	items, _ := w.list(e, "freezes, each a mapping with from, to and reason")
	var out []bot.Freeze
	for _, it := range items {
		entries, ok := w.fields(it.path, it.pos, it.value, freezeKeys)
		if !ok {
			continue
		}
		var f bot.Freeze
		valid := true
		var toAt *entry
		for i, fe := range entries {
			switch fe.key {
			case "from":
				f.From, ok = w.instant(fe)
			case "to":
				f.To, ok = w.instant(fe)
				toAt = &entries[i]
			case "reason":
				f.Reason, ok = w.nonEmptyStr(fe, `the reason as a string, such as "year-end freeze"`)
			}
			valid = valid && ok
		}
		if valid && toAt != nil && !f.From.IsZero() && !f.To.After(f.From) {
			w.errorf(toAt.valuePos, toAt.path, "the freeze ends at %s, which is not after its start %s; to must be later than from", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
			valid = false
		}
		if w.requireAll(entries, it, freezeRequired) && valid {
			out = append(out, f)
		}
	}
	return out
}

// instant reads an RFC 3339 time with its offset.
func (w *walker) instant(e entry) (time.Time, bool) {
	s, ok := w.str(e, "an RFC 3339 time such as 2026-12-20T00:00:00+01:00")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		w.errorf(e.valuePos, e.path, "invalid time %q: write an RFC 3339 time with its offset, such as 2026-12-20T00:00:00+01:00 or 2026-12-20T00:00:00Z", s)
		return time.Time{}, false
	}
	return t, true
}
