package state

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// sqliteTx is the bot.Tx of one SQLite transaction. Its queries are
// constants next to the methods that run them, one block per concept; they
// use only SQL that Postgres also speaks (ON CONFLICT, RETURNING), so a port
// changes the ? placeholders to $1, $2, ...
type sqliteTx struct {
	tx    *sql.Tx
	clock bot.Clock
	// changed: an execution's Version moved (created, updated, bumped);
	// the store tells its ExecutionChanges subscribers after the commit.
	changed bool
}

var _ bot.Tx = (*sqliteTx)(nil)

// now is the store's time for the values it stamps itself.
func (t *sqliteTx) now() time.Time { return t.clock.Now().UTC() }

// rowsChanged returns how many rows an INSERT, UPDATE or DELETE touched.
func rowsChanged(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// dbTime is a time.Time as a query argument: UTC unix nanoseconds, or NULL
// for the zero time.
type dbTime time.Time

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// Value implements driver.Valuer.
func (t dbTime) Value() (driver.Value, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return nil, nil
	}
	if tt.Before(minNanoTime) || tt.After(maxNanoTime) {
		return nil, fmt.Errorf("time %s is outside the years 1678 to 2262 the store can keep", tt.Format(time.RFC3339))
	}
	return tt.UnixNano(), nil
}

// timeDest scans what dbTime wrote back into a time.Time, in UTC.
type timeDest struct{ t *time.Time }

// Scan implements sql.Scanner.
func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want INTEGER nanoseconds", src)
	}
	return nil
}

// dbID is an optional reference as a query argument: 0 is NULL.
type dbID int64

// Value implements driver.Valuer.
func (id dbID) Value() (driver.Value, error) {
	if id == 0 {
		return nil, nil
	}
	return int64(id), nil
}

// idDest scans an optional reference: NULL is 0.
type idDest struct{ id *int64 }

// Scan implements sql.Scanner.
func (d idDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.id = 0
	case int64:
		*d.id = v
	default:
		return fmt.Errorf("id column holds %T, want INTEGER", src)
	}
	return nil
}

// dbBytes is an optional blob as a query argument: empty is NULL.
type dbBytes []byte

// Value implements driver.Valuer.
func (b dbBytes) Value() (driver.Value, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return []byte(b), nil
}

// bytesDest scans an optional blob into a copy the caller owns: NULL (and
// an empty blob) is nil.
type bytesDest struct{ b *[]byte }

// Scan implements sql.Scanner.
func (d bytesDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.b = nil
	case []byte:
		*d.b = nil
		if len(v) > 0 {
			*d.b = slices.Clone(v) // the driver owns v
		}
	case string:
		*d.b = nil
		if v != "" {
			*d.b = []byte(v)
		}
	default:
		return fmt.Errorf("blob column holds %T, want BLOB", src)
	}
	return nil
}

// Deliveries.
const (
	insertDelivery = `INSERT INTO processed_deliveries (guid, event, processed_at) VALUES (?, ?, ?)
ON CONFLICT (guid) DO NOTHING`
	selectDelivery = `SELECT 1 FROM processed_deliveries WHERE guid = ?`
	upsertPoisoned = `INSERT INTO poisoned_deliveries (guid, event, reason, poisoned_at) VALUES (?, ?, ?, ?)
ON CONFLICT (guid) DO UPDATE SET event = excluded.event, reason = excluded.reason, poisoned_at = excluded.poisoned_at`
	selectDeliveryRecord = `SELECT
  (SELECT processed_at FROM processed_deliveries WHERE guid = ?1),
  (SELECT poisoned_at FROM poisoned_deliveries WHERE guid = ?1),
  COALESCE((SELECT reason FROM poisoned_deliveries WHERE guid = ?1), ''),
  (SELECT requested_at FROM redelivery_requests WHERE guid = ?1),
  COALESCE((SELECT delivery_id FROM redelivery_requests WHERE guid = ?1), 0)`
	// A GUID's row holds its latest request: one naming a later attempt
	// (GitHub's redelivery failed too) replaces it.
	insertRedeliveryRequest = `INSERT INTO redelivery_requests (guid, event, delivery_id, outcome, requested_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (guid) DO UPDATE SET event = excluded.event, delivery_id = excluded.delivery_id, outcome = excluded.outcome, requested_at = excluded.requested_at
WHERE redelivery_requests.delivery_id < excluded.delivery_id`
)

