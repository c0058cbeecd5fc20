package state

import (
	"context"
	"strconv"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// EnvironmentHistory lists a page of an environment's deploys (history.go):
// $n placeholders, TIMESTAMPTZ times, the ids as one array.
func (t *postgresTx) EnvironmentHistory(ctx context.Context, q bot.HistoryQuery) ([]bot.EnvironmentDeployment, error) {
	return environmentHistory(ctx, historyDialect{
		placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
		timeArg:     func(tt time.Time) any { return pgTime(micro(tt)) },
		timeCast:    "::timestamptz",
		ids:         func(ids []int64) []any { return []any{ids} },
		array:       true,
		timeDest:    func(tt *time.Time) any { return pgTimeDest{tt} },
		query: func(ctx context.Context, query string, args []any, scan func(rowScanner) error) error {
			_, err := queryAll(ctx, t, query, args, func(row rowScanner) (struct{}, error) { return struct{}{}, scan(row) })
			return err
		},
	}, q)
}
