package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stagehand-dev/stagehand/bot"
)

// postgresTx is the bot.Tx of one Postgres transaction. Its queries are the
// SQLite store's, in Postgres's dialect, as constants next to the methods
// that run them. In an Update (not readOnly) it takes the row lock of each
// program it touches before its first statement about that program, and
// remembers which it holds.
type postgresTx struct {
	tx       pgx.Tx
	clock    bot.Clock
	readOnly bool

	locked     map[int64]bool  // programs whose row lock the transaction holds
	executions map[int64]int64 // the program of executions already looked up
	// retryErr is the first deadlock or serialization failure a statement
	// returned: the transaction is aborted, and Update may run fn again.
	retryErr error
	// changed: an execution's Version moved (created, updated, bumped);
	// the transaction notifies the store's channel before it commits.
	changed bool
}

var _ bot.Tx = (*postgresTx)(nil)

// now is the store's time for the values it stamps itself, in the precision
// Postgres keeps.
func (t *postgresTx) now() time.Time { return t.clock.Now().UTC().Truncate(time.Microsecond) }

// fail notes a statement's error: a deadlock or serialization failure for
// Update to retry, and a statement Postgres cancelled because ctx ended is
// returned wrapping ctx's error.
func (t *postgresTx) fail(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case sqlstateSerializationFailure, sqlstateDeadlockDetected:
		if t.retryErr == nil {
			t.retryErr = err
		}
	case sqlstateQueryCanceled:
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w: %w", ctxErr, err)
		}
	}
	return err
}

// exec runs an INSERT, UPDATE or DELETE and returns how many rows it touched.
func (t *postgresTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, t.fail(ctx, err)
	}
	return tag.RowsAffected(), nil
}

// queryRow runs a query of one row; its Scan returns pgx.ErrNoRows when
// there is none.
func (t *postgresTx) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return pgRow{t: t, ctx: ctx, row: t.tx.QueryRow(ctx, query, args...)}
}

type pgRow struct {
	t   *postgresTx
	ctx context.Context
	row pgx.Row
}

func (r pgRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return r.t.fail(r.ctx, err)
	}
	return err
}

// queryAll runs a query and scans each row with scan.
func queryAll[T any](ctx context.Context, t *postgresTx, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := t.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, t.fail(ctx, err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scan)
	if err != nil {
		return nil, t.fail(ctx, err)
	}
	return out, nil
}

// pgTime is a time.Time as a query argument: NULL for the zero time.
func pgTime(tt time.Time) any {
	if tt.IsZero() {
		return nil
	}
	return tt
}

// micro truncates tt to the microseconds Postgres keeps, so a value the
// store returns equals the one it reads back.
func micro(tt time.Time) time.Time { return tt.Truncate(time.Microsecond) }

// pgTimeDest scans a TIMESTAMPTZ into a time.Time in UTC: NULL is the zero
// time.
type pgTimeDest struct{ t *time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (d pgTimeDest) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*d.t = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("time column holds %s, want a time", v.InfinityModifier)
	default:
		*d.t = v.Time.UTC()
	}
	return nil
}

// pgID is an optional reference as a query argument: 0 is NULL.
func pgID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// pgIDDest scans an optional reference: NULL is 0.
type pgIDDest struct{ id *int64 }

// ScanInt64 implements pgtype.Int64Scanner.
func (d pgIDDest) ScanInt64(v pgtype.Int8) error {
	*d.id = 0
	if v.Valid {
		*d.id = v.Int64
	}
	return nil
}

// pgBytes is an optional blob as a query argument: empty is NULL.
func pgBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Deliveries.
const (
	pgInsertDelivery = `INSERT INTO processed_deliveries (guid, event, processed_at) VALUES ($1, $2, $3)
ON CONFLICT (guid) DO NOTHING`
	pgSelectDelivery = `SELECT 1 FROM processed_deliveries WHERE guid = $1`
	pgUpsertPoisoned = `INSERT INTO poisoned_deliveries (guid, event, reason, poisoned_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (guid) DO UPDATE SET event = excluded.event, reason = excluded.reason, poisoned_at = excluded.poisoned_at`
	pgSelectDeliveryRecord = `SELECT
  (SELECT processed_at FROM processed_deliveries WHERE guid = $1),
  (SELECT poisoned_at FROM poisoned_deliveries WHERE guid = $1),
  COALESCE((SELECT reason FROM poisoned_deliveries WHERE guid = $1), ''),
  (SELECT requested_at FROM redelivery_requests WHERE guid = $1),
  COALESCE((SELECT delivery_id FROM redelivery_requests WHERE guid = $1), 0)`
	pgInsertRedeliveryRequest = `INSERT INTO redelivery_requests (guid, event, delivery_id, outcome, requested_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (guid) DO UPDATE SET event = excluded.event, delivery_id = excluded.delivery_id, outcome = excluded.outcome, requested_at = excluded.requested_at
WHERE redelivery_requests.delivery_id < excluded.delivery_id`
)

