package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stagehand-dev/stagehand/bot"
)

// Program locks.
const (
	lockProgram = `SELECT 1 FROM programs WHERE id = $1 FOR UPDATE`
	// lockExecutionProgram locks the program of an execution and returns
	// it. Only the program's row is locked, and only its id is read: an
	// execution's program never changes, so a stale read of the execution
	// row (READ COMMITTED re-reads only the locked rows) cannot matter.
	lockExecutionProgram = `SELECT p.id FROM executions e JOIN programs p ON p.id = e.program_id
WHERE e.id = $1 FOR UPDATE OF p`
	pgSelectExecutionProgram = `SELECT program_id FROM executions WHERE id = $1`
)

// lockProgramRow takes the row lock of program id, unless the transaction
// holds it already, and reports whether the program exists. Only for
// Updates: a read-only transaction cannot lock.
func (t *postgresTx) lockProgramRow(ctx context.Context, id int64) (bool, error) {
	if t.locked[id] {
		return true, nil
	}
	var one int
	err := t.queryRow(ctx, lockProgram, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock program %d: %w", id, err)
	}
	t.markLocked(id)
	return true, nil
}

func (t *postgresTx) markLocked(id int64) {
	if t.readOnly {
		return
	}
	if t.locked == nil {
		t.locked = map[int64]bool{}
	}
	t.locked[id] = true
}

// touchProgram takes, in an Update, the lock of program id before a
// statement about its state. A missing program is not an error here: the
// statement finds nothing, as it would have.
func (t *postgresTx) touchProgram(ctx context.Context, id int64) error {
	if t.readOnly || id == 0 {
		return nil
	}
	_, err := t.lockProgramRow(ctx, id)
	return err
}

// touchExecution takes, in an Update, the lock of execution id's program
// before a statement about the execution. It returns the program, 0 when
// there is no such execution (not an error here).
func (t *postgresTx) touchExecution(ctx context.Context, id int64) (int64, error) {
	if t.readOnly {
		return 0, nil
	}
	if programID, ok := t.executions[id]; ok && t.locked[programID] {
		return programID, nil
	}
	var programID int64
	err := t.queryRow(ctx, lockExecutionProgram, id).Scan(&programID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lock the program of execution %d: %w", id, err)
	}
	t.markLocked(programID)
	t.rememberExecution(id, programID)
	return programID, nil
}

func (t *postgresTx) rememberExecution(id, programID int64) {
	if t.executions == nil {
		t.executions = map[int64]int64{}
	}
	t.executions[id] = programID
}

// requireProgram returns ErrNotFound unless program id exists; in an Update
// it locks the program.
func (t *postgresTx) requireProgram(ctx context.Context, id int64) error {
	if t.readOnly {
		var one int
		err := t.queryRow(ctx, pgSelectProgramExists, id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("program %d: %w", id, bot.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("program %d: %w", id, err)
		}
		return nil
	}
	found, err := t.lockProgramRow(ctx, id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("program %d: %w", id, bot.ErrNotFound)
	}
	return nil
}

// LockProgram locks the program's row with SELECT ... FOR UPDATE until the
// transaction ends, so the transactions that decide rules for one program
// run one after the other on every replica. (The store takes the lock on
// its own too, before the first statement of an Update about the program;
// LockProgram takes it first thing, and checks the program exists.) In a
// View, which cannot lock and has nothing to serialise, it only checks the
// program exists.
func (t *postgresTx) LockProgram(ctx context.Context, programID int64) error {
	if err := t.requireProgram(ctx, programID); err != nil {
		return fmt.Errorf("lock program: %w", err)
	}
	return nil
}

// executionProgram returns the program of execution id, or ErrNotFound. It
// locks nothing.
func (t *postgresTx) executionProgram(ctx context.Context, id int64) (int64, error) {
	if programID, ok := t.executions[id]; ok {
		return programID, nil
	}
	var programID int64
	err := t.queryRow(ctx, pgSelectExecutionProgram, id).Scan(&programID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("execution %d: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("execution %d: %w", id, err)
	}
	t.rememberExecution(id, programID)
	return programID, nil
}

// requireExecution returns ErrNotFound unless execution id exists; in an
// Update it locks the execution's program.
func (t *postgresTx) requireExecution(ctx context.Context, id int64) error {
	if t.readOnly {
		_, err := t.executionProgram(ctx, id)
		return err
	}
	programID, err := t.touchExecution(ctx, id)
	if err != nil {
		return err
	}
	if programID == 0 {
		return fmt.Errorf("execution %d: %w", id, bot.ErrNotFound)
	}
	return nil
}
