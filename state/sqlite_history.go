package state

import (
	"context"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// EnvironmentHistory lists a page of an environment's deploys (history.go).
func (t *sqliteTx) EnvironmentHistory(ctx context.Context, q bot.HistoryQuery) ([]bot.EnvironmentDeployment, error) {
	return environmentHistory(ctx, sqliteHistory(t), q)
}

// sqliteHistory writes the history's queries for SQLite: ? placeholders,
// times as unix nanoseconds.
func sqliteHistory(t *sqliteTx) historyDialect {
	arg := func(args *[]any, v any) string {
		*args = append(*args, v)
		return "?"
	}
	return historyDialect{
		arg:  arg,
		time: func(args *[]any, tt time.Time) string { return arg(args, dbTime(tt)) },
		in: func(args *[]any, column string, ids []int64) string {
			marks := make([]string, len(ids))
			for i, id := range ids {
				marks[i] = arg(args, id)
			}
			return column + " IN (" + strings.Join(marks, ", ") + ")"
		},
		timeDest: func(tt *time.Time) any { return timeDest{tt} },
		query: func(ctx context.Context, query string, args []any, scan func(rowScanner) error) error {
			_, err := sqliteQueryAll(ctx, t, query, args, func(row rowScanner) (struct{}, error) { return struct{}{}, scan(row) })
			return err
		},
	}
}