func (t *postgresTx) MarkRedeliveryRequested(ctx context.Context, r bot.RedeliveryRequest) (bool, error) {
	n, err := t.exec(ctx, pgInsertRedeliveryRequest, r.GUID, r.Event, r.DeliveryID, r.Outcome, micro(r.RequestedAt))
	if err != nil {
		return false, fmt.Errorf("record the redelivery request of %s: %w", r.GUID, err)
	}
	return n == 1, nil
}

func (t *postgresTx) MarkPoisoned(ctx context.Context, p bot.PoisonedDelivery) error {
	if _, err := t.exec(ctx, pgUpsertPoisoned, p.GUID, p.Event, p.Reason, micro(p.PoisonedAt)); err != nil {
		return fmt.Errorf("mark delivery %s poisoned: %w", p.GUID, err)
	}
	return nil
}

func (t *postgresTx) DeliveryRecord(ctx context.Context, guid string) (bot.DeliveryRecord, error) {
	var r bot.DeliveryRecord
	err := t.queryRow(ctx, pgSelectDeliveryRecord, guid).Scan(
		pgTimeDest{&r.ProcessedAt}, pgTimeDest{&r.PoisonedAt}, &r.PoisonReason, pgTimeDest{&r.RedeliveryRequestedAt}, &r.RedeliveryRequestedFor)
	if err != nil {
		return bot.DeliveryRecord{}, fmt.Errorf("delivery %s: %w", guid, err)
	}
	return r, nil
}

func (t *postgresTx) MarkDelivery(ctx context.Context, d bot.Delivery) (bool, error) {
	n, err := t.exec(ctx, pgInsertDelivery, d.GUID, d.Event, d.ProcessedAt)
	if err != nil {
		return false, fmt.Errorf("mark delivery %s: %w", d.GUID, err)
	}
	return n == 1, nil
}

func (t *postgresTx) DeliveryProcessed(ctx context.Context, guid string) (bool, error) {
	var one int
	err := t.queryRow(ctx, pgSelectDelivery, guid).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delivery %s: %w", guid, err)
	}
	return true, nil
}

// Installations.
const (
	pgUpsertInstallation = `INSERT INTO installations (id, account, suspended, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, suspended = excluded.suspended, updated_at = excluded.updated_at`
	pgSelectInstallation = `SELECT id, account, suspended, updated_at FROM installations WHERE id = $1`
	pgDeleteInstallation = `DELETE FROM installations WHERE id = $1`
)

func (t *postgresTx) PutInstallation(ctx context.Context, inst bot.Installation) error {
	if _, err := t.exec(ctx, pgUpsertInstallation, inst.ID, inst.Account, inst.Suspended, inst.UpdatedAt); err != nil {
		return fmt.Errorf("put installation %d: %w", inst.ID, err)
	}
	return nil
}

