package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// Step work goes between the server role and the worker role (`stagehand
// worker`) over core NATS, on subjects apart from the JetStream streams:
//
//	<prefix>.work.run           a StepWork; the workers' queue group takes each once
//	<prefix>.work.out.<id>      the worker's frames: accepted, log, beat, result
//	<prefix>.work.cancel.<id>   the server's request to stop the work
//
// A worker needs no other subject but the artifacts bucket's (WorkerPermissions).
// The work's durability is the step's claim, kept by the server: a work
// message nobody takes, or a worker that goes silent, ends the step with a
// retry (build and tests) or a failure (deploys).

// WorkSubjects are the step-work subjects of a broker prefix.
type WorkSubjects struct{ Run, Out, Cancel string }

// StepWorkSubjects returns the subjects of prefix ("" is "stagehand"); Out
// and Cancel end with "." and take the work's id.
func StepWorkSubjects(prefix string) WorkSubjects {
	if prefix == "" {
		prefix = defaultPrefix
	}
	return WorkSubjects{Run: prefix + ".work.run", Out: prefix + ".work.out.", Cancel: prefix + ".work.cancel."}
}

// WorkerPermissions is the nats-server authorization of the worker role
// for a broker prefix: what it may publish and subscribe to, and nothing
// else (no stream of webhooks or step jobs, no other bucket).
func WorkerPermissions(prefix string) (publish, subscribe []string) {
	s := StepWorkSubjects(prefix)
	stream := "OBJ_" + ArtifactsBucket(prefix)
	publish = []string{
		s.Out + ">",
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".>",
		"$O." + ArtifactsBucket(prefix) + ".>",
	}
	subscribe = []string{s.Run, s.Cancel + ">", WorkerInboxPrefix(prefix) + ".>"}
	return publish, subscribe
}

// WorkerInboxPrefix is the inbox prefix of the worker role's connections
// (nats.CustomInboxPrefix): its replies come there, so its user needs no
// right to the servers' inboxes under _INBOX, where their JetStream
// deliveries and answers go.
func WorkerInboxPrefix(prefix string) string {
	if prefix == "" {
		prefix = defaultPrefix
	}
	return "_INBOX_" + prefix + "_worker"
}

// frame is one message from a worker about a work.
type frame struct {
	Kind   string             `json:"kind"` // accepted, log, beat, result
	Log    []byte             `json:"log,omitempty"`
	Result *worker.WorkResult `json:"result,omitempty"`
}

const (
	frameAccepted = "accepted"
	frameLog      = "log"
	frameBeat     = "beat"
	frameResult   = "result"
	// maxLogFrame bounds the log bytes of one frame (NATS's default
	// max_payload is 1 MiB).
	maxLogFrame = 32 << 10
	// noResponderPause is how long work nobody is subscribed for waits
	// before it is offered again.
	noResponderPause = 200 * time.Millisecond
)

// NATSSteps is the server role's worker.StepDispatcher: it publishes a
// step's work for the workers and follows the worker that takes it.
type NATSSteps struct {
	Conn   *nats.Conn
	Prefix string
	// AcceptTimeout is how long a work may wait for a worker (default
	// 30s); Silence how long a worker may send nothing before it is taken
	// for gone (default 20s; workers beat every 2s).
	AcceptTimeout, Silence time.Duration
}

// StepDispatcher returns the dispatcher on the broker's connection.
func (b *Broker) StepDispatcher() *NATSSteps {
	return &NATSSteps{Conn: b.nc, Prefix: b.opts.Prefix}
}

// Dispatch implements worker.StepDispatcher.
func (s *NATSSteps) Dispatch(ctx context.Context, work worker.StepWork, log io.Writer) (worker.WorkResult, error) {
	accept, silence := s.AcceptTimeout, s.Silence
	if accept == 0 {
		accept = 30 * time.Second
	}
	if silence == 0 {
		silence = 20 * time.Second
	}
	subj := StepWorkSubjects(s.Prefix)
	id := strings.TrimPrefix(nats.NewInbox(), nats.InboxPrefix)
	sub, err := s.Conn.SubscribeSync(subj.Out + id)
	if err != nil {
		return worker.WorkResult{}, fmt.Errorf("listening for the worker's answers: %w", err)
	}
	defer sub.Unsubscribe()
	payload, err := json.Marshal(work)
	if err != nil {
		return worker.WorkResult{}, fmt.Errorf("encoding the step's work: %w", err)
	}
	publish := func() error {
		if err := s.Conn.PublishMsg(&nats.Msg{Subject: subj.Run, Reply: subj.Out + id, Data: payload}); err != nil {
			return fmt.Errorf("publishing the step's work on %s: %w", subj.Run, err)
		}
		return nil
	}
	if err := publish(); err != nil {
		return worker.WorkResult{}, err
	}
	acceptBy := time.Now().Add(accept)
	accepted, cancelled := false, false
	for {
		wait := max(time.Until(acceptBy), time.Millisecond)
		if accepted {
			wait = silence
		}
		if cancelled {
			wait = 10 * time.Second // for the stopped commands' result
		}
		parent := ctx
		if cancelled {
			parent = context.WithoutCancel(ctx)
		}
		waitCtx, stop := context.WithTimeout(parent, wait)
		m, err := sub.NextMsgWithContext(waitCtx)
		stop()
		switch {
		case err != nil && ctx.Err() != nil && !cancelled:
			if !accepted {
				return worker.WorkResult{}, fmt.Errorf("stopped before a worker took the step: %w", ctx.Err())
			}
			cancelled = true
			if perr := s.Conn.Publish(subj.Cancel+id, nil); perr != nil {
				return worker.WorkResult{}, fmt.Errorf("asking the worker to stop: %w", perr)
			}
			continue
		case err != nil && cancelled:
			return worker.WorkResult{}, fmt.Errorf("the worker did not report after it was asked to stop: %w", ctx.Err())
		case errors.Is(err, nats.ErrNoResponders) && !accepted && time.Now().Before(acceptBy):
			// No worker is subscribed this instant (they all run work, or
			// one is between two): offer the work again shortly.
			select {
			case <-ctx.Done():
			case <-time.After(noResponderPause):
			}
			if err := publish(); err != nil {
				return worker.WorkResult{}, err
			}
			continue
		case errors.Is(err, nats.ErrNoResponders) && !accepted:
			return worker.WorkResult{}, fmt.Errorf("no worker took the step within %s: start `stagehand worker` with the worker role's NATS user on %s", accept, subj.Run)
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return worker.WorkResult{}, fmt.Errorf("waiting for the step's worker: %w", err)
		case err != nil && !accepted:
			return worker.WorkResult{}, fmt.Errorf("no worker took the step within %s: start `stagehand worker` with the worker role's NATS user on %s", accept, subj.Run)
		case err != nil:
			return worker.WorkResult{}, fmt.Errorf("the step's worker sent nothing for %s: it stopped or lost its connection", silence)
		}
		var f frame
		if err := json.Unmarshal(m.Data, &f); err != nil {
			return worker.WorkResult{}, fmt.Errorf("decoding the worker's answer: %w", err)
		}
		switch f.Kind {
		case frameAccepted:
			accepted = true
		case frameLog:
			accepted = true
			if _, err := log.Write(f.Log); err != nil {
				return worker.WorkResult{}, fmt.Errorf("writing the step log: %w", err)
			}
		case frameBeat:
			accepted = true
		case frameResult:
			if f.Result == nil {
				return worker.WorkResult{}, errors.New("the worker's result is empty")
			}
			return *f.Result, nil
		}
	}
}

