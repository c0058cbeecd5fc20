package bot

import (
	"context"
	"errors"
	"fmt"
)

// ProgramOf finds the program of a repository: by its GitHub id, or, for a
// program recorded before Stagehand kept ids, by the name owner/name. A
// program holding the name under another id belongs to another repository:
// ErrNotFound.
func ProgramOf(ctx context.Context, tx ProgramReader, id int64, owner, name string) (Program, error) {
	if id != 0 {
		p, err := tx.ProgramByGitHubID(ctx, id)
		if !errors.Is(err, ErrNotFound) {
			return p, err
		}
	}
	p, err := tx.ProgramByName(ctx, owner, name)
	if err != nil {
		return Program{}, err
	}
	if id != 0 && p.GitHubID != 0 {
		return Program{}, fmt.Errorf("program of repository %d: %s/%s is repository %d's: %w", id, owner, name, p.GitHubID, ErrNotFound)
	}
	return p, nil
}

// ProgramWalker is what EachProgram reads.
type ProgramWalker interface {
	Programs(ctx context.Context) ([]Program, error)
	Executions(ctx context.Context, f ExecutionFilter) ([]Execution, error)
}

// EachProgram calls fn with every program and all its executions, newest
// first.
func EachProgram(ctx context.Context, tx ProgramWalker, fn func(p Program, execs []Execution) error) error {
	progs, err := tx.Programs(ctx)
	if err != nil {
		return err
	}
	for _, p := range progs {
		execs, err := tx.Executions(ctx, ExecutionFilter{ProgramID: p.ID})
		if err != nil {
			return err
		}
		if err := fn(p, execs); err != nil {
			return err
		}
	}
	return nil
}

// PromoteRequested says whether the last promotion click among events was
// Promote Build, not yet confirmed (a promotion) or dismissed.
func PromoteRequested(events []Event) bool {
	requested := false
	for _, ev := range events {
		switch ev.Kind {
		case EventPromoteRequested:
			requested = true
		case EventPromoteDismissed, EventPromoted:
			requested = false
		}
	}
	return requested
}

// PermanentError marks a failure no retry can fix: the router sends the
// message to the poison queue at once (it asks for Permanent()).
type PermanentError struct{ Err error }

func (e PermanentError) Error() string   { return e.Err.Error() }
func (e PermanentError) Unwrap() error   { return e.Err }
func (e PermanentError) Permanent() bool { return true }

// ShortDigest is the first 12 characters of a digest, as pages and logs
// show it.
func ShortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// FileCount is "1 file" or "n files".
func FileCount(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}
