package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SecretStatus says, for each declared secret of an environment, "set" or
// "missing" (never a value).
type SecretStatus interface {
	Status(prog Program, env EnvironmentName, names []string) map[string]string
}

// Status is /stagehand status (Markdown): the pipelines, the active and
// queued executions, and what runs on stage and production.
func (e *Engine) Status(ctx context.Context, req Request, programID int64) (string, error) {
	prog, pol, err := e.programAndPolicy(ctx, req, programID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = e.viewTx(ctx, func(tx EngineTx) error {
		var pipes []Pipeline
		if pol.Config != nil {
			pipes = PipelinesOf(prog.ID, pol.Config)
		}
		fmt.Fprintf(&b, "**%s** (policy: `.github/stagehand.yml` on %s)\n\n| pipeline | branch | trigger |\n| --- | --- | --- |\n", prog.FullName(), pol.Describe())
		if len(pipes) == 0 {
			b.WriteString("| none | — | — |\n")
		}
		for _, p := range pipes {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", p.Kind, cmp.Or(p.Branch, "—"), cmp.Or(string(p.Trigger), "promotion"))
		}
		active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: prog.ID, States: ActiveStates})
		if err != nil {
			return err
		}
		b.WriteString("\n**Active and queued**\n\n")
		if len(active) == 0 {
			b.WriteString("none\n")
		}
		for _, ex := range active {
			fmt.Fprintf(&b, "- [%s](%s) at %s: %s — %s\n", ex, e.Link(prog, ex.Number), ShortSHA(ex.Commit), ex.State, ex.Message)
		}
		b.WriteString("\n**Environments**\n\n")
		for _, env := range []EnvironmentName{Stage, Production} {
			d, err := tx.Deployment(ctx, prog.ID, env)
			switch {
			case errors.Is(err, ErrNotFound):
				fmt.Fprintf(&b, "- %s: nothing deployed yet\n", env)
			case err != nil:
				return err
			default:
				fmt.Fprintf(&b, "- %s: %s (%s #%d), artifact set %s, since %s\n", env, ShortSHA(d.Commit), d.Pipeline, d.Number, ShortDigest(d.ArtifactDigest), d.Since.UTC().Format("2006-01-02 15:04 MST"))
			}
			if pol.Config != nil {
				writeCalendar(&b, pol.Config.Environment(env).Calendar(), env, e.Clock.Now())
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	err = e.Store.View(ctx, func(tx Tx) error {
		pin, err := ReadRestorePin(ctx, tx, prog.ID)
		if pin.Pinned() {
			fmt.Fprintf(&b, "\n📌 Production is %s.\n", pin)
		}
		return err
	})
	return b.String(), err
}

// writeCalendar adds an environment's deploy windows and freezes, when it
// declares any, and whether deploys may start now or when they may.
func writeCalendar(b *strings.Builder, c DeployCalendar, env EnvironmentName, now time.Time) {
	if !c.Restricted() {
		return
	}
	for _, l := range c.Report(env, now).Lines() {
		fmt.Fprintf(b, "  - %s\n", l)
	}
}
