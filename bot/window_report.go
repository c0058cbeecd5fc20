package bot

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CalendarReport is what Stagehand shows of an environment's deploy
// calendar at a moment: in /stagehand status, on the dashboard and in its
// API.
type CalendarReport struct {
	// Windows are the deploy windows in words ("mon–thu 09:00–16:00
	// Europe/Berlin"); none: any time outside the freezes.
	Windows []string
	// Freezes are the freezes not over yet, in the order declared.
	Freezes []FreezeReport
	Open    bool
	// State is "open now", or why it is closed and when it opens:
	// "closed: outside the deploy windows of production (…); opens Mon
	// 09:00 Europe/Berlin (in 14 h)".
	State string
	// Next is when a closed calendar opens (zero while open, or never).
	Next time.Time
}

// FreezeReport is one freeze; Now: it is in effect.
type FreezeReport struct {
	From, To time.Time
	Reason   string
	Now      bool
}

// Report is the calendar as shown at now for env.
func (c DeployCalendar) Report(env EnvironmentName, now time.Time) CalendarReport {
	r := CalendarReport{Open: true, State: "open now"}
	for _, w := range c.Windows {
		r.Windows = append(r.Windows, w.String())
	}
	for _, f := range c.Freezes {
		if f.To.After(now) {
			r.Freezes = append(r.Freezes, FreezeReport{From: f.From, To: f.To, Reason: f.Reason, Now: f.Contains(now)})
		}
	}
	if why := c.Describe(env, now); why != "" {
		r.Open, r.State, r.Next = false, "closed: "+why, c.At(now).Next
	}
	return r
}

// Lines is the report in Markdown list items for /stagehand status.
func (r CalendarReport) Lines() []string {
	var out []string
	if len(r.Windows) > 0 {
		out = append(out, "deploy windows: "+strings.Join(r.Windows, "; "))
	}
	for _, f := range r.Freezes {
		out = append(out, fmt.Sprintf("freeze %s to %s: %s", f.From.Format(time.RFC3339), f.To.Format(time.RFC3339), f.Reason))
	}
	return append(out, r.State)
}

// Calendar is an environment's deploy calendar under the program's policy
// now (the default branch's file); an unreadable policy is an error.
func (e *Engine) Calendar(ctx context.Context, programID int64, env EnvironmentName) (DeployCalendar, error) {
	pol, err := e.programPolicy(ctx, Request{}, programID)
	if err != nil || pol.Config == nil {
		return DeployCalendar{}, err
	}
	return pol.Config.Environment(env).Calendar(), nil
}
