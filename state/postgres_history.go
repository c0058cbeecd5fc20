package state

import (
	"context"
	"strconv"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// EnvironmentHistory lists a page of an environment's deploys (history.go).
func (t *postgresTx) EnvironmentHistory(ctx context.Context, q bot.HistoryQuery) ([]bot.EnvironmentDeployment, error) {
	return environmentHistory(ctx, postgresHistory(t), q)
}

// postgresHistory writes the history's queries for PostgreSQL: $n
// placeholders, TIMESTAMPTZ times.
func postgresHistory(t *postgresTx) historyDialect {
	arg := func(args *[]any, v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	return historyDialect{
		arg:  arg,
		time: func(args *[]any, tt time.Time) string { return arg(args, pgTime(micro(tt))) + "::timestamptz" },
		in: func(args *[]any, column string, ids []int64) string {
			return column + " = ANY(" + arg(args, ids) + "::bigint[])"
		},
		timeDest: func(tt *time.Time) any { return pgTimeDest{tt} },
		query: func(ctx context.Context, query string, args []any, scan func(rowScanner) error) error {
			_, err := queryAll(ctx, t, query, args, func(row rowScanner) (struct{}, error) { return struct{}{}, scan(row) })
			return err
		},
	}
}
