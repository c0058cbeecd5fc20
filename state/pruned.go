package state

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// When retention removed artifact sets (migrations: SQLite 0014,
// PostgreSQL 0011).

var setDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// RecordPruned checks that each digest is an artifact set's (64 lower-case
// hex digits) and the time is set.
func (t checkedTx) RecordPruned(ctx context.Context, digests []string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("record pruned artifact sets: no time")
	}
	for _, d := range digests {
		if !setDigest.MatchString(d) {
			return fmt.Errorf("record pruned artifact sets: %q is not an artifact set's digest", d)
		}
	}
	return t.storeTx.RecordPruned(ctx, digests, at.UTC())
}

// PrunedAt reads when the sets were last pruned; empty digests are left
// out.
func (t checkedTx) PrunedAt(ctx context.Context, digests []string) (map[string]time.Time, error) {
	var ds []string
	seen := map[string]bool{}
	for _, d := range digests {
		if d != "" && !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	return t.storeTx.PrunedAt(ctx, ds)
}

const (
	sqliteUpsertPruned = `INSERT INTO pruned_artifacts (digest, pruned_at) VALUES (?, ?)
ON CONFLICT (digest) DO UPDATE SET pruned_at = excluded.pruned_at`
	sqliteSelectPruned = `SELECT pruned_at FROM pruned_artifacts WHERE digest = ?`
	pgUpsertPruned     = `INSERT INTO pruned_artifacts (digest, pruned_at) VALUES ($1, $2)
ON CONFLICT (digest) DO UPDATE SET pruned_at = excluded.pruned_at`
	pgSelectPruned = `SELECT pruned_at FROM pruned_artifacts WHERE digest = $1`
)

// RecordPruned records the sets' prune time.
func (t *sqliteTx) RecordPruned(ctx context.Context, digests []string, at time.Time) error {
	for _, d := range digests {
		if _, err := t.tx.ExecContext(ctx, sqliteUpsertPruned, d, dbTime(at)); err != nil {
			return fmt.Errorf("record artifact set %s pruned: %w", bot.ShortDigest(d), err)
		}
	}
	return nil
}

// PrunedAt reads the sets' prune times, one at a time (a page of history
// names at most a few hundred).
func (t *sqliteTx) PrunedAt(ctx context.Context, digests []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for _, d := range digests {
		got, err := sqliteQueryAll(ctx, t, sqliteSelectPruned, []any{d}, func(row rowScanner) (at time.Time, err error) {
			return at, row.Scan(timeDest{&at})
		})
		if err != nil {
			return nil, fmt.Errorf("when artifact set %s was pruned: %w", bot.ShortDigest(d), err)
		}
		if len(got) > 0 {
			out[d] = got[0]
		}
	}
	return out, nil
}

// RecordPruned records the sets' prune time.
func (t *postgresTx) RecordPruned(ctx context.Context, digests []string, at time.Time) error {
	for _, d := range digests {
		if _, err := t.exec(ctx, pgUpsertPruned, d, at); err != nil {
			return fmt.Errorf("record artifact set %s pruned: %w", bot.ShortDigest(d), err)
		}
	}
	return nil
}

// PrunedAt reads the sets' prune times.
func (t *postgresTx) PrunedAt(ctx context.Context, digests []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for _, d := range digests {
		got, err := queryAll(ctx, t, pgSelectPruned, []any{d}, func(row rowScanner) (at time.Time, err error) {
			return at, row.Scan(pgTimeDest{&at})
		})
		if err != nil {
			return nil, fmt.Errorf("when artifact set %s was pruned: %w", bot.ShortDigest(d), err)
		}
		if len(got) > 0 {
			out[d] = got[0]
		}
	}
	return out, nil
}
