package bot_test

import (
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

// The property test's approval quorum: program 0's production needs two
// distinct approvers of ann, ben, cid and dev, and who started or promoted
// an execution ("pusher", "dev") may not approve it. The approve operation
// picks its approver from propApprovers, so the same person approves
// again, the promoter tries, and quorums fill up over several operations.
var propApprovers = []string{"ann", "ben", "dev", "ann", "cid"}

const propQuorumProgram = 0 // program 1 has the deploy calendar

// propPolicy is program i's configuration: program propQuorumProgram has
// the quorum.
func propPolicy(i int, raw []byte) []byte {
	if i != propQuorumProgram {
		return raw
	}
	return []byte(strings.Replace(string(raw), "  production: {deploy: ./deploy.sh production}\n",
		"  production:\n    deploy: ./deploy.sh production\n    approvers: {users: [ann, ben, cid, dev], required: 2}\n    prevent_self_approval: true\n", 1))
}

func (h *harness) approver() string { return propApprovers[h.rng.Intn(len(propApprovers))] }

// checkQuorum is the quorum gate: a production deploy whose approval
// waited for people was approved by at least the required number of
// distinct people, none of whom started or promoted it (with
// prevent_self_approval).
func (h *harness) checkQuorum(c bot.Claim) {
	var p *progModel
	for _, m := range h.progs {
		if m.id == c.Execution.ProgramID {
			p = m
		}
	}
	if p == nil || p.cfg.Production == nil {
		return
	}
	settings, ok := p.cfg.Pipelines[c.Execution.Pipeline]
	if !ok {
		settings = bot.PipelineConfig{Approval: true} // Create & Promote's default
	}
	if !settings.Approval && c.Execution.Rollback == "" {
		return // no person was asked
	}
	var events []bot.Event
	var source bot.Execution
	err := h.store.View(h.ctx, func(tx bot.Tx) error {
		var err error
		if events, err = tx.Events(h.ctx, c.Execution.ID); err != nil {
			return err
		}
		if c.Execution.SourceID != 0 {
			source, err = tx.Execution(h.ctx, c.Execution.SourceID)
		}
		return err
	})
	if err != nil {
		h.fail("reading events: %v", err)
	}
	self := map[string]bool{strings.ToLower(c.Execution.TriggeredBy): true, strings.ToLower(source.TriggeredBy): true}
	for _, ev := range events {
		if ev.Kind == bot.EventTriggered || ev.Kind == bot.EventPromoted {
			self[strings.ToLower(ev.Actor)] = true
		}
	}
	eligible := map[string]bool{}
	for _, ev := range events {
		if ev.Kind != bot.EventApproved && ev.Kind != bot.EventApprovedRollback {
			continue
		}
		who := strings.ToLower(ev.Actor)
		if p.cfg.Production.PreventSelfApproval && self[who] {
			h.fail("quorum: %s was approved by %s, who started or promoted it", c.Execution, ev.Actor)
		}
		eligible[who] = true
	}
	if required := p.cfg.Production.Approvers.Quorum(); len(eligible) < required {
		h.fail("quorum: %s deploys to production with %d distinct approvals (%v), %d required", c.Execution, len(eligible), eligible, required)
	}
	if p.id == h.progs[propQuorumProgram].id && len(eligible) >= 2 {
		h.stats.quorums++
	}
}
