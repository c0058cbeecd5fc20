package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

// Executions.
const (
	executionColumns = `id, program_id, number, pipeline, commit_sha, branch, state, message, cause,
    triggered_by, delivery_id, source_id, config, artifact_digest, scheduled_at, rollback_reason,
    created_at, started_at, finished_at, version, reported_version, policy`
	nextExecutionNumber = `SELECT COALESCE(MAX(number), 0) + 1 FROM executions WHERE program_id = ?`
	insertExecution     = `INSERT INTO executions (program_id, number, pipeline, commit_sha, branch, state, message, cause,
    triggered_by, delivery_id, source_id, config, artifact_digest, scheduled_at, rollback_reason,
    created_at, started_at, finished_at, version, reported_version, changed_at, policy)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?)
RETURNING id`
	selectExecution         = `SELECT ` + executionColumns + ` FROM executions WHERE id = ?`
	selectExecutionByNumber = `SELECT ` + executionColumns + ` FROM executions WHERE program_id = ? AND number = ?`
	// selectExecutions is completed by Executions with the filter's
	// conditions, the order and the limit.
	selectExecutions = `SELECT ` + executionColumns + ` FROM executions`
	updateExecution  = `UPDATE executions SET commit_sha = ?, branch = ?, state = ?, message = ?, cause = ?,
    triggered_by = ?, delivery_id = ?, source_id = ?, config = ?, artifact_digest = ?, scheduled_at = ?,
    rollback_reason = ?, started_at = ?, finished_at = ?, version = version + 1, changed_at = ?
WHERE id = ?`
)

func scanExecution(row rowScanner) (bot.Execution, error) {
	var e bot.Execution
	err := row.Scan(&e.ID, &e.ProgramID, &e.Number, &e.Pipeline, &e.Commit, &e.Branch, &e.State, &e.Message, &e.Cause,
		&e.TriggeredBy, &e.DeliveryID, idDest{&e.SourceID},
		bytesDest{&e.Config}, &e.ArtifactDigest, timeDest{&e.ScheduledAt}, &e.Rollback,
		timeDest{&e.CreatedAt}, timeDest{&e.StartedAt}, timeDest{&e.FinishedAt}, &e.Version, &e.ReportedVersion,
		bytesDest{&e.Policy})
	return e, err
}

// CreateExecution stores e as the next execution of its program, with one
// pending step per bot.StepsOf(e.Pipeline) (checked: see checkedTx). The
// number is chosen inside the transaction, so two creations never share one.
func (t *sqliteTx) CreateExecution(ctx context.Context, e bot.Execution) (bot.Execution, error) {
	if err := t.tx.QueryRowContext(ctx, nextExecutionNumber, e.ProgramID).Scan(&e.Number); err != nil {
		return bot.Execution{}, fmt.Errorf("create execution of program %d: number: %w", e.ProgramID, err)
	}
	err := t.tx.QueryRowContext(ctx, insertExecution, e.ProgramID, e.Number, e.Pipeline, e.Commit, e.Branch, e.State,
		e.Message, e.Cause, e.TriggeredBy, e.DeliveryID, dbID(e.SourceID),
		dbBytes(e.Config), e.ArtifactDigest, dbTime(e.ScheduledAt), e.Rollback,
		dbTime(e.CreatedAt), dbTime(e.StartedAt), dbTime(e.FinishedAt), dbTime(t.now()), dbBytes(e.Policy)).Scan(&e.ID)
	if err != nil {
		return bot.Execution{}, fmt.Errorf("create execution %s of program %d: %w", e, e.ProgramID, err)
	}
	for i, name := range bot.StepsOf(e.Pipeline) {
		if _, err := t.tx.ExecContext(ctx, insertStep, e.ID, name, i, bot.StepPending); err != nil {
			return bot.Execution{}, fmt.Errorf("create execution %s of program %d: step %s: %w", e, e.ProgramID, name, err)
		}
	}
	t.changed = true
	return e, nil
}

func (t *sqliteTx) Execution(ctx context.Context, id int64) (bot.Execution, error) {
	e, err := scanExecution(t.tx.QueryRowContext(ctx, selectExecution, id))
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Execution{}, fmt.Errorf("execution %d: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Execution{}, fmt.Errorf("execution %d: %w", id, err)
	}
	return e, nil
}

func (t *sqliteTx) ExecutionByNumber(ctx context.Context, programID int64, number int) (bot.Execution, error) {
	e, err := scanExecution(t.tx.QueryRowContext(ctx, selectExecutionByNumber, programID, number))
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Execution{}, fmt.Errorf("execution #%d of program %d: %w", number, programID, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Execution{}, fmt.Errorf("execution #%d of program %d: %w", number, programID, err)
	}
	return e, nil
}

// Executions lists the executions f selects, the newest (last created)
// first. A zero ProgramID selects every program's executions.
func (t *sqliteTx) Executions(ctx context.Context, f bot.ExecutionFilter) ([]bot.Execution, error) {
	query, args := executionsQuery(f)
	es, err := sqliteQueryAll(ctx, t, query, args, scanExecution)
	if err != nil {
		return nil, fmt.Errorf("executions %+v: %w", f, err)
	}
	return es, nil
}

