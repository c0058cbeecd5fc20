package state

import (
	"context"
	"fmt"
	"time"
)

// upsertLease takes the lease name for holder until expires_at, unless
// another holder has it and it has not expired: the WHERE of the conflict
// branch leaves the row as it is then, and no row changes. The Postgres
// port is the same statement with $n placeholders.
const upsertLease = `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`

// AcquireLease gives the lease name to holder until now+ttl when nobody has
// it, holder has it already (a renewal), or it expired at or before now. It
// reports whether holder has the lease. The write transaction SQLite's
// Update holds makes the read-decide-write one step.
func (t *sqliteTx) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	res, err := t.tx.ExecContext(ctx, upsertLease, name, holder, dbTime(now.Add(ttl)), dbTime(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	n, err := rowsChanged(res)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return n > 0, nil
}

// ReleaseLeases ends every lease in the database at now. It is for a
// process that knows every other process that used this database is dead:
// the embedded setup's server, which holds the data directory's lock, so
// that the leases of a server that crashed there (the reporter's, the
// notification sender's, the redelivery pass's) need not expire first. It
// reports how many leases it ended early.
func (s *SQLite) ReleaseLeases(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE expires_at > ?`, dbTime(now), dbTime(now))
	if err != nil {
		return 0, fmt.Errorf("release the leases of a previous run: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("release the leases of a previous run: %w", err)
	}
	return n, nil
}
