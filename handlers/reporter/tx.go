package reporter

import (
	"context"

	"github.com/stagehand-dev/stagehand/bot"
)

// Tx is what the reporter reads and writes in its transactions: its own
// bookkeeping (the versions to report, the GitHub ids, the lease) and what
// it renders (an execution's detail, its program's pipelines, the latest
// promotable execution).
type Tx interface {
	bot.ReportTx
	bot.DetailReader
	bot.HistoryReader // production's history: is it pinned by a restore
	Pipelines(ctx context.Context, programID int64) ([]bot.Pipeline, error)
	Executions(ctx context.Context, f bot.ExecutionFilter) ([]bot.Execution, error)
}

// view runs fn in a read-only transaction of r's store, seen as a Tx.
func (r *Reporter) view(ctx context.Context, fn func(tx Tx) error) error {
	return r.Store.View(ctx, func(tx bot.Tx) error { return fn(tx) })
}

// update runs fn in a transaction of r's store, seen as a Tx.
func (r *Reporter) update(ctx context.Context, fn func(tx Tx) error) error {
	return r.Store.Update(ctx, func(tx bot.Tx) error { return fn(tx) })
}
