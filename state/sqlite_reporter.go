package state

import (
	"context"
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// Reporter versions. Every change to an execution, its steps or its events
// bumps its version and stamps changed_at with the store's clock; the
// reporter brings the executions whose version is ahead of reported_version
// to GitHub, those waiting longest first, and records the version it
// reported. The Postgres port writes GREATEST for SQLite's two-argument max.
const (
	bumpExecutionVersion = `UPDATE executions SET version = version + 1, changed_at = ? WHERE id = ?`
	// selectExecutionsToReport matches the partial index executions_to_report
	// (its WHERE term must stay as written for SQLite to use the index); a
	// limit is appended by ExecutionsToReport.
	selectExecutionsToReport = `SELECT ` + executionColumns + ` FROM executions
WHERE version > reported_version ORDER BY changed_at, id`
	markExecutionReported = `UPDATE executions SET reported_version = max(reported_version, ?) WHERE id = ?`
)

// bumpVersion bumps the version of execution id, or returns ErrNotFound.
func (t *sqliteTx) bumpVersion(ctx context.Context, id int64) error {
	res, err := t.tx.ExecContext(ctx, bumpExecutionVersion, dbTime(t.now()), id)
	if err != nil {
		return fmt.Errorf("bump version of execution %d: %w", id, err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return fmt.Errorf("bump version of execution %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("execution %d: %w", id, bot.ErrNotFound)
	}
	t.changed = true
	return nil
}

// ExecutionsToReport lists the executions whose Version is ahead of their
// ReportedVersion, the one changed longest ago first (by the store's clock;
// ties in creation order), at most limit of them; a limit of 0 or less
// lists them all.
func (t *sqliteTx) ExecutionsToReport(ctx context.Context, limit int) ([]bot.Execution, error) {
	query, args := selectExecutionsToReport, []any(nil)
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	}
	es, err := sqliteQueryAll(ctx, t, query, args, scanExecution)
	if err != nil {
		return nil, fmt.Errorf("executions to report: %w", err)
	}
	return es, nil
}

// MarkReported records that version of execution executionID was brought to
// GitHub. ReportedVersion never moves backwards: an older version, marked
// late by a slower reporter, changes nothing.
func (t *sqliteTx) MarkReported(ctx context.Context, executionID, version int64) error {
	res, err := t.tx.ExecContext(ctx, markExecutionReported, version, executionID)
	if err != nil {
		return fmt.Errorf("mark execution %d reported at version %d: %w", executionID, version, err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return fmt.Errorf("mark execution %d reported at version %d: %w", executionID, version, err)
	}
	if n == 0 {
		return fmt.Errorf("execution %d: %w", executionID, bot.ErrNotFound)
	}
	return nil
}

// Touch bumps an execution's Version without changing anything else.
func (t *sqliteTx) Touch(ctx context.Context, executionID int64) error {
	if err := t.bumpVersion(ctx, executionID); err != nil {
		return fmt.Errorf("touch: %w", err)
	}
	return nil
}

// GitHub refs.
const (
	selectGitHubRefs = `SELECT execution_id, ref_key, github_id, reported FROM github_refs
WHERE execution_id = ? ORDER BY ref_key`
	upsertGitHubRef = `INSERT INTO github_refs (execution_id, ref_key, github_id, reported) VALUES (?, ?, ?, ?)
ON CONFLICT (execution_id, ref_key) DO UPDATE SET github_id = excluded.github_id, reported = excluded.reported`
)

// GitHubRefs returns an execution's refs ordered by key; none for an
// execution without refs, or no such execution.
func (t *sqliteTx) GitHubRefs(ctx context.Context, executionID int64) ([]bot.GitHubRef, error) {
	rs, err := sqliteQueryAll(ctx, t, selectGitHubRefs, []any{executionID}, func(row rowScanner) (bot.GitHubRef, error) {
		var r bot.GitHubRef
		err := row.Scan(&r.ExecutionID, &r.Key, &r.GitHubID, &r.Reported)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("github refs of execution %d: %w", executionID, err)
	}
	return rs, nil
}

// PutGitHubRef stores r, replacing the ref of (r.ExecutionID, r.Key). It
// does not bump the execution's Version: the reporter writes refs while it
// reports, and must not make its own work.
func (t *sqliteTx) PutGitHubRef(ctx context.Context, r bot.GitHubRef) error {
	if _, err := t.tx.ExecContext(ctx, upsertGitHubRef, r.ExecutionID, r.Key, r.GitHubID, r.Reported); err != nil {
		return fmt.Errorf("put github ref %s of execution %d: %w", r.Key, r.ExecutionID, err)
	}
	return nil
}
