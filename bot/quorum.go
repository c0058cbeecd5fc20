package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Quorum is how many distinct approvers a production deploy needs: the
// environment's approvers.required, 1 when it is not set.
func (a Approvers) Quorum() int {
	return max(a.Required, 1)
}

// RequiredApprovals is the quorum of cfg's production environment (1
// without one).
func RequiredApprovals(cfg *Config) int {
	if cfg == nil || cfg.Production == nil {
		return 1
	}
	return cfg.Production.Approvers.Quorum()
}

// QuorumState is where an execution's approval stands: how many distinct
// approvers it needs and who has approved, each person once (GitHub logins
// are case-insensitive), in the order they approved. A rollback approval
// (rule G) counts within the same quorum.
type QuorumState struct {
	Required  int
	Approvers []string
}

// QuorumOf reads the approvals of an execution from its events.
func QuorumOf(required int, events []Event) QuorumState {
	q := QuorumState{Required: max(required, 1)}
	for _, ev := range events {
		if ev.Kind == EventApproved || ev.Kind == EventApprovedRollback {
			q = q.with(ev.Actor)
		}
	}
	return q
}

// Has reports whether person has approved already.
func (q QuorumState) Has(person string) bool {
	return slices.ContainsFunc(q.Approvers, func(a string) bool { return strings.EqualFold(a, person) })
}

func (q QuorumState) with(person string) QuorumState {
	if person == "" || q.Has(person) {
		return q
	}
	q.Approvers = append(slices.Clip(q.Approvers), person)
	return q
}

// Met reports whether enough distinct people approved.
func (q QuorumState) Met() bool { return len(q.Approvers) >= q.Required }

// Missing is how many more approvers are needed.
func (q QuorumState) Missing() int { return max(q.Required-len(q.Approvers), 0) }

// String is "1 of 2 approvals: @alice" ("0 of 2 approvals" before the
// first).
func (q QuorumState) String() string {
	s := fmt.Sprintf("%d of %d approvals", len(q.Approvers), q.Required)
	if len(q.Approvers) == 0 {
		return s
	}
	at := make([]string, len(q.Approvers))
	for i, a := range q.Approvers {
		at[i] = "@" + a
	}
	return s + ": " + strings.Join(at, ", ")
}

// checkQuorum warns about a quorum that some deploys can never reach:
// every listed user is needed, and prevent_self_approval keeps the one who
// promoted or started a deploy from approving it.
func (c *Config) checkQuorum() []Problem {
	p := c.Production
	if p == nil || !p.PreventSelfApproval || len(p.Approvers.Teams) > 0 || len(p.Approvers.Users) == 0 || p.Approvers.Required < len(p.Approvers.Users) {
		return nil
	}
	return []Problem{{Path: "environments.production.approvers.required", Warning: true, Message: fmt.Sprintf(
		"required: %d is every listed user and prevent_self_approval is on: a deploy promoted or started by one of them can never gather %d approvals (they may not approve it); list more users or a team",
		p.Approvers.Required, p.Approvers.Required)}}
}

// RefusalAlreadyApproved: the person approved this execution already; a
// quorum counts each approver once.
const RefusalAlreadyApproved RefusalCode = "already-approved"

// detail is the approval event's detail: "" without a quorum (as before
// quorums existed), else where the quorum stands with this approval.
func (q QuorumState) detail() string {
	if q.Required <= 1 {
		return ""
	}
	return q.String()
}

// quorum is where the waiting approval of ex stands: the quorum of the
// policy recorded with the execution (the default branch's file when it
// was created, like its approval and scheduled settings; never the file of
// the commit being deployed) and the approvals recorded so far.
func (e *Engine) quorum(ctx context.Context, tx EngineTx, ex Execution) (QuorumState, error) {
	required := 1
	if e.ParseConfig != nil && len(ex.Config) > 0 {
		cfg, err := e.executionConfig(ex)
		if err != nil {
			return QuorumState{}, fmt.Errorf("reading the approval quorum of %s: %w", ex, err)
		}
		required = RequiredApprovals(cfg)
	}
	events, err := tx.Events(ctx, ex.ID)
	if err != nil {
		return QuorumState{}, err
	}
	return QuorumOf(required, events), nil
}

func alreadyApproved(ex Execution, actor string, q QuorumState) *Refusal {
	return &Refusal{Code: RefusalAlreadyApproved, Message: fmt.Sprintf("@%s approved %s already (%s); each approver counts once, so it waits for %d more %s",
		actor, ex, q, q.Missing(), plural(q.Missing(), "approver", "approvers"))}
}

// approvePartly records an approval that does not complete the quorum:
// the approval step keeps waiting, for the others.
func (e *Engine) approvePartly(ctx context.Context, tx EngineTx, prog Program, ex Execution, s *Step, actor string, kind EventKind, q QuorumState) (Result, error) {
	s.Message = fmt.Sprintf("waiting for approval: %s; %d more needed", q, q.Missing())
	if ex.Rollback != "" {
		s.Message = fmt.Sprintf("waiting for Approve Rollback: %s; %d more needed (%s)", q, q.Missing(), ex.Rollback)
	}
	if err := tx.UpdateStep(ctx, *s); err != nil {
		return Result{}, err
	}
	if err := e.event(ctx, tx, ex, actor, kind, q.detail()); err != nil {
		return Result{}, err
	}
	return Result{Execution: ex, Message: fmt.Sprintf("%s: approval by %s recorded (%s); it waits for %d more %s: %s",
		ex, actor, q, q.Missing(), plural(q.Missing(), "approver", "approvers"), e.Link(prog, ex.Number))}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WaitingApproval is where the approval of an execution stands while its
// approval step waits (ok is false otherwise): the quorum of the
// configuration it runs with (parse reads it; nil: one approval) and the
// approvals its events record. The check run, the dashboard and the API
// show it.
func WaitingApproval(parse func([]byte) (*Config, error), ex Execution, steps []Step, events []Event) (QuorumState, bool) {
	if !ex.State.Active() || stepIn(steps, StepApproval, StepWaiting) == nil {
		return QuorumState{}, false
	}
	required := 1
	if parse != nil && len(ex.Config) > 0 {
		if cfg, err := ExecutionConfig(parse, ex); err == nil {
			required = RequiredApprovals(cfg)
		}
	}
	return QuorumOf(required, events), true
}

// quorumNote is what an approval that opens under a quorum adds to its
// message ("; 2 distinct approvals needed"), or "" without one.
func (e *Engine) quorumNote(ex Execution) string {
	if e.ParseConfig == nil || len(ex.Config) == 0 {
		return ""
	}
	cfg, err := e.executionConfig(ex)
	if err != nil {
		return ""
	}
	if n := RequiredApprovals(cfg); n > 1 {
		return fmt.Sprintf("; %d distinct approvals needed", n)
	}
	return ""
}
