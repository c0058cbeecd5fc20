package config

import (
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/stagehand-dev/stagehand/bot"
)

// productionPolicy reads the keys of an environment that only production
// may hold: approvers (with the quorum, required), prevent_self_approval
// and break_glass.
func (w *walker) productionPolicy(env *bot.Environment, name bot.EnvironmentName, f entry) {
	if name != bot.Production {
		why := "stage deployments are never approved"
		if f.key == "break_glass" {
			why = "the break-glass override (/stagehand deploy-now --override) is a production action"
		}
		w.errorf(f.keyPos, f.path, "%s is allowed on production only: %s; move it to environments.production", f.key, why)
		return
	}
	switch f.key {
	case "approvers":
		env.Approvers = w.approvers(f)
	case "prevent_self_approval":
		env.PreventSelfApproval, _ = w.boolean(f)
	case "break_glass":
		allowed, ok := w.boolean(f)
		env.BreakGlassOff = ok && !allowed
	}
}

// maxRequiredApprovals bounds required: a larger quorum is a typo.
const maxRequiredApprovals = 20

// approvers reads users, teams and required (the quorum). A login listed
// twice is an error, so a list cannot seem to hold more people than it
// does. required must be a whole number from 1; when only users are
// listed it may not exceed them. A team's size is not known from the file
// (and changes without a commit), so with teams listed required is checked
// only against maxRequiredApprovals; without users and teams (anyone with
// write permission approves) likewise.
func (w *walker) approvers(e entry) bot.Approvers {
	var a bot.Approvers
	entries, _ := w.fields(e.path, e.valuePos, e.value, approverKeys)
	var required *entry
	usersOK := true
	for i, f := range entries {
		switch f.key {
		case "users":
			a.Users, usersOK = w.stringList(f, "GitHub logins such as octocat", w.distinctLogin())
		case "teams":
			a.Teams, _ = w.stringList(f, "teams written org/team-slug", validTeam(w))
		case "required":
			required = &entries[i]
		}
	}
	if required == nil {
		return a
	}
	n, ok := w.requiredCount(*required)
	if !ok {
		return a
	}
	if len(a.Teams) == 0 && len(a.Users) > 0 && usersOK && n > len(a.Users) {
		w.errorf(required.valuePos, required.path, "required: %d needs %d distinct approvers, but users lists only %d (%s) and no team; list more users or teams, or lower required",
			n, n, len(a.Users), strings.Join(a.Users, ", "))
		return a
	}
	a.Required = n
	return a
}

// requiredCount reads required: a whole number from 1 to
// maxRequiredApprovals.
func (w *walker) requiredCount(e entry) (int, bool) {
	v, isInt := e.value.(*ast.IntegerNode)
	if !isInt {
		w.errorf(e.valuePos, e.path, "expected the number of approvals a production deploy needs, such as 2, got %s", describe(e.value))
		return 0, false
	}
	n, err := strconv.Atoi(v.GetToken().Value)
	if err != nil || n < 1 || n > maxRequiredApprovals {
		w.errorf(e.valuePos, e.path, "required must be a whole number from 1 to %d, got %s", maxRequiredApprovals, v.GetToken().Value)
		return 0, false
	}
	return n, true
}

// distinctLogin is validLogin that also refuses a login listed twice
// (GitHub logins are case-insensitive).
func (w *walker) distinctLogin() func(item, string) bool {
	valid := validLogin(w)
	first := map[string]pos{}
	return func(it item, s string) bool {
		if !valid(it, s) {
			return false
		}
		key := strings.ToLower(s)
		if p, dup := first[key]; dup {
			w.errorf(it.pos, it.path, "%s is listed twice (the first at line %d); each approver counts once", s, p.line)
			return false
		}
		first[key] = it.pos
		return true
	}
}
