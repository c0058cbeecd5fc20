package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ExecutionDetail is an execution with what its readers show of it: the
// reporter's check runs, the dashboard's page, the API's answer and the
// worker's claim all read it with LoadExecutionDetail.
type ExecutionDetail struct {
	Program   Program
	Execution Execution
	Steps     []Step
	Events    []Event
	// Source is the stage-only execution a prod-only execution promotes;
	// nil when there is none, or when it is gone (see NeedSource).
	Source *Execution
}

// DetailReader is what LoadExecutionDetail reads from.
type DetailReader interface {
	Program(ctx context.Context, id int64) (Program, error)
	Execution(ctx context.Context, id int64) (Execution, error)
	Steps(ctx context.Context, executionID int64) ([]Step, error)
	Events(ctx context.Context, executionID int64) ([]Event, error)
}

// LoadExecutionDetail reads the program, steps, events and source of ex,
// which the caller has read (by id, by number, or to check its state). A
// source that no longer exists leaves Source nil: a page shows what is
// left; whoever needs it asks NeedSource.
func LoadExecutionDetail(ctx context.Context, tx DetailReader, ex Execution) (ExecutionDetail, error) {
	d := ExecutionDetail{Execution: ex}
	var err error
	if d.Program, err = tx.Program(ctx, ex.ProgramID); err != nil {
		return d, err
	}
	if d.Steps, err = tx.Steps(ctx, ex.ID); err != nil {
		return d, err
	}
	if d.Events, err = tx.Events(ctx, ex.ID); err != nil {
		return d, err
	}
	if ex.SourceID != 0 {
		src, err := tx.Execution(ctx, ex.SourceID)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return d, err
		default:
			d.Source = &src
		}
	}
	return d, nil
}

// NeedSource is an error wrapping ErrNotFound when the execution promotes
// a source that LoadExecutionDetail did not find.
func (d ExecutionDetail) NeedSource() error {
	if d.Execution.SourceID != 0 && d.Source == nil {
		return fmt.Errorf("execution %d, the source of %s: %w", d.Execution.SourceID, d.Execution, ErrNotFound)
	}
	return nil
}

// Step returns the execution's step called name.
func (d ExecutionDetail) Step(name StepName) (Step, error) {
	for _, s := range d.Steps {
		if s.Name == name {
			return s, nil
		}
	}
	return Step{}, fmt.Errorf("step %s of execution %d: %w", name, d.Execution.ID, ErrNotFound)
}

// ProgramPath is the dashboard page of a program, from the dashboard's
// root: "/programs/owner/repo".
func ProgramPath(p Program) string {
	return "/programs/" + url.PathEscape(p.Owner) + "/" + url.PathEscape(p.Repo)
}

// ProgramURL is ProgramPath under the dashboard's public URL (with or
// without its trailing slash).
func ProgramURL(publicURL string, p Program) string {
	return strings.TrimRight(publicURL, "/") + ProgramPath(p)
}

// ExecutionPath is the dashboard page of execution number of p, from the
// dashboard's root: "/programs/owner/repo/executions/4".
func ExecutionPath(p Program, number int) string {
	return ProgramPath(p) + "/executions/" + strconv.Itoa(number)
}

// ExecutionURL is ExecutionPath under the dashboard's public URL (with or
// without its trailing slash): the one link to an execution.
func ExecutionURL(publicURL string, p Program, number int) string {
	return strings.TrimRight(publicURL, "/") + ExecutionPath(p, number)
}
