package bot_test

import (
	"fmt"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

// The property test's checks of rules C, E and F as SPEC.md states them,
// written against a model of the rules rather than the engine's own
// functions (bot.Blocker, bot.Holds), which are under test.

// heldBy is rule E: the environments an execution of kind deploys to, and
// so holds while it is active.
func heldBy(kind bot.PipelineKind, env bot.EnvironmentName) bool {
	switch kind {
	case bot.FullStack:
		return true
	case bot.StageOnly:
		return env == bot.Stage
	case bot.ProdOnly:
		return env == bot.Production
	}
	return false
}

// startBlockers are the executions that keep a manual start of kind from
// happening (rules B and C): a conflicting running or waiting execution,
// or a queued execution of the same pipeline (its one slot is taken).
func startBlockers(exs []execView, kind bot.PipelineKind) []execView {
	var bs []execView
	for _, e := range exs {
		if (holdsSlot(e.State) && conflicts(kind, e.Pipeline)) || (e.State == bot.ExecutionQueued && e.Pipeline == kind) {
			bs = append(bs, e)
		}
	}
	return bs
}

// namesOneOf reports whether a refusal names one of the executions and
// links to it.
func (h *harness) namesOneOf(p *progModel, msg string, exs []execView) bool {
	for _, e := range exs {
		if strings.Contains(msg, e.Execution.String()) && strings.Contains(msg, h.eng.Link(bot.Program{Owner: p.owner, Repo: p.repo}, e.Number)) {
			return true
		}
	}
	return false
}

func names(exs []execView) []string {
	var ns []string
	for _, e := range exs {
		ns = append(ns, e.Execution.String()+" ("+string(e.State)+")")
	}
	return ns
}

// checkManualStart is rule C for a manual start of a stage-only or
// full-stack pipeline (every program has both): refused, naming the
// blocker and linking to it, exactly when something blocks it; started
// otherwise.
func (h *harness) checkManualStart(snap snapshot, p *progModel, kind bot.PipelineKind, res bot.Result, err error) {
	h.t.Helper()
	blockers := startBlockers(snap[p.id], kind)
	switch {
	case len(blockers) == 0 && err != nil:
		h.fail("rule C: %s: run %s was refused with nothing blocking it: %v", p.repo, kind, err)
	case len(blockers) == 0 && res.Execution.Pipeline != kind:
		h.fail("rule C: %s: run %s started %s", p.repo, kind, res.Execution)
	case len(blockers) > 0 && err == nil:
		h.fail("rule B: %s: run %s started %s while %v block it", p.repo, kind, res.Execution, names(blockers))
	case len(blockers) > 0 && !isRuleError(err):
		h.fail("rule C: %s: run %s while blocked: %v, want a refusal", p.repo, kind, err)
	case len(blockers) > 0 && !h.namesOneOf(p, err.Error(), blockers):
		h.fail("rule C: %s: the refusal of run %s does not name and link a blocker among %v: %v", p.repo, kind, names(blockers), err)
	}
}

// checkProdOnlyStart is rules B and F for a prod-only start (Promote Build
// or /stagehand run prod-only --from from): never while blocked, and the
// source is execution from, or the latest successful stage-only one.
func (h *harness) checkProdOnlyStart(snap snapshot, p *progModel, what string, from int, res bot.Result, err error) {
	h.t.Helper()
	if err != nil {
		return
	}
	if blockers := startBlockers(snap[p.id], bot.ProdOnly); len(blockers) > 0 {
		h.fail("rule B: %s: %s started %s while %v block it", p.repo, what, res.Execution, names(blockers))
	}
	var want *execView
	if from == 0 {
		want = latestSucceededStageOnly(snap, p)
	} else {
		for _, e := range snap[p.id] {
			if e.Number == from {
				want = &e
			}
		}
	}
	switch {
	case want == nil:
		h.fail("rule F: %s: %s started %s from source id %d, but there is no execution #%d to promote", p.repo, what, res.Execution, res.Execution.SourceID, from)
	case res.Execution.SourceID != want.ID:
		h.fail("rule F: %s: %s started %s from source id %d, want %s (id %d)", p.repo, what, res.Execution, res.Execution.SourceID, want.Execution, want.ID)
	}
}

// checkQueued is rule C at this instant: a queued execution starts by
// itself when its blocker ends, so every queued execution has one.
func (h *harness) checkQueued(p *progModel, exs []execView) {
	h.t.Helper()
	for _, e := range exs {
		if e.State != bot.ExecutionQueued {
			continue
		}
		blocked := false
		for _, b := range exs {
			if holdsSlot(b.State) && conflicts(e.Pipeline, b.Pipeline) {
				blocked = true
			}
		}
		if !blocked {
			h.fail("rule C: %s: %s is queued with nothing blocking it", p.repo, e.describe())
		}
	}
}

// checkSuperseded is rule C for skipped executions: a queued push-started
// execution superseded by a newer commit of the same pipeline, named in its
// message ("superseded by <sha>"); it never started and none of its steps
// ran.
func (h *harness) checkSuperseded(p *progModel, exs []execView) {
	h.t.Helper()
	for _, e := range exs {
		if e.State != bot.ExecutionSkipped {
			continue
		}
		if e.Cause != bot.CausePush || !e.StartedAt.IsZero() {
			h.fail("rule C: %s: %s was skipped, but only a queued push-started execution is superseded", p.repo, e.describe())
		}
		for _, s := range e.Steps {
			if s.State != bot.StepSkipped {
				h.fail("rule C: %s: %s was superseded, but its step %s is %s", p.repo, e.describe(), s.Name, s.State)
			}
		}
		short, ok := strings.CutPrefix(e.Message, "superseded by ")
		if !ok {
			h.fail("rule C: %s: %s was skipped with message %q, want \"superseded by <sha>\"", p.repo, e.describe(), e.Message)
		}
		newer := false
		for _, n := range exs {
			if n.Pipeline == e.Pipeline && n.Number > e.Number && n.Cause == bot.CausePush &&
				bot.ShortSHA(n.Commit) == short && h.commitSeq[n.Commit] > h.commitSeq[e.Commit] {
				newer = true
			}
		}
		if !newer {
			h.fail("rule C: %s: %s says %q, but no later push-started %s execution is at a newer commit %s", p.repo, e.describe(), e.Message, e.Pipeline, short)
		}
	}
}

// setVariable is rule E: changing an environment's variables is refused,
// naming the holder, while an active execution holds it, and applied at
// once otherwise.
func (h *harness) setVariable(snap snapshot) {
	h.t.Helper()
	p := h.pickProgram()
	env := []bot.EnvironmentName{bot.Stage, bot.Production}[h.rng.Intn(2)]
	value := fmt.Sprintf("op%d", h.opIndex)
	var holders []execView
	for _, e := range snap[p.id] {
		if holdsSlot(e.State) && heldBy(e.Pipeline, env) {
			holders = append(holders, e)
		}
	}
	before := h.variable(p, env)
	msg, err := h.eng.SetVariable(h.ctx, bot.Internal("approver"), p.id, env, "RELEASE", value)
	h.result(fmt.Sprintf("%s: env set %s RELEASE=%s", p.repo, env, value), msg, err)
	after := h.variable(p, env)
	switch {
	case len(holders) > 0 && err == nil:
		h.fail("rule E: %s: %s's variables changed while %v hold it", p.repo, env, names(holders))
	case len(holders) > 0 && !h.namesOneOf(p, err.Error(), holders):
		h.fail("rule E: %s: the refusal to change %s does not name and link a holder among %v: %v", p.repo, env, names(holders), err)
	case len(holders) > 0 && after != before:
		h.fail("rule E: %s: the refused change of %s still changed RELEASE from %q to %q", p.repo, env, before, after)
	case len(holders) == 0 && err != nil:
		h.fail("rule E: %s: changing %s, which nothing holds, was refused: %v", p.repo, env, err)
	case len(holders) == 0 && after != value:
		h.fail("rule E: %s: %s's RELEASE is %q after it was set to %q", p.repo, env, after, value)
	}
}

func (h *harness) variable(p *progModel, env bot.EnvironmentName) string {
	h.t.Helper()
	vars, err := h.eng.Variables(h.ctx, p.id, env)
	if err != nil {
		h.fail("reading %s's variables of %s: %v", env, p.repo, err)
	}
	return vars["RELEASE"]
}