// executionsQuery builds the query of Executions for f.
func executionsQuery(f bot.ExecutionFilter) (string, []any) {
	var conds []string
	var args []any
	if f.ProgramID != 0 {
		conds = append(conds, "program_id = ?")
		args = append(args, f.ProgramID)
	}
	if f.Pipeline != "" {
		conds = append(conds, "pipeline = ?")
		args = append(args, f.Pipeline)
	}
	if len(f.States) > 0 {
		conds = append(conds, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	query := selectExecutions
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += " ORDER BY id DESC"
	if f.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, f.Limit)
	}
	return query, args
}

// UpdateExecution writes e over the stored execution e.ID. The program,
// number, pipeline and creation time of an execution never change, so those
// fields of e are not written; nor are Version and ReportedVersion, which the
// store owns: it bumps Version.
func (t *sqliteTx) UpdateExecution(ctx context.Context, e bot.Execution) error {
	res, err := t.tx.ExecContext(ctx, updateExecution, e.Commit, e.Branch, e.State, e.Message, e.Cause,
		e.TriggeredBy, e.DeliveryID, dbID(e.SourceID), dbBytes(e.Config), e.ArtifactDigest, dbTime(e.ScheduledAt),
		e.Rollback, dbTime(e.StartedAt), dbTime(e.FinishedAt), dbTime(t.now()), e.ID)
	if err != nil {
		return fmt.Errorf("update execution %d: %w", e.ID, err)
	}
	n, err := rowsChanged(res)
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
	insertStep = `INSERT INTO steps (execution_id, name, position, state, message, attempt, lease_until, log_tail,
    started_at, finished_at)
VALUES (?, ?, ?, ?, '', 0, NULL, '', NULL, NULL)`
	selectSteps = `SELECT execution_id, name, state, message, attempt, lease_until, log_tail, started_at, finished_at
FROM steps WHERE execution_id = ? ORDER BY position`
	updateStep = `UPDATE steps SET state = ?, message = ?, attempt = ?, lease_until = ?, log_tail = ?,
    started_at = ?, finished_at = ?
WHERE execution_id = ? AND name = ?`
)

// Steps returns the execution's steps in pipeline order. Every execution
// has steps, so none means no such execution: ErrNotFound.
func (t *sqliteTx) Steps(ctx context.Context, executionID int64) ([]bot.Step, error) {
	ss, err := sqliteQueryAll(ctx, t, selectSteps, []any{executionID}, func(row rowScanner) (bot.Step, error) {
		var s bot.Step
		err := row.Scan(&s.ExecutionID, &s.Name, &s.State, &s.Message, &s.Attempt, timeDest{&s.LeaseUntil}, &s.LogTail,
			timeDest{&s.StartedAt}, timeDest{&s.FinishedAt})
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
func (t *sqliteTx) UpdateStep(ctx context.Context, s bot.Step) error {
	res, err := t.tx.ExecContext(ctx, updateStep, s.State, s.Message, s.Attempt, dbTime(s.LeaseUntil), s.LogTail,
		dbTime(s.StartedAt), dbTime(s.FinishedAt), s.ExecutionID, s.Name)
	if err != nil {
		return fmt.Errorf("update step %s of execution %d: %w", s.Name, s.ExecutionID, err)
	}
	n, err := rowsChanged(res)
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
	insertTriggerRecord = `INSERT INTO trigger_records (program_id, delivery_id, commit_sha, branch, pipeline,
    execution_id, reason_code, reason, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	selectTriggerRecords = `SELECT program_id, delivery_id, commit_sha, branch, pipeline, execution_id, reason_code, reason, created_at
FROM trigger_records WHERE program_id = ? AND commit_sha = ? ORDER BY id`
)

// AddTriggerRecord stores r.
func (t *sqliteTx) AddTriggerRecord(ctx context.Context, r bot.TriggerRecord) error {
	_, err := t.tx.ExecContext(ctx, insertTriggerRecord, r.ProgramID, r.DeliveryID, r.Commit, r.Branch, r.Pipeline,
		dbID(r.ExecutionID), string(r.Code), r.Reason, dbTime(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("add trigger record of program %d at %s: %w", r.ProgramID, r.Commit, err)
	}
	return nil
}

// TriggerRecords returns the records of a commit in the order they were added.
func (t *sqliteTx) TriggerRecords(ctx context.Context, programID int64, commit string) ([]bot.TriggerRecord, error) {
	rs, err := sqliteQueryAll(ctx, t, selectTriggerRecords, []any{programID, commit}, func(row rowScanner) (bot.TriggerRecord, error) {
		var r bot.TriggerRecord
		err := row.Scan(&r.ProgramID, &r.DeliveryID, &r.Commit, &r.Branch, &r.Pipeline, idDest{&r.ExecutionID},
			&r.Code, &r.Reason, timeDest{&r.CreatedAt})
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("trigger records of program %d at %s: %w", programID, commit, err)
	}
	return rs, nil
}