func (t *postgresTx) Installation(ctx context.Context, id int64) (bot.Installation, error) {
	var inst bot.Installation
	err := t.queryRow(ctx, pgSelectInstallation, id).
		Scan(&inst.ID, &inst.Account, &inst.Suspended, pgTimeDest{&inst.UpdatedAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Installation{}, fmt.Errorf("installation %d: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Installation{}, fmt.Errorf("installation %d: %w", id, err)
	}
	return inst, nil
}

// DeleteInstallation removes the installation; deleting one that is not
// there is not an error, so a redelivered webhook changes nothing. The
// installation's programs stay, with their history.
func (t *postgresTx) DeleteInstallation(ctx context.Context, id int64) error {
	if _, err := t.exec(ctx, pgDeleteInstallation, id); err != nil {
		return fmt.Errorf("delete installation %d: %w", id, err)
	}
	return nil
}

// Programs. programColumns and programUpdate are the SQLite store's.
const (
	pgUpsertProgramByName = `INSERT INTO programs (installation_id, github_id, owner, repo, default_branch, removed, holds_name)
VALUES ($1, 0, $2, $3, $4, FALSE, TRUE)
ON CONFLICT ((lower(owner)), (lower(repo))) WHERE holds_name DO UPDATE SET ` + programUpdate
	pgUpsertProgramByGitHubID = `INSERT INTO programs (installation_id, github_id, owner, repo, default_branch, removed, holds_name)
VALUES ($1, $2, $3, $4, $5, FALSE, TRUE)
ON CONFLICT (github_id) WHERE github_id <> 0 DO UPDATE SET ` + programUpdate
	pgAdoptGitHubID = `UPDATE programs SET github_id = $1
WHERE holds_name AND lower(owner) = lower($2) AND lower(repo) = lower($3) AND github_id = 0
    AND NOT EXISTS (SELECT 1 FROM programs WHERE github_id = $1)`
	pgReleaseName = `UPDATE programs SET holds_name = FALSE, removed = TRUE
WHERE holds_name AND lower(owner) = lower($2) AND lower(repo) = lower($3) AND github_id <> $1`
	// lockProgramName serialises, until the transaction ends, the
	// EnsureProgram calls about one name, so two replicas seeing a new
	// repository at once create one program (the statements that follow
	// see what the first committed). The key is two int4, as for the
	// migrations' lock; a collision of the hash only makes one wait.
	lockProgramName = `SELECT pg_advisory_xact_lock(hashtext('stagehand programs'),
    hashtext(COALESCE(current_schema(), '') || '/' || lower($1) || '/' || lower($2)))`
	pgSelectProgram           = `SELECT ` + programColumns + ` FROM programs WHERE id = $1`
	pgSelectProgramByGitHubID = `SELECT ` + programColumns + ` FROM programs WHERE github_id = $1 AND github_id <> 0`
	pgSelectProgramByName     = `SELECT ` + programColumns + ` FROM programs WHERE lower(owner) = lower($1) AND lower(repo) = lower($2) AND holds_name`
	pgSelectPrograms          = `SELECT ` + programColumns + ` FROM programs ORDER BY id`
	pgUpdateProgramRemove     = `UPDATE programs SET removed = $1 WHERE id = $2`
	pgSelectProgramExists     = `SELECT 1 FROM programs WHERE id = $1`
	// forUpdate locks the rows a query of programs returns.
	forUpdate = ` FOR UPDATE`
)

// EnsureProgram returns the program of r, creating it as needed (see
// bot.Tx). GitHub names ignore case: the program keeps its ID when only the
// case changes, and takes the spelling given last. The upsert locks the
// program's row.
func (t *postgresTx) EnsureProgram(ctx context.Context, installationID int64, r bot.Repository) (bot.Program, error) {
	if _, err := t.exec(ctx, lockProgramName, r.Owner, r.Name); err != nil {
		return bot.Program{}, fmt.Errorf("ensure program %s/%s: lock the name: %w", r.Owner, r.Name, err)
	}
	var row rowScanner
	if r.ID == 0 {
		row = t.queryRow(ctx, pgUpsertProgramByName, installationID, r.Owner, r.Name, r.DefaultBranch)
	} else {
		for _, q := range []string{pgAdoptGitHubID, pgReleaseName} {
			if _, err := t.exec(ctx, q, r.ID, r.Owner, r.Name); err != nil {
				return bot.Program{}, fmt.Errorf("ensure program %s/%s (id %d): %w", r.Owner, r.Name, r.ID, err)
			}
		}
		row = t.queryRow(ctx, pgUpsertProgramByGitHubID, installationID, r.ID, r.Owner, r.Name, r.DefaultBranch)
	}
	p, err := scanProgram(row)
	if err != nil {
		return bot.Program{}, fmt.Errorf("ensure program %s/%s (id %d): %w", r.Owner, r.Name, r.ID, err)
	}
	t.markLocked(p.ID)
	return p, nil
}

// Program returns program id; in an Update it locks it first.
func (t *postgresTx) Program(ctx context.Context, id int64) (bot.Program, error) {
	return t.programWhere(ctx, fmt.Sprintf("program %d", id), pgSelectProgram, !t.locked[id], id)
}

// ProgramByGitHubID finds the program of a GitHub repository id; in an
// Update it locks it.
func (t *postgresTx) ProgramByGitHubID(ctx context.Context, id int64) (bot.Program, error) {
	return t.programWhere(ctx, fmt.Sprintf("program of repository id %d", id), pgSelectProgramByGitHubID, true, id)
}

// ProgramByName finds the program holding owner/repo, ignoring case as
// GitHub does; in an Update it locks it.
func (t *postgresTx) ProgramByName(ctx context.Context, owner, repo string) (bot.Program, error) {
	return t.programWhere(ctx, fmt.Sprintf("program %s/%s", owner, repo), pgSelectProgramByName, true, owner, repo)
}

// programWhere runs a query of one program, locking its row in an Update
// when lock is set; what names the program in errors.
func (t *postgresTx) programWhere(ctx context.Context, what, query string, lock bool, args ...any) (bot.Program, error) {
	if lock && !t.readOnly {
		query += forUpdate
	}
	p, err := scanProgram(t.queryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return bot.Program{}, fmt.Errorf("%s: %w", what, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Program{}, fmt.Errorf("%s: %w", what, err)
	}
	t.markLocked(p.ID)
	return p, nil
}

// Programs lists every program, removed ones included, in the order they
// were created. It locks none of them.
func (t *postgresTx) Programs(ctx context.Context) ([]bot.Program, error) {
	ps, err := queryAll(ctx, t, pgSelectPrograms, nil, scanProgram)
	if err != nil {
		return nil, fmt.Errorf("programs: %w", err)
	}
	return ps, nil
}

func (t *postgresTx) SetProgramRemoved(ctx context.Context, id int64, removed bool) error {
	if err := t.touchProgram(ctx, id); err != nil {
		return fmt.Errorf("set program %d removed: %w", id, err)
	}
	n, err := t.exec(ctx, pgUpdateProgramRemove, removed, id)
	if err != nil {
		return fmt.Errorf("set program %d removed: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("program %d: %w", id, bot.ErrNotFound)
	}
	return nil
}

// Pipelines.
const (
	pgDeletePipelines = `DELETE FROM pipelines WHERE program_id = $1`
	pgInsertPipeline  = `INSERT INTO pipelines (program_id, kind, branch, trigger_kind, approval, scheduled)
VALUES ($1, $2, $3, $4, $5, $6)`
	pgSelectPipelines = `SELECT program_id, kind, branch, trigger_kind, approval, scheduled
FROM pipelines WHERE program_id = $1`
)

// SetPipelines replaces the program's pipelines with ps (checked, and the
// program locked: see checkedTx).
func (t *postgresTx) SetPipelines(ctx context.Context, programID int64, ps []bot.Pipeline) error {
	if _, err := t.exec(ctx, pgDeletePipelines, programID); err != nil {
		return fmt.Errorf("set pipelines of program %d: %w", programID, err)
	}
	for _, p := range ps {
		_, err := t.exec(ctx, pgInsertPipeline, programID, string(p.Kind), p.Branch, string(p.Trigger), p.Approval, p.Scheduled)
		if err != nil {
			return fmt.Errorf("set pipelines of program %d: %s: %w", programID, p.Kind, err)
		}
	}
	return nil
}

// Pipelines returns the program's pipelines in the order of bot.PipelineKinds.
func (t *postgresTx) Pipelines(ctx context.Context, programID int64) ([]bot.Pipeline, error) {
	if err := t.touchProgram(ctx, programID); err != nil {
		return nil, fmt.Errorf("pipelines of program %d: %w", programID, err)
	}
	ps, err := queryAll(ctx, t, pgSelectPipelines, []any{programID}, func(row rowScanner) (bot.Pipeline, error) {
		var p bot.Pipeline
		err := row.Scan(&p.ProgramID, &p.Kind, &p.Branch, &p.Trigger, &p.Approval, &p.Scheduled)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("pipelines of program %d: %w", programID, err)
	}
	slices.SortFunc(ps, func(a, b bot.Pipeline) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), cmp.Compare(a.Kind, b.Kind))
	})
	return ps, nil
}
