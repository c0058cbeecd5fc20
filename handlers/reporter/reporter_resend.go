package reporter

import (
	"context"

	"github.com/stagehand-dev/stagehand/bot"
)

// ResendCheckRuns makes the reporter send each execution's current check
// run again, for a GitHub that lost them: the playground's stand-in keeps
// check runs in memory, so after a restart the refs in the store name check
// runs it no longer has. With what was reported of those refs forgotten and
// the executions touched, the reporter updates each check run, is told 404
// and creates it anew. Passed gates' check runs and deployments are left
// alone.
func ResendCheckRuns(ctx context.Context, store bot.Transactor) error {
	return store.Update(ctx, func(tx bot.Tx) error {
		return bot.EachProgram(ctx, tx, func(_ bot.Program, execs []bot.Execution) error {
			for _, ex := range execs {
				if err := resendCheckRun(ctx, tx, ex.ID); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func resendCheckRun(ctx context.Context, tx bot.ReportTx, executionID int64) error {
	refs, err := tx.GitHubRefs(ctx, executionID)
	if err != nil {
		return err
	}
	forgot := false
	for _, r := range refs {
		_, checkRun := bot.CheckRunPhase(r.Key)
		if !checkRun || r.GitHubID == 0 || bot.ParseCheckRunReport(r.Reported).State == bot.CheckRunClosed {
			continue
		}
		r.Reported = bot.CheckRunReport{State: bot.CheckRunForgotten}.String()
		if err := tx.PutGitHubRef(ctx, r); err != nil {
			return err
		}
		forgot = true
	}
	if !forgot {
		return nil
	}
	return tx.Touch(ctx, executionID)
}
