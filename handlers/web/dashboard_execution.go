package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// What an execution's page shows: its steps on a timeline with their log
// tails, its artifact set, and what its push did to the other pipelines.

// otherPipelineNote says what the push of ex's commit did to another
// pipeline: why it did not start (the push-time reason, still true), or the
// execution it started as it is now, not as it was at the push ("" when
// the record is about ex's own pipeline).
func otherPipelineNote(ctx context.Context, tx bot.ExecutionReader, ex bot.Execution, r bot.TriggerRecord) (string, error) {
	if r.Pipeline == ex.Pipeline || r.ExecutionID == ex.ID {
		return "", nil
	}
	if r.ExecutionID == 0 {
		return r.Reason, nil
	}
	other, err := tx.Execution(ctx, r.ExecutionID)
	if errors.Is(err, bot.ErrNotFound) {
		return r.Reason, nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, started by the push of %s: %s", other, bot.ShortSHA(r.Commit), other.State), nil
}

// parseNumber reads an execution number from a path.
func parseNumber(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "#"))
	if err != nil || n <= 0 {
		return 0, notFound("%q is not an execution number: executions are numbered 1, 2, 3, …", s)
	}
	return n, nil
}

// execution finds execution number of p, or says which numbers exist.
func (d *Dashboard) execution(ctx context.Context, tx bot.ExecutionReader, p bot.Program, number int) (bot.Execution, error) {
	ex, err := tx.ExecutionByNumber(ctx, p.ID, number)
	if errors.Is(err, bot.ErrNotFound) {
		latest, err := tx.Executions(ctx, bot.ExecutionFilter{ProgramID: p.ID, Limit: 1})
		if err != nil {
			return ex, err
		}
		if len(latest) == 0 {
			return ex, notFound("%s has no execution #%d: it has no executions yet.", p.FullName(), number)
		}
		return ex, notFound("%s has no execution #%d: its executions are #1 to #%d.", p.FullName(), number, latest[0].Number)
	}
	return ex, err
}

func (d *Dashboard) loadExecution(ctx context.Context, p bot.Program, number string) (executionView, error) {
	var v executionView
	n, err := parseNumber(number)
	if err != nil {
		return v, err
	}
	err = d.view(ctx, func(tx readTx) (err error) {
		v = executionView{}
		ex, err := d.execution(ctx, tx, p, n)
		if err != nil {
			return err
		}
		if v.ExecutionDetail, err = bot.LoadExecutionDetail(ctx, tx, ex); err != nil {
			return err
		}
		if q, ok := d.approval(ex, v.ExecutionDetail.Steps, v.Events); ok {
			v.Approval = &q
		}
		v.Overrides = bot.Overrides(v.Events)
		notes, err := tx.NotificationsOf(ctx, ex.ID)
		if err != nil {
			return err
		}
		v.Notifications = notes
		for _, n := range notes {
			if n.State == bot.NotificationGaveUp {
				v.FailedNotifications = append(v.FailedNotifications, n)
			}
		}
		if ex.Commit != "" {
			recs, err := tx.TriggerRecords(ctx, p.ID, ex.Commit)
			if err != nil {
				return err
			}
			for _, r := range recs {
				note, err := otherPipelineNote(ctx, tx, ex, r)
				if err != nil {
					return err
				}
				if note != "" && !slices.Contains(v.Notes, note) {
					v.Notes = append(v.Notes, note)
				}
			}
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	now := d.now()
	v.Duration = span(v.Execution.StartedAt, v.Execution.FinishedAt, now)
	for _, s := range v.ExecutionDetail.Steps {
		v.Steps = append(v.Steps, d.stepView(v.Program, v.Execution, s, now))
	}
	placeSteps(v.Execution, v.Steps, now)
	if dg := v.Execution.ArtifactDigest; dg != "" && d.Artifacts != nil {
		set, err := d.Artifacts.Get(ctx, dg)
		switch {
		case errors.Is(err, bot.ErrNotFound):
			v.ArtifactsError = fmt.Sprintf("the artifact set %s is not in the artifact store (retention removes sets nothing needs once their executions are older than the --retention age)", dg)
		case err != nil:
			d.logger().WarnContext(ctx, "reading an artifact set for the dashboard", "digest", dg, bot.LogError, err)
			v.ArtifactsError = fmt.Sprintf("the artifact set %s could not be read: %v", dg, err)
		default:
			v.Artifacts = &set
		}
	}
	return v, nil
}

// span is the time from start to end (or to now while it goes on); zero
// when it has not started.
func span(start, end, now time.Time) time.Duration {
	if start.IsZero() {
		return 0
	}
	if end.IsZero() {
		end = now
	}
	if end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

func (d *Dashboard) logFile(ex bot.Execution, step bot.StepName) string {
	return d.Logs.File(ex.ID, step)
}

func (d *Dashboard) stepView(p bot.Program, ex bot.Execution, s bot.Step, now time.Time) stepView {
	v := stepView{Step: s, Tail: s.LogTail, LogSize: -1}
	end := s.FinishedAt
	if end.IsZero() && s.State != bot.StepRunning && s.State != bot.StepWaiting {
		end = s.StartedAt // not going on: ended without a time
	}
	v.Duration = span(s.StartedAt, end, now)
	if d.Logs == nil {
		return v
	}
	fi, err := os.Stat(d.logFile(ex, s.Name))
	if err != nil || !fi.Mode().IsRegular() {
		return v
	}
	v.LogSize, v.LogPath = fi.Size(), logPath(p, ex.Number, s.Name)
	if v.Tail == "" && fi.Size() > 0 {
		v.Tail = readTail(d.logFile(ex, s.Name), bot.LogTailBytes)
	}
	return v
}

// readTail returns about the last n bytes of a file, from a line start.
func readTail(name string, n int64) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return ""
	}
	if off > 0 {
		if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// placeSteps sets each started step's place on the execution's timeline.
func placeSteps(ex bot.Execution, steps []stepView, now time.Time) {
	start := ex.StartedAt
	for _, s := range steps {
		if !s.StartedAt.IsZero() && (start.IsZero() || s.StartedAt.Before(start)) {
			start = s.StartedAt
		}
	}
	if start.IsZero() {
		return
	}
	end := start
	for _, s := range steps {
		if t := s.StartedAt.Add(s.Duration); !s.StartedAt.IsZero() && t.After(end) {
			end = t
		}
	}
	if !ex.FinishedAt.IsZero() && ex.FinishedAt.After(end) {
		end = ex.FinishedAt
	} else if ex.State.Active() && now.After(end) {
		end = now
	}
	total := end.Sub(start)
	if total <= 0 {
		return
	}
	for i := range steps {
		s := &steps[i]
		if s.StartedAt.IsZero() {
			continue
		}
		s.Offset = roundPct(float64(s.StartedAt.Sub(start)) / float64(total) * 100)
		s.Width = max(roundPct(float64(s.Duration)/float64(total)*100), 0.5)
		if s.Offset+s.Width > 100 {
			s.Offset = max(100-s.Width, 0)
		}
	}
}

func roundPct(f float64) float64 { return float64(int(f*10+0.5)) / 10 }
