package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// The latest policy of each program (migration 0012).
const (
	upsertLatestPolicy = `INSERT INTO latest_policies (program_id, branch, commit_sha, raw) VALUES (?, ?, ?, ?)
ON CONFLICT (program_id) DO UPDATE SET branch = excluded.branch, commit_sha = excluded.commit_sha, raw = excluded.raw`
	selectLatestPolicy = `SELECT branch, commit_sha, raw FROM latest_policies WHERE program_id = ?`
)

// SetLatestPolicy records p as the program's latest policy (checked: see
// checkedTx).
func (t *sqliteTx) SetLatestPolicy(ctx context.Context, programID int64, p bot.Policy) error {
	if _, err := t.tx.ExecContext(ctx, upsertLatestPolicy, programID, p.Branch, p.Commit, p.Raw); err != nil {
		return fmt.Errorf("set the latest policy of program %d: %w", programID, err)
	}
	return nil
}

// LatestPolicy returns the program's latest policy, the zero Policy when
// none was recorded.
func (t *sqliteTx) LatestPolicy(ctx context.Context, programID int64) (bot.Policy, error) {
	var p bot.Policy
	err := t.tx.QueryRowContext(ctx, selectLatestPolicy, programID).Scan(&p.Branch, &p.Commit, &p.Raw)
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Policy{}, nil
	}
	if err != nil {
		return bot.Policy{}, fmt.Errorf("the latest policy of program %d: %w", programID, err)
	}
	return p, nil
}