func (t *sqliteTx) MarkRedeliveryRequested(ctx context.Context, r bot.RedeliveryRequest) (bool, error) {
	res, err := t.tx.ExecContext(ctx, insertRedeliveryRequest, r.GUID, r.Event, r.DeliveryID, r.Outcome, dbTime(r.RequestedAt))
	if err != nil {
		return false, fmt.Errorf("record the redelivery request of %s: %w", r.GUID, err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return false, fmt.Errorf("record the redelivery request of %s: %w", r.GUID, err)
	}
	return n == 1, nil
}

func (t *sqliteTx) MarkPoisoned(ctx context.Context, p bot.PoisonedDelivery) error {
	if _, err := t.tx.ExecContext(ctx, upsertPoisoned, p.GUID, p.Event, p.Reason, dbTime(p.PoisonedAt)); err != nil {
		return fmt.Errorf("mark delivery %s poisoned: %w", p.GUID, err)
	}
	return nil
}

func (t *sqliteTx) DeliveryRecord(ctx context.Context, guid string) (bot.DeliveryRecord, error) {
	return scanDeliveryRecord(t.tx.QueryRowContext(ctx, selectDeliveryRecord, guid), guid)
}

func scanDeliveryRecord(row *sql.Row, guid string) (bot.DeliveryRecord, error) {
	var r bot.DeliveryRecord
	err := row.Scan(timeDest{&r.ProcessedAt}, timeDest{&r.PoisonedAt}, &r.PoisonReason, timeDest{&r.RedeliveryRequestedAt}, &r.RedeliveryRequestedFor)
	if err != nil {
		return bot.DeliveryRecord{}, fmt.Errorf("delivery %s: %w", guid, err)
	}
	return r, nil
}

func (t *sqliteTx) MarkDelivery(ctx context.Context, d bot.Delivery) (bool, error) {
	res, err := t.tx.ExecContext(ctx, insertDelivery, d.GUID, d.Event, dbTime(d.ProcessedAt))
	if err != nil {
		return false, fmt.Errorf("mark delivery %s: %w", d.GUID, err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return false, fmt.Errorf("mark delivery %s: %w", d.GUID, err)
	}
	return n == 1, nil
}

func (t *sqliteTx) DeliveryProcessed(ctx context.Context, guid string) (bool, error) {
	var one int
	err := t.tx.QueryRowContext(ctx, selectDelivery, guid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delivery %s: %w", guid, err)
	}
	return true, nil
}

// Installations.
const (
	upsertInstallation = `INSERT INTO installations (id, account, suspended, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, suspended = excluded.suspended, updated_at = excluded.updated_at`
	selectInstallation = `SELECT id, account, suspended, updated_at FROM installations WHERE id = ?`
	deleteInstallation = `DELETE FROM installations WHERE id = ?`
)

func (t *sqliteTx) PutInstallation(ctx context.Context, inst bot.Installation) error {
	_, err := t.tx.ExecContext(ctx, upsertInstallation, inst.ID, inst.Account, inst.Suspended, dbTime(inst.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put installation %d: %w", inst.ID, err)
	}
	return nil
}

func (t *sqliteTx) Installation(ctx context.Context, id int64) (bot.Installation, error) {
	var inst bot.Installation
	err := t.tx.QueryRowContext(ctx, selectInstallation, id).
		Scan(&inst.ID, &inst.Account, &inst.Suspended, timeDest{&inst.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
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
func (t *sqliteTx) DeleteInstallation(ctx context.Context, id int64) error {
	if _, err := t.tx.ExecContext(ctx, deleteInstallation, id); err != nil {
		return fmt.Errorf("delete installation %d: %w", id, err)
	}
	return nil
}

// Programs. A program holds its name (holds_name) unless a re-created
// repository took it; names are unique among the holders, GitHub ids among
// the programs that have one.
const (
	programColumns = `id, installation_id, github_id, owner, repo, default_branch, removed`
	// programUpdate is what EnsureProgram changes of a program it finds:
	// the name as given last (its case too), the installation and default
	// branch unless unknown; the program is active and holds its name.
	programUpdate = `installation_id = CASE WHEN excluded.installation_id <> 0 THEN excluded.installation_id ELSE programs.installation_id END,
    owner = excluded.owner, repo = excluded.repo,
    default_branch = CASE WHEN excluded.default_branch <> '' THEN excluded.default_branch ELSE programs.default_branch END,
    removed = FALSE, holds_name = TRUE
RETURNING ` + programColumns
	upsertProgramByName = `INSERT INTO programs (installation_id, github_id, owner, repo, default_branch, removed, holds_name)
VALUES (?1, 0, ?2, ?3, ?4, FALSE, TRUE)
ON CONFLICT (owner, repo) WHERE holds_name DO UPDATE SET ` + programUpdate
	upsertProgramByGitHubID = `INSERT INTO programs (installation_id, github_id, owner, repo, default_branch, removed, holds_name)
VALUES (?1, ?2, ?3, ?4, ?5, FALSE, TRUE)
ON CONFLICT (github_id) WHERE github_id <> 0 DO UPDATE SET ` + programUpdate
	// adoptGitHubID gives GitHub id ?1 to the program holding the name
	// ?2/?3 when that program has no id yet and no program has ?1.
	adoptGitHubID = `UPDATE programs SET github_id = ?1
WHERE holds_name AND owner = ?2 AND repo = ?3 AND github_id = 0
    AND NOT EXISTS (SELECT 1 FROM programs WHERE github_id = ?1)`
	// releaseName takes the name ?2/?3 from a program of another
	// repository than ?1: that one was deleted or renamed.
	releaseName = `UPDATE programs SET holds_name = FALSE, removed = TRUE
WHERE holds_name AND owner = ?2 AND repo = ?3 AND github_id <> ?1`
	selectProgram           = `SELECT ` + programColumns + ` FROM programs WHERE id = ?`
	selectProgramByGitHubID = `SELECT ` + programColumns + ` FROM programs WHERE github_id = ? AND github_id <> 0`
	selectProgramByName     = `SELECT ` + programColumns + ` FROM programs WHERE owner = ? AND repo = ? AND holds_name`
	selectPrograms          = `SELECT ` + programColumns + ` FROM programs ORDER BY id`
	updateProgramRemove     = `UPDATE programs SET removed = ? WHERE id = ?`
	selectProgramExists     = `SELECT 1 FROM programs WHERE id = ?`
)

type rowScanner interface {
	Scan(dest ...any) error
}

// scanAll scans every row of rows with scan (both stores' queries of many
// rows); the caller closes rows.
func scanAll[T any](rows interface {
	rowScanner
	Next() bool
	Err() error
}, scan func(rowScanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// sqliteQueryAll runs a query and scans each row with scan.
func sqliteQueryAll[T any](ctx context.Context, t *sqliteTx, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := t.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scan)
}

func scanProgram(row rowScanner) (bot.Program, error) {
	var p bot.Program
	err := row.Scan(&p.ID, &p.InstallationID, &p.GitHubID, &p.Owner, &p.Repo, &p.DefaultBranch, &p.Removed)
	return p, err
}

// EnsureProgram returns the program of r, creating it as needed (see
// bot.Tx). GitHub names ignore case: the program keeps its ID when only the
// case changes, and takes the spelling given last.
func (t *sqliteTx) EnsureProgram(ctx context.Context, installationID int64, r bot.Repository) (bot.Program, error) {
	var row *sql.Row
	if r.ID == 0 {
		row = t.tx.QueryRowContext(ctx, upsertProgramByName, installationID, r.Owner, r.Name, r.DefaultBranch)
	} else {
		for _, q := range []string{adoptGitHubID, releaseName} {
			if _, err := t.tx.ExecContext(ctx, q, r.ID, r.Owner, r.Name); err != nil {
				return bot.Program{}, fmt.Errorf("ensure program %s/%s (id %d): %w", r.Owner, r.Name, r.ID, err)
			}
		}
		row = t.tx.QueryRowContext(ctx, upsertProgramByGitHubID, installationID, r.ID, r.Owner, r.Name, r.DefaultBranch)
	}
	p, err := scanProgram(row)
	if err != nil {
		return bot.Program{}, fmt.Errorf("ensure program %s/%s (id %d): %w", r.Owner, r.Name, r.ID, err)
	}
	return p, nil
}

func (t *sqliteTx) Program(ctx context.Context, id int64) (bot.Program, error) {
	return t.programWhere(ctx, fmt.Sprintf("program %d", id), selectProgram, id)
}

// ProgramByGitHubID finds the program of a GitHub repository id.
func (t *sqliteTx) ProgramByGitHubID(ctx context.Context, id int64) (bot.Program, error) {
	return t.programWhere(ctx, fmt.Sprintf("program of repository id %d", id), selectProgramByGitHubID, id)
}

// ProgramByName finds the program holding owner/repo, ignoring case as
// GitHub does.
func (t *sqliteTx) ProgramByName(ctx context.Context, owner, repo string) (bot.Program, error) {
	return t.programWhere(ctx, fmt.Sprintf("program %s/%s", owner, repo), selectProgramByName, owner, repo)
}

// programWhere runs a query of one program; what names the program in
// errors.
func (t *sqliteTx) programWhere(ctx context.Context, what, query string, args ...any) (bot.Program, error) {
	p, err := scanProgram(t.tx.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Program{}, fmt.Errorf("%s: %w", what, bot.ErrNotFound)
	}
	if err != nil {
		return bot.Program{}, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// Programs lists every program, removed ones included, in the order they
// were created.
func (t *sqliteTx) Programs(ctx context.Context) ([]bot.Program, error) {
	ps, err := sqliteQueryAll(ctx, t, selectPrograms, nil, scanProgram)
	if err != nil {
		return nil, fmt.Errorf("programs: %w", err)
	}
	return ps, nil
}

func (t *sqliteTx) SetProgramRemoved(ctx context.Context, id int64, removed bool) error {
	res, err := t.tx.ExecContext(ctx, updateProgramRemove, removed, id)
	if err != nil {
		return fmt.Errorf("set program %d removed: %w", id, err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return fmt.Errorf("set program %d removed: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("program %d: %w", id, bot.ErrNotFound)
	}
	return nil
}

// requireProgram returns ErrNotFound unless program id exists.
func (t *sqliteTx) requireProgram(ctx context.Context, id int64) error {
	var one int
	err := t.tx.QueryRowContext(ctx, selectProgramExists, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("program %d: %w", id, bot.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	return nil
}

// Pipelines.
const (
	deletePipelines = `DELETE FROM pipelines WHERE program_id = ?`
	insertPipeline  = `INSERT INTO pipelines (program_id, kind, branch, trigger_kind, approval, scheduled)
VALUES (?, ?, ?, ?, ?, ?)`
	selectPipelines = `SELECT program_id, kind, branch, trigger_kind, approval, scheduled
FROM pipelines WHERE program_id = ?`
)

// SetPipelines replaces the program's pipelines with ps (checked: see
// checkedTx).
func (t *sqliteTx) SetPipelines(ctx context.Context, programID int64, ps []bot.Pipeline) error {
	if _, err := t.tx.ExecContext(ctx, deletePipelines, programID); err != nil {
		return fmt.Errorf("set pipelines of program %d: %w", programID, err)
	}
	for _, p := range ps {
		_, err := t.tx.ExecContext(ctx, insertPipeline, programID, p.Kind, p.Branch, p.Trigger, p.Approval, p.Scheduled)
		if err != nil {
			return fmt.Errorf("set pipelines of program %d: %s: %w", programID, p.Kind, err)
		}
	}
	return nil
}

// Pipelines returns the program's pipelines in the order of bot.PipelineKinds.
func (t *sqliteTx) Pipelines(ctx context.Context, programID int64) ([]bot.Pipeline, error) {
	ps, err := sqliteQueryAll(ctx, t, selectPipelines, []any{programID}, func(row rowScanner) (bot.Pipeline, error) {
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

// kindOrder is the position of kind in bot.PipelineKinds; unknown kinds
// come last.
func kindOrder(kind bot.PipelineKind) int {
	if i := slices.Index(bot.PipelineKinds, kind); i >= 0 {
		return i
	}
	return len(bot.PipelineKinds)
}
