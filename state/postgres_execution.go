package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// Executions. executionColumns is the SQLite store's.
const (
	pgNextExecutionNumber = `SELECT COALESCE(MAX(number), 0) + 1 FROM executions WHERE program_id = $1`
	pgInsertExecution     = `INSERT INTO executions (program_id, number, pipeline, commit_sha, branch, state, message, cause,
    triggered_by, delivery_id, source_id, config, artifact_digest, scheduled_at, rollback_reason,
    created_at, started_at, finished_at, version, reported_version, changed_at, policy)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, 0, $19, $20)
RETURNING id`
	pgSelectExecution         = `SELECT ` + executionColumns + ` FROM executions WHERE id = $1`
	pgSelectExecutionByNumber = `SELECT ` + executionColumns + ` FROM executions WHERE program_id = $1 AND number = $2`
	// pgSelectExecutions is completed by Executions with the filter's
	// conditions, the order and the limit.
	pgSelectExecutions = `SELECT ` + executionColumns + ` FROM executions`
	pgUpdateExecution  = `UPDATE executions SET commit_sha = $1, branch = $2, state = $3, message = $4, cause = $5,
    triggered_by = $6, delivery_id = $7, source_id = $8, config = $9, artifact_digest = $10, scheduled_at = $11,
    rollback_reason = $12, started_at = $13, finished_at = $14, version = version + 1, changed_at = $15
WHERE id = $16`
)

func pgScanExecution(row rowScanner) (bot.Execution, error) {
	var e bot.Execution
	err := row.Scan(&e.ID, &e.ProgramID, &e.Number, &e.Pipeline, &e.Commit, &e.Branch, &e.State, &e.Message, &e.Cause,
		&e.TriggeredBy, &e.DeliveryID, pgIDDest{&e.SourceID},
		&e.Config, &e.ArtifactDigest, pgTimeDest{&e.ScheduledAt}, &e.Rollback,
		pgTimeDest{&e.CreatedAt}, pgTimeDest{&e.StartedAt}, pgTimeDest{&e.FinishedAt}, &e.Version, &e.ReportedVersion,
		&e.Policy)
	if len(e.Config) == 0 {
		e.Config = nil
	}
	if len(e.Policy) == 0 {
		e.Policy = nil
	}
	return e, err
}

// CreateExecution stores e as the next execution of its program, with one
// pending step per bot.StepsOf(e.Pipeline). It locks the program's row
// first, so the number (the program's highest plus one) is read after every
// earlier creation committed: two creations never share one. A zero
// CreatedAt becomes the store's clock time. An empty Config is kept as none
// and comes back nil; times come back to the microsecond. The store owns
// Version and ReportedVersion: the new execution has Version 1 and
// ReportedVersion 0, whatever e says, so the reporter sees it.
func (t *postgresTx) CreateExecution(ctx context.Context, e bot.Execution) (bot.Execution, error) {
	steps := bot.StepsOf(e.Pipeline)
	if err := t.queryRow(ctx, pgNextExecutionNumber, e.ProgramID).Scan(&e.Number); err != nil {
		return bot.Execution{}, fmt.Errorf("create execution of program %d: number: %w", e.ProgramID, err)
	}
	e.CreatedAt, e.ScheduledAt = micro(e.CreatedAt), micro(e.ScheduledAt)
	e.StartedAt, e.FinishedAt = micro(e.StartedAt), micro(e.FinishedAt)
	err := t.queryRow(ctx, pgInsertExecution, e.ProgramID, e.Number, string(e.Pipeline), e.Commit, e.Branch,
		string(e.State), e.Message, string(e.Cause), e.TriggeredBy, e.DeliveryID, pgID(e.SourceID),
		pgBytes(e.Config), e.ArtifactDigest, pgTime(e.ScheduledAt), e.Rollback,
		e.CreatedAt, pgTime(e.StartedAt), pgTime(e.FinishedAt), t.now(), pgBytes(e.Policy)).Scan(&e.ID)
	if err != nil {
		return bot.Execution{}, fmt.Errorf("create execution %s of program %d: %w", e, e.ProgramID, err)
	}
	t.rememberExecution(e.ID, e.ProgramID)
	names := make([]string, len(steps))
	for i, name := range steps {
		names[i] = string(name)
	}
	if _, err := t.exec(ctx, pgInsertSteps, e.ID, names, string(bot.StepPending)); err != nil {
		return bot.Execution{}, fmt.Errorf("create execution %s of program %d: steps: %w", e, e.ProgramID, err)
	}
	t.changed = true
	return e, nil
}

