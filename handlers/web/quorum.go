package web

import (
	"context"

	"github.com/stagehand-dev/stagehand/bot"
)

// approvalView is an execution waiting for approval and where its quorum
// stands (environments page, API).
type approvalView struct {
	Execution bot.Execution
	Quorum    bot.QuorumState
}

// approval is where ex's approval stands while its approval step waits.
func (d *Dashboard) approval(ex bot.Execution, steps []bot.Step, events []bot.Event) (bot.QuorumState, bool) {
	var parse func([]byte) (*bot.Config, error)
	if d.ParseConfig != nil {
		parse = d.ParseConfig.Config
	}
	return bot.WaitingApproval(parse, ex, steps, events)
}

// waitingApprovals are the approvals that holders wait for.
func (d *Dashboard) waitingApprovals(ctx context.Context, tx bot.DetailReader, holders []bot.Execution) ([]approvalView, error) {
	var out []approvalView
	for _, ex := range holders {
		if ex.State != bot.ExecutionWaiting {
			continue
		}
		detail, err := bot.LoadExecutionDetail(ctx, tx, ex)
		if err != nil {
			return nil, err
		}
		if q, ok := d.approval(ex, detail.Steps, detail.Events); ok {
			out = append(out, approvalView{Execution: ex, Quorum: q})
		}
	}
	return out, nil
}

// APIQuorum is where a waiting approval stands: how many distinct
// approvers it needs (approvers.required; 1 without a quorum) and who has
// approved, each once.
type APIQuorum struct {
	Required  int      `json:"required"`
	Approvals int      `json:"approvals"`
	Approvers []string `json:"approvers"`
	Missing   int      `json:"missing"`
	Summary   string   `json:"summary"` // "1 of 2 approvals: @alice"
}

// APIWaitingApproval is an execution holding the environment that waits
// for approval.
type APIWaitingApproval struct {
	Number   int       `json:"number"`
	HTMLPath string    `json:"html_path"`
	Approval APIQuorum `json:"approval"`
}

func apiQuorum(q bot.QuorumState) APIQuorum {
	approvers := q.Approvers
	if approvers == nil {
		approvers = []string{}
	}
	return APIQuorum{Required: q.Required, Approvals: len(q.Approvers), Approvers: approvers, Missing: q.Missing(), Summary: q.String()}
}

func apiWaitingApprovals(p bot.Program, as []approvalView) []APIWaitingApproval {
	var out []APIWaitingApproval
	for _, a := range as {
		out = append(out, APIWaitingApproval{Number: a.Execution.Number, HTMLPath: bot.ExecutionPath(p, a.Execution.Number), Approval: apiQuorum(a.Quorum)})
	}
	return out
}