// Worker is the worker role: it takes step work from NATS, one work per
// free slot, runs it with Run and sends the log, beats and result back.
type Worker struct {
	Conn        *nats.Conn
	Prefix      string
	Run         func(ctx context.Context, work worker.StepWork, log io.Writer) worker.WorkResult
	Concurrency int           // default 4
	Beat        time.Duration // default 2s
	Logger      *slog.Logger
}

// Serve takes work until ctx ends, then stops the commands that run (each
// reported with a retry) and returns once they have reported.
func (w *Worker) Serve(ctx context.Context) error {
	if w.Concurrency <= 0 {
		w.Concurrency = 4
	}
	if w.Beat <= 0 {
		w.Beat = 2 * time.Second
	}
	subj := StepWorkSubjects(w.Prefix)
	slots := make(chan struct{}, w.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		// One message per subscription: a worker with no free slot is not
		// in the queue group, so its work goes to another worker.
		sub, err := w.Conn.QueueSubscribeSync(subj.Run, "workers")
		if err != nil {
			return fmt.Errorf("subscribing to %s (does the worker's NATS user may subscribe to it?): %w", subj.Run, err)
		}
		if err := sub.AutoUnsubscribe(1); err != nil {
			return fmt.Errorf("subscribing to %s: %w", subj.Run, err)
		}
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			_ = sub.Unsubscribe()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for step work on %s: %w", subj.Run, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.handle(ctx, subj, m)
		}()
	}
}

// handle runs one work and reports it.
func (w *Worker) handle(ctx context.Context, subj WorkSubjects, m *nats.Msg) {
	id, ok := strings.CutPrefix(m.Reply, subj.Out)
	if !ok || id == "" || strings.ContainsAny(id, ".*> ") {
		w.Logger.Warn("step work without a valid reply subject, dropped", "reply", m.Reply)
		return
	}
	var work worker.StepWork
	if err := json.Unmarshal(m.Data, &work); err != nil {
		w.Logger.Warn("step work that does not decode, dropped", bot.LogError, err)
		return
	}
	logger := w.Logger.With(bot.LogRepo, work.Checkout.Owner+"/"+work.Checkout.Repo, bot.LogStep, string(work.Step), "execution_id", work.ExecutionID)
	var mu sync.Mutex // one frame at a time, in order
	send := func(f frame) {
		data, err := json.Marshal(f)
		if err == nil {
			mu.Lock()
			err = w.Conn.Publish(m.Reply, data)
			mu.Unlock()
		}
		if err != nil {
			logger.Warn("sending to the server", bot.LogError, err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopSub, err := w.Conn.Subscribe(subj.Cancel+id, func(*nats.Msg) { cancel() })
	if err != nil {
		logger.Warn("listening for cancellation", bot.LogError, err)
	} else {
		defer stopSub.Unsubscribe()
	}
	send(frame{Kind: frameAccepted})
	logger.Info("step started")
	beatDone := worker.Beat(runCtx, w.Beat, func() bool {
		send(frame{Kind: frameBeat})
		return true
	})
	r := w.Run(runCtx, work, logFrames{send})
	cancel()
	<-beatDone
	send(frame{Kind: frameResult, Result: &r})
	if err := w.Conn.Flush(); err != nil {
		logger.Warn("sending the step's result", bot.LogError, err)
	}
	logger.Info("step ended", "succeeded", r.Succeeded, "message", r.Error)
}

// logFrames sends what is written as log frames.
type logFrames struct{ send func(frame) }

func (l logFrames) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(len(rest), maxLogFrame)
		l.send(frame{Kind: frameLog, Log: append([]byte(nil), rest[:n]...)})
		rest = rest[n:]
	}
	return len(p), nil
}
