package state

import (
	"context"
	"fmt"
	"time"
)

// pgUpsertLease is upsertLease in Postgres's dialect. Two transactions
// inserting the same new name cannot both win: the second waits for the
// first's row, then finds the conflict, locks the row and evaluates the
// WHERE of the conflict branch on the version the first committed.
const pgUpsertLease = `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= $4`

// AcquireLease gives the lease name to holder until now+ttl when nobody has
// it, holder has it already (a renewal), or it expired at or before now. It
// reports whether holder has the lease. It takes no program lock: the
// upsert locks the lease's row until the transaction ends. Times are
// truncated to the microseconds Postgres keeps.
func (t *postgresTx) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	n, err := t.exec(ctx, pgUpsertLease, name, holder, micro(now.Add(ttl)), micro(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return n > 0, nil
}
