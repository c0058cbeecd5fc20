package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// The latest policy of each program (migration 0009).
const (
	pgUpsertLatestPolicy = `INSERT INTO latest_policies (program_id, branch, commit_sha, raw) VALUES ($1, $2, $3, $4)
ON CONFLICT (program_id) DO UPDATE SET branch = excluded.branch, commit_sha = excluded.commit_sha, raw = excluded.raw`
	pgSelectLatestPolicy = `SELECT branch, commit_sha, raw FROM latest_policies WHERE program_id = $1`
)

// SetLatestPolicy records p as the program's latest policy (checked, and
// the program locked: see checkedTx).
func (t *postgresTx) SetLatestPolicy(ctx context.Context, programID int64, p bot.Policy) error {
	if _, err := t.exec(ctx, pgUpsertLatestPolicy, programID, p.Branch, p.Commit, p.Raw); err != nil {
		return fmt.Errorf("set the latest policy of program %d: %w", programID, err)
	}
	return nil
}

// LatestPolicy returns the program's latest policy, the zero Policy when
// none was recorded.
func (t *postgresTx) LatestPolicy(ctx context.Context, programID int64) (bot.Policy, error) {
	var p bot.Policy
	err := t.queryRow(ctx, pgSelectLatestPolicy, programID).Scan(&p.Branch, &p.Commit, &p.Raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Policy{}, nil
	}
	if err != nil {
		return bot.Policy{}, fmt.Errorf("the latest policy of program %d: %w", programID, err)
	}
	return p, nil
}
