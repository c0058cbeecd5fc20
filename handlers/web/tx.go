package web

import (
	"context"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// readTx is what the pages and the API read: programs, their pipelines and
// executions with their detail, deployments, variables and trigger records.
// They write nothing (sign-in's sessions aside: bot.SessionTx).
type readTx interface {
	bot.ExecutionReader
	bot.DetailReader
	bot.HistoryReader
	Programs(ctx context.Context) ([]bot.Program, error)
	ProgramByName(ctx context.Context, owner, repo string) (bot.Program, error)
	Pipelines(ctx context.Context, programID int64) ([]bot.Pipeline, error)
	TriggerRecords(ctx context.Context, programID int64, commit string) ([]bot.TriggerRecord, error)
	AuditRecords(ctx context.Context, f bot.AuditFilter) ([]bot.AuditRecord, error)
	NotificationsOf(ctx context.Context, executionID int64) ([]bot.Notification, error)
	PrunedAt(ctx context.Context, digests []string) (map[string]time.Time, error)
}

// view runs fn in a read-only transaction of d's store, seen as a readTx.
func (d *Dashboard) view(ctx context.Context, fn func(tx readTx) error) error {
	return d.Store.View(ctx, func(tx bot.Tx) error { return fn(tx) })
}
