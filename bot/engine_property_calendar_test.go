package bot_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The rule property test's calendar changes: program 1's default branch
// gets a new production calendar while executions are queued and waiting,
// and every production deploy must start under the calendar in force then
// (checkCalendar).

// calendarChange is a production calendar recorded as the latest policy.
type calendarChange struct {
	at  time.Time
	cal bot.DeployCalendar
}

// withFreeze gives a configuration a production freeze from from to to.
func withFreeze(raw []byte, from, to time.Time) []byte {
	return []byte(strings.Replace(string(raw), "  production: {deploy: ./deploy.sh production}\n", fmt.Sprintf(`  production:
    deploy: ./deploy.sh production
    freezes:
      - {from: %s, to: %s, reason: "merged while deploys wait"}
`, from.Format(time.RFC3339), to.Format(time.RFC3339)), 1))
}

// changeCalendar pushes a new production calendar to program 1's default
// branch: it becomes the latest policy (as the push handler records it),
// which holds the executions already queued or waiting too.
func (h *harness) changeCalendar() {
	p := h.progs[1]
	now := h.clock.Now()
	var raw []byte
	var what string
	switch h.rng.Intn(3) {
	case 0:
		raw, what = withCalendar(p.base), "the windows and freezes"
	case 1:
		raw, what = p.base, "no calendar (a freeze lifted)"
	default:
		to := now.Add(time.Duration(1+h.rng.Intn(48)) * time.Hour)
		raw, what = withFreeze(p.base, now.Add(-time.Hour), to), "a freeze until "+to.Format(time.RFC3339)
	}
	cfg, err := parseRepoConfig.Config(raw)
	if err != nil {
		h.fail("calendar change of %s: %v", p.repo, err)
	}
	err = h.store.Update(h.ctx, func(tx bot.Tx) error {
		return tx.SetLatestPolicy(h.ctx, p.id, bot.Policy{Branch: "main", Commit: fmt.Sprintf("policy-%d", h.opIndex), Raw: raw})
	})
	if err != nil {
		h.fail("recording the latest policy of %s: %v", p.repo, err)
	}
	p.raw, p.cfg = raw, cfg
	p.calendars = append(p.calendars, calendarChange{at: now, cal: cfg.Production.Calendar()})
	h.stats.calendarChanges++
	h.logf("%s: the default branch's calendar changes to %s", p.repo, what)
}
