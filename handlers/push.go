package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/ghapp"
)

// ConfigPath is where a repository keeps its Stagehand configuration.
const ConfigPath = ".github/stagehand.yml"

// push reads the configuration at the pushed commit, decides which
// pipelines start (rule A) and records a queued execution for each, and why
// the others did not start.
func (h *Webhooks) push(ctx context.Context, d delivery, ev *github.PushEvent) error {
	owner, repo := ev.GetRepo().GetOwner().GetLogin(), ev.GetRepo().GetName()
	if owner == "" {
		owner = ev.GetRepo().GetOwner().GetName()
	}
	inst := ev.GetInstallation().GetID()
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, owner+"/"+repo), slog.Int64(bot.LogInstallationID, inst))
	if inst == 0 {
		h.Logger.WarnContext(ctx, "push ignored", bot.LogError, errNoInstallation)
		_, err := h.mark(ctx, d, nil)
		return err
	}
	push := bot.Push{
		Ref: ev.GetRef(), Before: ev.GetBefore(), After: ev.GetAfter(),
		Created: ev.GetCreated(), Deleted: ev.GetDeleted(), Forced: ev.GetForced(),
	}
	branch := push.Branch()
	// Tags and deletions start nothing: no need to read the configuration.
	if branch == "" || push.Deleted {
		_, err := h.mark(ctx, d, nil)
		if err == nil {
			h.Logger.InfoContext(ctx, "push starts nothing", "ref", push.Ref, "deleted", push.Deleted)
		}
		return err
	}
	if done, err := h.processed(ctx, d.guid); err != nil || done {
		if done {
			h.Logger.InfoContext(ctx, "delivery already processed; nothing to do")
		}
		return err
	}

	cfg, raw, why, err := h.readConfig(ctx, inst, owner, repo, push.After)
	if err != nil {
		return err
	}
	var decisions []bot.TriggerDecision // rule A; none when the file is missing or invalid
	if cfg != nil {
		decisions = bot.DecideTriggers(cfg, push)
	}
	now := h.Clock.Now()
	var started []bot.Execution
	_, err = h.mark(ctx, d, func(tx bot.Tx) error {
		prog, err := tx.EnsureProgram(ctx, inst, bot.Repository{ID: ev.GetRepo().GetID(), Owner: owner, Name: repo, DefaultBranch: ev.GetRepo().GetDefaultBranch()})
		if err != nil {
			return err
		}
		record := bot.TriggerRecord{ProgramID: prog.ID, DeliveryID: d.guid, Commit: push.After, Branch: branch, CreatedAt: now}
		if cfg == nil {
			record.Reason = why
			return tx.AddTriggerRecord(ctx, record)
		}
		if err := tx.SetPipelines(ctx, prog.ID, pipelinesOf(prog.ID, cfg)); err != nil {
			return err
		}
		started = started[:0] // the transaction may be retried
		for _, dec := range decisions {
			r := record
			r.Pipeline, r.Reason = dec.Pipeline, dec.Reason
			if dec.Start {
				e, err := bot.QueuePushStart(ctx, tx, bot.PushStart{
					Program: prog, Pipeline: dec.Pipeline, Commit: push.After, Branch: branch,
					Pusher: ev.GetSender().GetLogin(), DeliveryID: d.guid, Config: raw, At: now,
				})
				if err != nil {
					return err
				}
				r.ExecutionID, r.Reason = e.ID, fmt.Sprintf("%s queued by the push of %s", e, bot.ShortSHA(push.After))
				started = append(started, e)
			}
			if err := tx.AddTriggerRecord(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if cfg == nil {
		h.Logger.InfoContext(ctx, "push starts nothing", "reason", why)
	}
	h.explainPush(ctx, inst, owner, repo, push.After, decisions, why)
	for _, e := range started {
		h.Logger.InfoContext(ctx, "execution queued", bot.LogPipeline, string(e.Pipeline), bot.LogExecution, e.Number, "commit", bot.ShortSHA(e.Commit))
	}
	if len(started) > 0 && h.Engine != nil {
		// The executions are stored; if this fails the reconcile loop
		// starts them, so the delivery is not retried for it.
		if err := h.Engine.Advance(ctx, started[0].ProgramID); err != nil {
			h.Logger.WarnContext(ctx, "starting the queued executions; the reconcile loop will retry", bot.LogError, err)
		}
	}
	return nil
}

// readConfig fetches and parses the configuration at a commit. A missing or
// invalid file is not an error of the handler: it returns a nil config and
// the reason nothing starts. Errors are for failures worth a retry.
func (h *Webhooks) readConfig(ctx context.Context, inst int64, owner, repo, sha string) (*bot.Config, []byte, string, error) {
	data, err := h.Files.FetchFile(ctx, inst, owner, repo, ConfigPath, sha)
	if errors.Is(err, bot.ErrNotFound) {
		return nil, nil, fmt.Sprintf("nothing started: %s has no %s at %s", owner+"/"+repo, ConfigPath, bot.ShortSHA(sha)), nil
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("reading %s of %s/%s at %s: %w", ConfigPath, owner, repo, bot.ShortSHA(sha), err)
	}
	cfg, err := h.ParseConfig(data)
	if err != nil {
		lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
		return nil, nil, fmt.Sprintf("nothing started: %s at %s is invalid (%d problems); fix it and push again:\n%s",
			ConfigPath, bot.ShortSHA(sha), len(lines), strings.Join(lines, "\n")), nil
	}
	return cfg, data, "", nil
}

func pipelinesOf(programID int64, cfg *bot.Config) []bot.Pipeline {
	var ps []bot.Pipeline
	for _, kind := range bot.PipelineKinds {
		if p, ok := cfg.Pipelines[kind]; ok {
			ps = append(ps, bot.Pipeline{ProgramID: programID, Kind: kind, PipelineConfig: p})
		}
	}
	return ps
}

// explainPush shows on the pushed commit what the push did not start: a
// failed stagehand/config check run with one annotation per error of an
// invalid file, and a skipped check run for full-stack when stage-only had
// priority (rule A). It is best effort: GitHub being down does not fail the
// delivery, whose executions are already recorded.
func (h *Webhooks) explainPush(ctx context.Context, inst int64, owner, repo, sha string, decisions []bot.TriggerDecision, why string) {
	if h.Checks == nil {
		return
	}
	var views []ghapp.CheckRunView
	switch {
	case strings.Contains(why, "is invalid"):
		views = append(views, ghapp.ConfigCheckRun(sha, configProblems(why)))
	default:
		for _, d := range decisions {
			if !d.Start && strings.Contains(d.Reason, "has priority") {
				views = append(views, ghapp.NotStartedView(d.Pipeline, sha, d.Reason, strings.TrimRight(h.PublicURL, "/")+"/programs/"+owner+"/"+repo))
			}
		}
	}
	for _, v := range views {
		if _, err := h.Checks.CreateCheckRun(ctx, inst, owner, repo, createOptions(v)); err != nil {
			h.Logger.WarnContext(ctx, "creating the check run that explains the push", "check_run", v.Name, bot.LogError, err)
		}
	}
}

var diagLine = regexp.MustCompile(`^[^:]*:(\d+):(\d+): (warning: )?(.*)$`)

// configProblems reads the "file:line:col: message" lines of a parse error.
func configProblems(why string) []ghapp.ConfigProblem {
	var out []ghapp.ConfigProblem
	for _, line := range strings.Split(why, "\n") {
		m := diagLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		l, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		out = append(out, ghapp.ConfigProblem{Line: l, Col: c, Message: m[4], Warning: m[3] != ""})
	}
	return out
}
