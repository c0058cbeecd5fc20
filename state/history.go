package state

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// An environment's history (bot.HistoryReader), for both stores: the
// queries are the same but for how each store writes its arguments and
// reads its times (historyDialect).

// historyDialect is how one store writes the history's queries.
type historyDialect struct {
	// placeholder is the text of the n-th argument (from 1).
	placeholder func(n int) string
	// timeArg is a time as an argument; timeCast follows its placeholder.
	timeArg  func(t time.Time) any
	timeCast string
	// ids are execution ids as arguments (one each, or one array) and
	// whether the condition on them is "= ANY(…)" rather than "IN (…)".
	ids   func(ids []int64) []any
	array bool
	// timeDest scans a time column into t.
	timeDest func(t *time.Time) any
	// query runs a query; scan reads each row.
	query func(ctx context.Context, query string, args []any, scan func(rowScanner) error) error
}

// args collects a query's arguments, each given the dialect's placeholder.
type historyArgs struct {
	d    historyDialect
	list []any
}

func (a *historyArgs) add(v any) string {
	a.list = append(a.list, v)
	return a.d.placeholder(len(a.list))
}

func (a *historyArgs) time(t time.Time) string { return a.add(a.d.timeArg(t)) + a.d.timeCast }

// in is the condition "column is one of ids".
func (a *historyArgs) in(column string, ids []int64) string {
	var marks []string
	for _, v := range a.d.ids(ids) {
		marks = append(marks, a.add(v))
	}
	if a.d.array {
		return column + " = ANY(" + strings.Join(marks, ", ") + ")"
	}
	return column + " IN (" + strings.Join(marks, ", ") + ")"
}

// historyStarted says which deploy steps ran: given to a worker (running,
// then succeeded or failed), or cancelled after their command started. A
// deploy held by its windows, or cancelled while it waited, never did.
const historyStarted = `s.started_at IS NOT NULL AND (s.state IN ('running', 'succeeded', 'failed') OR s.attempt > 0)`

const selectHistory = `SELECT e.id, e.number, e.pipeline, e.commit_sha, e.artifact_digest, COALESCE(src.number, 0),
    COALESCE(src.state, e.state), e.cause, e.triggered_by, s.state, s.message, s.started_at, s.finished_at
FROM steps s
JOIN executions e ON e.id = s.execution_id
LEFT JOIN executions src ON src.id = e.source_id
WHERE `

// environmentHistory reads a page of q.Environment's history with the
// approvals of its executions.
func environmentHistory(ctx context.Context, d historyDialect, q bot.HistoryQuery) ([]bot.EnvironmentDeployment, error) {
	step := bot.DeployStepOf(q.Environment)
	args := &historyArgs{d: d}
	conds := []string{"e.program_id = " + args.add(q.ProgramID), "s.name = " + args.add(string(step)), historyStarted}
	order := "DESC"
	switch {
	case !q.Before.IsZero():
		conds = append(conds, "(s.started_at, e.id) < ("+args.time(q.Before.StartedAt)+", "+args.add(q.Before.ExecutionID)+")")
	case !q.After.IsZero():
		conds = append(conds, "(s.started_at, e.id) > ("+args.time(q.After.StartedAt)+", "+args.add(q.After.ExecutionID)+")")
		order = "ASC" // the Limit just above After, turned newest first below
	}
	query := selectHistory + strings.Join(conds, " AND ") + " ORDER BY s.started_at " + order + ", e.id " + order
	if q.Limit > 0 {
		query += " LIMIT " + args.add(q.Limit)
	}
	var out []bot.EnvironmentDeployment
	err := d.query(ctx, query, args.list, func(row rowScanner) error {
		h := bot.EnvironmentDeployment{Environment: q.Environment}
		err := row.Scan(&h.ExecutionID, &h.Number, &h.Pipeline, &h.Commit, &h.ArtifactDigest, &h.SourceNumber,
			&h.BuildState, &h.Cause, &h.TriggeredBy, &h.Outcome, &h.Message, d.timeDest(&h.StartedAt), d.timeDest(&h.FinishedAt))
		out = append(out, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s of program %d: %w", q.Environment, q.ProgramID, err)
	}
	if order == "ASC" {
		slices.Reverse(out)
	}
	if err := historyApprovals(ctx, d, out); err != nil {
		return nil, fmt.Errorf("history of %s of program %d: approvals: %w", q.Environment, q.ProgramID, err)
	}
	return out, nil
}

// historyApprovals adds each deploy's approval events, in the order they
// were recorded.
func historyApprovals(ctx context.Context, d historyDialect, hs []bot.EnvironmentDeployment) error {
	if len(hs) == 0 {
		return nil
	}
	ids := make([]int64, len(hs))
	at := map[int64][]int{}
	for i, h := range hs {
		ids[i] = h.ExecutionID
		at[h.ExecutionID] = append(at[h.ExecutionID], i)
	}
	args := &historyArgs{d: d}
	query := `SELECT execution_id, occurred_at, actor, kind, detail FROM execution_events WHERE ` + args.in("execution_id", ids)
	kinds := make([]string, len(bot.ApprovalEventKinds))
	for i, k := range bot.ApprovalEventKinds {
		kinds[i] = args.add(string(k)) // after the ids: placeholders in the order of the text
	}
	query += ` AND kind IN (` + strings.Join(kinds, ", ") + `) ORDER BY id`
	return d.query(ctx, query, args.list, func(row rowScanner) error {
		var ev bot.Event
		if err := row.Scan(&ev.ExecutionID, d.timeDest(&ev.At), &ev.Actor, &ev.Kind, &ev.Detail); err != nil {
			return err
		}
		for _, i := range at[ev.ExecutionID] {
			hs[i].Approvals = append(hs[i].Approvals, ev)
		}
		return nil
	})
}

// EnvironmentHistory checks the query (a known environment, a limit that
// is not negative, at most one of Before and After) for both stores.
func (t checkedTx) EnvironmentHistory(ctx context.Context, q bot.HistoryQuery) ([]bot.EnvironmentDeployment, error) {
	if err := checkEnvironment(q.Environment); err != nil {
		return nil, fmt.Errorf("history of program %d: %w", q.ProgramID, err)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("history of %s of program %d: negative limit %d", q.Environment, q.ProgramID, q.Limit)
	}
	if !q.Before.IsZero() && !q.After.IsZero() {
		return nil, fmt.Errorf("history of %s of program %d: both before and after a position", q.Environment, q.ProgramID)
	}
	return t.storeTx.EnvironmentHistory(ctx, q)
}
