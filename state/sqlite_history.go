package state

import (
	"context"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// EnvironmentHistory lists a page of an environment's deploys (history.go):
// ? placeholders, times as unix nanoseconds.
func (t *sqliteTx) EnvironmentHistory(ctx context.Context, q bot.HistoryQuery) ([]bot.EnvironmentDeployment, error) {
	return environmentHistory(ctx, historyDialect{
		placeholder: func(int) string { return "?" },
		timeArg:     func(tt time.Time) any { return dbTime(tt) },
		ids: func(ids []int64) []any {
			out := make([]any, len(ids))
			for i, id := range ids {
				out[i] = id
			}
			return out
		},
		timeDest: func(tt *time.Time) any { return timeDest{tt} },
		query: func(ctx context.Context, query string, args []any, scan func(rowScanner) error) error {
			_, err := sqliteQueryAll(ctx, t, query, args, func(row rowScanner) (struct{}, error) { return struct{}{}, scan(row) })
			return err
		},
	}, q)
}
