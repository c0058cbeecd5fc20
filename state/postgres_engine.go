package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// The Postgres store's deployments, variables and events: sqlite_engine.go
// in Postgres's dialect, each statement about a program after its lock.

// Deployments.
const (
	pgUpsertDeployment = `INSERT INTO deployments (program_id, environment, execution_id, pipeline, number, commit_sha,
    artifact_digest, since)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (program_id, environment) DO UPDATE SET execution_id = excluded.execution_id,
    pipeline = excluded.pipeline, number = excluded.number, commit_sha = excluded.commit_sha,
    artifact_digest = excluded.artifact_digest, since = excluded.since`
	pgSelectDeployment = `SELECT program_id, environment, execution_id, pipeline, number, commit_sha, artifact_digest, since
FROM deployments WHERE program_id = $1 AND environment = $2`
)

func (t *postgresTx) Deployment(ctx context.Context, programID int64, env bot.EnvironmentName) (bot.Deployment, error) {
	if err := t.touchProgram(ctx, programID); err != nil {
		return bot.Deployment{}, fmt.Errorf("deployment of program %d to %s: %w", programID, env, err)
	}
	var d bot.Deployment
	err := t.queryRow(ctx, pgSelectDeployment, programID, string(env)).Scan(&d.ProgramID, &d.Environment,
		pgIDDest{&d.ExecutionID}, &d.Pipeline, &d.Number, &d.Commit, &d.ArtifactDigest, pgTimeDest{&d.Since})
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Deployment{}, fmt.Errorf("deployment of program %d to %s: %w", programID, env, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Deployment{}, fmt.Errorf("deployment of program %d to %s: %w", programID, env, err)
	}
	return d, nil
}

// SetDeployment records d as what runs on d.Environment of d.ProgramID
// (checked, and the program locked: see checkedTx). Since is kept as given
// (to the microsecond).
func (t *postgresTx) SetDeployment(ctx context.Context, d bot.Deployment) error {
	_, err := t.exec(ctx, pgUpsertDeployment, d.ProgramID, string(d.Environment), pgID(d.ExecutionID), string(d.Pipeline),
		d.Number, d.Commit, d.ArtifactDigest, pgTime(d.Since))
	if err != nil {
		return fmt.Errorf("set deployment of program %d to %s: %w", d.ProgramID, d.Environment, err)
	}
	return nil
}

// Variables.
const (
	pgSelectVariables = `SELECT name, value FROM variables WHERE program_id = $1 AND environment = $2`
	pgUpsertVariable  = `INSERT INTO variables (program_id, environment, name, value) VALUES ($1, $2, $3, $4)
ON CONFLICT (program_id, environment, name) DO UPDATE SET value = excluded.value`
	pgDeleteVariable = `DELETE FROM variables WHERE program_id = $1 AND environment = $2 AND name = $3`
)

// Variables returns the variables of one environment of a program, an empty
// map when it has none (or there is no such program).
func (t *postgresTx) Variables(ctx context.Context, programID int64, env bot.EnvironmentName) (map[string]string, error) {
	if err := t.touchProgram(ctx, programID); err != nil {
		return nil, fmt.Errorf("variables of program %d in %s: %w", programID, env, err)
	}
	type variable struct{ key, value string }
	vs, err := queryAll(ctx, t, pgSelectVariables, []any{programID, string(env)}, func(row rowScanner) (variable, error) {
		var v variable
		err := row.Scan(&v.key, &v.value)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("variables of program %d in %s: %w", programID, env, err)
	}
	vars := make(map[string]string, len(vs))
	for _, v := range vs {
		vars[v.key] = v.value
	}
	return vars, nil
}

// SetVariable sets key to value in one environment of a program, replacing
// the value it had.
func (t *postgresTx) SetVariable(ctx context.Context, programID int64, env bot.EnvironmentName, key, value string) error {
	if _, err := t.exec(ctx, pgUpsertVariable, programID, string(env), key, value); err != nil {
		return fmt.Errorf("set variable %s of program %d in %s: %w", key, programID, env, err)
	}
	return nil
}

// UnsetVariable removes key from one environment of a program; removing a
// variable that is not set is not an error.
func (t *postgresTx) UnsetVariable(ctx context.Context, programID int64, env bot.EnvironmentName, key string) error {
	if err := t.touchProgram(ctx, programID); err != nil {
		return fmt.Errorf("unset variable %s of program %d in %s: %w", key, programID, env, err)
	}
	if _, err := t.exec(ctx, pgDeleteVariable, programID, string(env), key); err != nil {
		return fmt.Errorf("unset variable %s of program %d in %s: %w", key, programID, env, err)
	}
	return nil
}

// Execution events.
const (
	pgInsertEvent = `INSERT INTO execution_events (execution_id, occurred_at, actor, kind, detail)
VALUES ($1, $2, $3, $4, $5)`
	pgSelectEvents = `SELECT execution_id, occurred_at, actor, kind, detail
FROM execution_events WHERE execution_id = $1 ORDER BY id`
)

// AddEvent appends ev to its execution's record (checked, its time stamped
// and the execution's Version bumped: see checkedTx).
func (t *postgresTx) AddEvent(ctx context.Context, ev bot.Event) error {
	if _, err := t.exec(ctx, pgInsertEvent, ev.ExecutionID, ev.At, ev.Actor, ev.Kind, ev.Detail); err != nil {
		return fmt.Errorf("add event %s to execution %d: %w", ev.Kind, ev.ExecutionID, err)
	}
	return nil
}

// Events returns an execution's events in the order they were added; none
// for an execution without events, or no such execution.
func (t *postgresTx) Events(ctx context.Context, executionID int64) ([]bot.Event, error) {
	if _, err := t.touchExecution(ctx, executionID); err != nil {
		return nil, fmt.Errorf("events of execution %d: %w", executionID, err)
	}
	evs, err := queryAll(ctx, t, pgSelectEvents, []any{executionID}, func(row rowScanner) (bot.Event, error) {
		var ev bot.Event
		err := row.Scan(&ev.ExecutionID, pgTimeDest{&ev.At}, &ev.Actor, &ev.Kind, &ev.Detail)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of execution %d: %w", executionID, err)
	}
	return evs, nil
}
