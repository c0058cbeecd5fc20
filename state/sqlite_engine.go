package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// LockProgram checks that the program exists. SQLite needs no row lock:
// every Update starts with BEGIN IMMEDIATE and so holds the database's write
// lock from its first statement, which already serialises the transactions
// LockProgram is meant to. The Postgres store will lock the program's row
// with SELECT 1 FROM programs WHERE id = $1 FOR UPDATE, held until the
// transaction ends.
func (t *sqliteTx) LockProgram(ctx context.Context, programID int64) error {
	if err := t.requireProgram(ctx, programID); err != nil {
		return fmt.Errorf("lock program: %w", err)
	}
	return nil
}

// Deployments.
const (
	upsertDeployment = `INSERT INTO deployments (program_id, environment, execution_id, pipeline, number, commit_sha,
    artifact_digest, since)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (program_id, environment) DO UPDATE SET execution_id = excluded.execution_id,
    pipeline = excluded.pipeline, number = excluded.number, commit_sha = excluded.commit_sha,
    artifact_digest = excluded.artifact_digest, since = excluded.since`
	selectDeployment = `SELECT program_id, environment, execution_id, pipeline, number, commit_sha, artifact_digest, since
FROM deployments WHERE program_id = ? AND environment = ?`
	selectExecutionProgram = `SELECT program_id FROM executions WHERE id = ?`
)

func (t *sqliteTx) Deployment(ctx context.Context, programID int64, env bot.EnvironmentName) (bot.Deployment, error) {
	var d bot.Deployment
	err := t.tx.QueryRowContext(ctx, selectDeployment, programID, env).Scan(&d.ProgramID, &d.Environment,
		idDest{&d.ExecutionID}, &d.Pipeline, &d.Number, &d.Commit, &d.ArtifactDigest, timeDest{&d.Since})
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Deployment{}, fmt.Errorf("deployment of program %d to %s: %w", programID, env, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Deployment{}, fmt.Errorf("deployment of program %d to %s: %w", programID, env, err)
	}
	return d, nil
}

// SetDeployment records d as what runs on d.Environment of d.ProgramID
// (checked: see checkedTx). Since is kept as given.
func (t *sqliteTx) SetDeployment(ctx context.Context, d bot.Deployment) error {
	_, err := t.tx.ExecContext(ctx, upsertDeployment, d.ProgramID, d.Environment, dbID(d.ExecutionID), d.Pipeline,
		d.Number, d.Commit, d.ArtifactDigest, dbTime(d.Since))
	if err != nil {
		return fmt.Errorf("set deployment of program %d to %s: %w", d.ProgramID, d.Environment, err)
	}
	return nil
}

// requireExecution returns ErrNotFound unless execution id exists.
func (t *sqliteTx) requireExecution(ctx context.Context, id int64) error {
	_, err := t.executionProgram(ctx, id)
	return err
}

// executionProgram returns the program of execution id, or ErrNotFound.
func (t *sqliteTx) executionProgram(ctx context.Context, id int64) (int64, error) {
	var programID int64
	err := t.tx.QueryRowContext(ctx, selectExecutionProgram, id).Scan(&programID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("execution %d: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("execution %d: %w", id, err)
	}
	return programID, nil
}

// Variables.
const (
	selectVariables = `SELECT name, value FROM variables WHERE program_id = ? AND environment = ?`
	upsertVariable  = `INSERT INTO variables (program_id, environment, name, value) VALUES (?, ?, ?, ?)
ON CONFLICT (program_id, environment, name) DO UPDATE SET value = excluded.value`
	deleteVariable = `DELETE FROM variables WHERE program_id = ? AND environment = ? AND name = ?`
)

// Variables returns the variables of one environment of a program, an empty
// map when it has none (or there is no such program).
func (t *sqliteTx) Variables(ctx context.Context, programID int64, env bot.EnvironmentName) (map[string]string, error) {
	rows, err := t.tx.QueryContext(ctx, selectVariables, programID, env)
	if err != nil {
		return nil, fmt.Errorf("variables of program %d in %s: %w", programID, env, err)
	}
	defer rows.Close()
	vars := map[string]string{}
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			return nil, fmt.Errorf("variables of program %d in %s: %w", programID, env, err)
		}
		vars[key] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("variables of program %d in %s: %w", programID, env, err)
	}
	return vars, nil
}

// SetVariable sets key to value in one environment of a program, replacing
// the value it had.
func (t *sqliteTx) SetVariable(ctx context.Context, programID int64, env bot.EnvironmentName, key, value string) error {
	if _, err := t.tx.ExecContext(ctx, upsertVariable, programID, env, key, value); err != nil {
		return fmt.Errorf("set variable %s of program %d in %s: %w", key, programID, env, err)
	}
	return nil
}

// UnsetVariable removes key from one environment of a program; removing a
// variable that is not set is not an error.
func (t *sqliteTx) UnsetVariable(ctx context.Context, programID int64, env bot.EnvironmentName, key string) error {
	if _, err := t.tx.ExecContext(ctx, deleteVariable, programID, env, key); err != nil {
		return fmt.Errorf("unset variable %s of program %d in %s: %w", key, programID, env, err)
	}
	return nil
}

// Execution events.
const (
	insertEvent  = `INSERT INTO execution_events (execution_id, occurred_at, actor, kind, detail) VALUES (?, ?, ?, ?, ?)`
	selectEvents = `SELECT execution_id, occurred_at, actor, kind, detail
FROM execution_events WHERE execution_id = ? ORDER BY id`
)

// AddEvent appends ev to its execution's record (checked, its time stamped
// and the execution's Version bumped: see checkedTx).
func (t *sqliteTx) AddEvent(ctx context.Context, ev bot.Event) error {
	_, err := t.tx.ExecContext(ctx, insertEvent, ev.ExecutionID, dbTime(ev.At), ev.Actor, ev.Kind, ev.Detail)
	if err != nil {
		return fmt.Errorf("add event %s to execution %d: %w", ev.Kind, ev.ExecutionID, err)
	}
	return nil
}

// Events returns an execution's events in the order they were added; none
// for an execution without events, or no such execution.
func (t *sqliteTx) Events(ctx context.Context, executionID int64) ([]bot.Event, error) {
	evs, err := sqliteQueryAll(ctx, t, selectEvents, []any{executionID}, func(row rowScanner) (bot.Event, error) {
		var ev bot.Event
		err := row.Scan(&ev.ExecutionID, timeDest{&ev.At}, &ev.Actor, &ev.Kind, &ev.Detail)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of execution %d: %w", executionID, err)
	}
	return evs, nil
}
