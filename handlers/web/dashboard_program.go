package web

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/stagehand-dev/stagehand/bot"
)

// What the programs' list and a program's pages show: pipelines, queue,
// recent executions, and each environment's deployment, variables, secrets
// and calendar.

// runOrder sorts active executions in the order they run: those running
// or waiting first, then the queued ones, each oldest first.
func runOrder(es []bot.Execution) {
	queued := func(e bot.Execution) int {
		if e.State == bot.ExecutionQueued {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(es, func(a, b bot.Execution) int {
		if c := cmp.Compare(queued(a), queued(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.Number, b.Number)
	})
}

func (d *Dashboard) loadPrograms(ctx context.Context) ([]programSummary, error) {
	progs, err := d.readablePrograms(ctx)
	if err != nil {
		return nil, err
	}
	var out []programSummary
	err = d.view(ctx, func(tx readTx) error {
		out = nil
		for _, p := range progs {
			s := programSummary{Program: p}
			if s.Pipelines, err = tx.Pipelines(ctx, p.ID); err != nil {
				return err
			}
			latest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Limit: 1})
			if err != nil {
				return err
			}
			if len(latest) > 0 {
				s.Latest = &latest[0]
			}
			active, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, States: bot.ActiveStates})
			if err != nil {
				return err
			}
			s.Active = len(active)
			if s.Stage, err = deployment(ctx, tx, p.ID, bot.Stage); err != nil {
				return err
			}
			if s.Prod, err = deployment(ctx, tx, p.ID, bot.Production); err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func deployment(ctx context.Context, tx bot.ExecutionReader, programID int64, env bot.EnvironmentName) (*bot.Deployment, error) {
	dep, err := tx.Deployment(ctx, programID, env)
	if errors.Is(err, bot.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &dep, nil
}

// Limits of the lists on a program's page.
const (
	lastPerPipeline = 5
	recentLimit     = 25
)

// loadProgram reads p's page; its variables only when perm is write.
func (d *Dashboard) loadProgram(ctx context.Context, p bot.Program, perm Permission) (programView, error) {
	var v programView
	setVars := map[bot.EnvironmentName]map[string]string{}
	err := d.view(ctx, func(tx readTx) error {
		v = programView{Program: p}
		pipes, err := tx.Pipelines(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, pipe := range pipes {
			last, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Pipeline: pipe.Kind, Limit: lastPerPipeline})
			if err != nil {
				return err
			}
			v.Pipelines = append(v.Pipelines, pipelineView{Pipeline: pipe, Last: last})
		}
		if v.Queue, err = tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, States: bot.ActiveStates}); err != nil {
			return err
		}
		runOrder(v.Queue)
		if v.Recent, err = tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Limit: recentLimit}); err != nil {
			return err
		}
		for _, env := range []bot.EnvironmentName{bot.Stage, bot.Production} {
			ev := environmentView{Name: env}
			if ev.Deployment, err = deployment(ctx, tx, p.ID, env); err != nil {
				return err
			}
			if env == bot.Production {
				if ev.Pin, err = bot.ReadRestorePin(ctx, tx, p.ID); err != nil {
					return err
				}
			}
			for _, a := range v.Queue {
				if !bot.Holds(a.Pipeline, env) {
					continue
				}
				if a.State == bot.ExecutionQueued {
					ev.Next = append(ev.Next, a)
				} else {
					ev.Holders = append(ev.Holders, a)
				}
			}
			if ev.Approvals, err = d.waitingApprovals(ctx, tx, ev.Holders); err != nil {
				return err
			}
			ev.VariablesHidden = perm < WriteAccess
			if !ev.VariablesHidden {
				if setVars[env], err = tx.Variables(ctx, p.ID, env); err != nil {
					return err
				}
			}
			v.Environments = append(v.Environments, ev)
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	// Variables and the calendar read the store themselves: outside the
	// transaction above.
	for i := range v.Environments {
		ev := &v.Environments[i]
		d.loadCalendar(ctx, v.Program, ev)
		if ev.VariablesHidden {
			continue
		}
		set := setVars[ev.Name]
		all := set
		if d.Variables != nil {
			merged, err := d.Variables(ctx, v.Program.ID, ev.Name)
			if err != nil {
				d.logger().WarnContext(ctx, "reading variables for the dashboard", bot.LogRepo, v.Program.FullName(), "environment", ev.Name, bot.LogError, err)
				ev.VariablesError = "the configuration's variables could not be read; showing those set with /stagehand env set"
			} else {
				all = merged
			}
		}
		for _, k := range slices.Sorted(maps.Keys(all)) {
			src := "config"
			if sv, ok := set[k]; ok && sv == all[k] {
				src = "set"
			}
			ev.Variables = append(ev.Variables, variableView{Name: k, Value: all[k], Source: src})
		}
		if d.Secrets != nil {
			status, err := d.Secrets(ctx, v.Program, ev.Name)
			if err != nil {
				d.logger().WarnContext(ctx, "reading declared secrets for the dashboard", bot.LogRepo, v.Program.FullName(), "environment", ev.Name, bot.LogError, err)
				ev.SecretsError = "the declared secrets could not be read"
			}
			for _, k := range slices.Sorted(maps.Keys(status)) {
				ev.Secrets = append(ev.Secrets, secretView{Name: k, Status: status[k]})
			}
		}
	}
	return v, nil
}

// loadCalendar adds the environment's deploy calendar, as of now, when it
// declares windows or freezes. Everyone who sees the program sees it.
func (d *Dashboard) loadCalendar(ctx context.Context, p bot.Program, ev *environmentView) {
	if d.Calendar == nil {
		return
	}
	cal, err := d.Calendar(ctx, p.ID, ev.Name)
	if err != nil {
		d.logger().WarnContext(ctx, "reading the deploy calendar for the dashboard", bot.LogRepo, p.FullName(), "environment", ev.Name, bot.LogError, err)
		ev.CalendarError = "the policy's deploy windows and freezes could not be read"
		return
	}
	if cal.Restricted() {
		r := cal.Report(ev.Name, d.now())
		ev.Calendar = &r
	}
}