func (t *postgresTx) Execution(ctx context.Context, id int64) (bot.Execution, error) {
	if _, err := t.touchExecution(ctx, id); err != nil {
		return bot.Execution{}, fmt.Errorf("execution %d: %w", id, err)
	}
	e, err := pgScanExecution(t.queryRow(ctx, pgSelectExecution, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Execution{}, fmt.Errorf("execution %d: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Execution{}, fmt.Errorf("execution %d: %w", id, err)
	}
	return e, nil
}

func (t *postgresTx) ExecutionByNumber(ctx context.Context, programID int64, number int) (bot.Execution, error) {
	if err := t.touchProgram(ctx, programID); err != nil {
		return bot.Execution{}, fmt.Errorf("execution #%d of program %d: %w", number, programID, err)
	}
	e, err := pgScanExecution(t.queryRow(ctx, pgSelectExecutionByNumber, programID, number))
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Execution{}, fmt.Errorf("execution #%d of program %d: %w", number, programID, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Execution{}, fmt.Errorf("execution #%d of program %d: %w", number, programID, err)
	}
	return e, nil
}

// Executions lists the executions f selects, the newest (last created)
// first. A zero ProgramID selects every program's executions; in an Update
// a ProgramID locks that program first.
func (t *postgresTx) Executions(ctx context.Context, f bot.ExecutionFilter) ([]bot.Execution, error) {
	if err := t.touchProgram(ctx, f.ProgramID); err != nil {
		return nil, fmt.Errorf("executions %+v: %w", f, err)
	}
	query, args := pgExecutionsQuery(f)
	es, err := queryAll(ctx, t, query, args, pgScanExecution)
	if err != nil {
		return nil, fmt.Errorf("executions %+v: %w", f, err)
	}
	return es, nil
}

// pgExecutionsQuery builds the query of Executions for f.
func pgExecutionsQuery(f bot.ExecutionFilter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.ProgramID != 0 {
		conds = append(conds, "program_id = "+arg(f.ProgramID))
	}
	if f.Pipeline != "" {
		conds = append(conds, "pipeline = "+arg(string(f.Pipeline)))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		conds = append(conds, "state = ANY("+arg(states)+"::text[])")
	}
	query := pgSelectExecutions
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += " ORDER BY id DESC"
	if f.Limit > 0 {
		query += " LIMIT " + arg(f.Limit)
	}
	return query, args
}

// UpdateExecution writes e over the stored execution e.ID. The program,
// number, pipeline and creation time of an execution never change, so those
// fields of e are not written; nor are Version and ReportedVersion, which the
// store owns: it bumps Version.
func (t *postgresTx) UpdateExecution(ctx context.Context, e bot.Execution) error {
	if _, err := t.touchExecution(ctx, e.ID); err != nil {
		return fmt.Errorf("update execution %d: %w", e.ID, err)
	}
	n, err := t.exec(ctx, pgUpdateExecution, e.Commit, e.Branch, string(e.State), e.Message, string(e.Cause),
		e.TriggeredBy, e.DeliveryID, pgID(e.SourceID), pgBytes(e.Config), e.ArtifactDigest, pgTime(e.ScheduledAt),
		e.Rollback, pgTime(e.StartedAt), pgTime(e.FinishedAt), t.now(), e.ID)
	if err != nil {
		return fmt.Errorf("update execution %d: %w", e.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("execution %d: %w", e.ID, bot.ErrNotFound)
	}
	t.changed = true
	return nil
}

// Steps.
const (
	// pgInsertSteps inserts the steps of a new execution, pending, in the
	// order of the names in $2.
	pgInsertSteps = `INSERT INTO steps (execution_id, name, position, state, message, attempt, lease_until, log_tail,
    started_at, finished_at)
SELECT $1, s.name, s.position - 1, $3, '', 0, NULL, '', NULL, NULL
FROM unnest($2::text[]) WITH ORDINALITY AS s (name, position)`
	pgSelectSteps = `SELECT execution_id, name, state, message, attempt, lease_until, log_tail, started_at, finished_at
FROM steps WHERE execution_id = $1 ORDER BY position`
	pgUpdateStep = `UPDATE steps SET state = $1, message = $2, attempt = $3, lease_until = $4, log_tail = $5,
    started_at = $6, finished_at = $7
WHERE execution_id = $8 AND name = $9`
)

// Steps returns the execution's steps in pipeline order. Every execution
// has steps, so none means no such execution: ErrNotFound.
func (t *postgresTx) Steps(ctx context.Context, executionID int64) ([]bot.Step, error) {
	if _, err := t.touchExecution(ctx, executionID); err != nil {
		return nil, fmt.Errorf("steps of execution %d: %w", executionID, err)
	}
	ss, err := queryAll(ctx, t, pgSelectSteps, []any{executionID}, func(row rowScanner) (bot.Step, error) {
		var s bot.Step
		err := row.Scan(&s.ExecutionID, &s.Name, &s.State, &s.Message, &s.Attempt, pgTimeDest{&s.LeaseUntil}, &s.LogTail,
			pgTimeDest{&s.StartedAt}, pgTimeDest{&s.FinishedAt})
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("steps of execution %d: %w", executionID, err)
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("steps of execution %d: %w", executionID, bot.ErrNotFound)
	}
	return ss, nil
}

// UpdateStep writes s over the step s.Name of execution s.ExecutionID (the
// execution's Version is bumped by checkedTx).
func (t *postgresTx) UpdateStep(ctx context.Context, s bot.Step) error {
	if _, err := t.touchExecution(ctx, s.ExecutionID); err != nil {
		return fmt.Errorf("update step %s of execution %d: %w", s.Name, s.ExecutionID, err)
	}
	n, err := t.exec(ctx, pgUpdateStep, string(s.State), s.Message, s.Attempt, pgTime(s.LeaseUntil), s.LogTail,
		pgTime(s.StartedAt), pgTime(s.FinishedAt), s.ExecutionID, string(s.Name))
	if err != nil {
		return fmt.Errorf("update step %s of execution %d: %w", s.Name, s.ExecutionID, err)
	}
	if n == 0 {
		return fmt.Errorf("step %s of execution %d: %w", s.Name, s.ExecutionID, bot.ErrNotFound)
	}
	return nil
}

// Trigger records.
const (
	pgInsertTriggerRecord = `INSERT INTO trigger_records (program_id, delivery_id, commit_sha, branch, pipeline,
    execution_id, reason_code, reason, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	pgSelectTriggerRecords = `SELECT program_id, delivery_id, commit_sha, branch, pipeline, execution_id, reason_code, reason, created_at
FROM trigger_records WHERE program_id = $1 AND commit_sha = $2 ORDER BY id`
)

// AddTriggerRecord stores r.
func (t *postgresTx) AddTriggerRecord(ctx context.Context, r bot.TriggerRecord) error {
	_, err := t.exec(ctx, pgInsertTriggerRecord, r.ProgramID, r.DeliveryID, r.Commit, r.Branch, string(r.Pipeline),
		pgID(r.ExecutionID), string(r.Code), r.Reason, r.CreatedAt)
	if err != nil {
		return fmt.Errorf("add trigger record of program %d at %s: %w", r.ProgramID, r.Commit, err)
	}
	return nil
}

// TriggerRecords returns the records of a commit in the order they were added.
func (t *postgresTx) TriggerRecords(ctx context.Context, programID int64, commit string) ([]bot.TriggerRecord, error) {
	if err := t.touchProgram(ctx, programID); err != nil {
		return nil, fmt.Errorf("trigger records of program %d at %s: %w", programID, commit, err)
	}
	rs, err := queryAll(ctx, t, pgSelectTriggerRecords, []any{programID, commit}, func(row rowScanner) (bot.TriggerRecord, error) {
		var r bot.TriggerRecord
		err := row.Scan(&r.ProgramID, &r.DeliveryID, &r.Commit, &r.Branch, &r.Pipeline, pgIDDest{&r.ExecutionID},
			&r.Code, &r.Reason, pgTimeDest{&r.CreatedAt})
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("trigger records of program %d at %s: %w", programID, commit, err)
	}
	return rs, nil
}

// Reporter versions: as in the SQLite store, every change to an execution,
// its steps or its events bumps its version and stamps changed_at with the
// store's clock; the reporter takes the executions whose version is ahead of
// reported_version, those waiting longest first.
const (
	pgBumpExecutionVersion = `UPDATE executions SET version = version + 1, changed_at = $1 WHERE id = $2`
	// pgSelectExecutionsToReport matches the partial index
	// executions_to_report (its WHERE term must stay as written for the
	// planner to use the index); a limit is appended by ExecutionsToReport.
	pgSelectExecutionsToReport = `SELECT ` + executionColumns + ` FROM executions
WHERE version > reported_version ORDER BY changed_at, id`
	pgMarkExecutionReported = `UPDATE executions SET reported_version = GREATEST(reported_version, $1) WHERE id = $2`
)

// bumpVersion bumps the version of execution id, or returns ErrNotFound.
func (t *postgresTx) bumpVersion(ctx context.Context, id int64) error {
	n, err := t.exec(ctx, pgBumpExecutionVersion, t.now(), id)
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
// lists them all. It locks nothing.
func (t *postgresTx) ExecutionsToReport(ctx context.Context, limit int) ([]bot.Execution, error) {
	query, args := pgSelectExecutionsToReport, []any(nil)
	if limit > 0 {
		query += " LIMIT $1"
		args = append(args, limit)
	}
	es, err := queryAll(ctx, t, query, args, pgScanExecution)
	if err != nil {
		return nil, fmt.Errorf("executions to report: %w", err)
	}
	return es, nil
}

// MarkReported records that version of execution executionID was brought to
// GitHub. ReportedVersion never moves backwards: an older version, marked
// late by a slower reporter, changes nothing.
func (t *postgresTx) MarkReported(ctx context.Context, executionID, version int64) error {
	if _, err := t.touchExecution(ctx, executionID); err != nil {
		return fmt.Errorf("mark execution %d reported at version %d: %w", executionID, version, err)
	}
	n, err := t.exec(ctx, pgMarkExecutionReported, version, executionID)
	if err != nil {
		return fmt.Errorf("mark execution %d reported at version %d: %w", executionID, version, err)
	}
	if n == 0 {
		return fmt.Errorf("execution %d: %w", executionID, bot.ErrNotFound)
	}
	return nil
}

// Touch bumps an execution's Version without changing anything else.
func (t *postgresTx) Touch(ctx context.Context, executionID int64) error {
	if _, err := t.touchExecution(ctx, executionID); err != nil {
		return fmt.Errorf("touch: %w", err)
	}
	if err := t.bumpVersion(ctx, executionID); err != nil {
		return fmt.Errorf("touch: %w", err)
	}
	return nil
}

// GitHub refs.
const (
	pgSelectGitHubRefs = `SELECT execution_id, ref_key, github_id, reported FROM github_refs
WHERE execution_id = $1 ORDER BY ref_key`
	pgUpsertGitHubRef = `INSERT INTO github_refs (execution_id, ref_key, github_id, reported) VALUES ($1, $2, $3, $4)
ON CONFLICT (execution_id, ref_key) DO UPDATE SET github_id = excluded.github_id, reported = excluded.reported`
)

// GitHubRefs returns an execution's refs ordered by key (byte order, the
// column's collation is "C"); none for an execution without refs, or no
// such execution.
func (t *postgresTx) GitHubRefs(ctx context.Context, executionID int64) ([]bot.GitHubRef, error) {
	if _, err := t.touchExecution(ctx, executionID); err != nil {
		return nil, fmt.Errorf("github refs of execution %d: %w", executionID, err)
	}
	rs, err := queryAll(ctx, t, pgSelectGitHubRefs, []any{executionID}, func(row rowScanner) (bot.GitHubRef, error) {
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
func (t *postgresTx) PutGitHubRef(ctx context.Context, r bot.GitHubRef) error {
	if _, err := t.exec(ctx, pgUpsertGitHubRef, r.ExecutionID, r.Key, r.GitHubID, r.Reported); err != nil {
		return fmt.Errorf("put github ref %s of execution %d: %w", r.Key, r.ExecutionID, err)
	}
	return nil
}
