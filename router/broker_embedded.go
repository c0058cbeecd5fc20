package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedMaxPayload is the largest message the embedded server accepts:
// a 25 MB webhook body plus its headers.
const embeddedMaxPayload = MaxWebhookBytes + 1<<20

// startEmbedded starts a NATS server with JetStream in this process, storing
// in DataDir/nats. It listens on no port: clients connect in process.
func (b *Broker) startEmbedded(ctx context.Context) error {
	dir := filepath.Join(b.opts.DataDir, "nats")
	b.where, b.storeDir = "the embedded broker in "+dir, dir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating the broker directory: %w: check that --data-dir is writable", err)
	}
	lock, err := lockStore(dir)
	if err != nil {
		return err
	}
	b.lock = lock
	ns, err := server.NewServer(&server.Options{
		ServerName: "stagehand",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		// The intake answers 202 once the message is stored: by default on
		// disk, not only in the page cache (a power loss keeps it too).
		SyncAlways:   b.opts.SyncInterval == 0,
		SyncInterval: b.opts.SyncInterval,
		MaxPayload:   embeddedMaxPayload,
		NoSigs:       true,
	})
	if err != nil {
		return fmt.Errorf("configuring the embedded NATS server in %s: %w", dir, err)
	}
	logger := &natsLogger{log: b.log.With("nats", "embedded")}
	ns.SetLoggerV2(logger, false, false, false)
	b.ns = ns
	ns.Start()

	// Start returns early when JetStream cannot start (its store is
	// unreadable, say): the server reports it through Fatalf and never
	// becomes ready, so look at both.
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if err := logger.fatal(); err != nil {
			return fmt.Errorf("starting %s: %w", b.where, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("starting %s: not ready before %w", b.where, context.Cause(ctx))
		}
	}
	if !ns.JetStreamEnabled() {
		err := logger.fatal()
		if err == nil {
			err = errors.New("JetStream is not enabled")
		}
		return fmt.Errorf("starting %s: %w: check that the directory is writable and its files are not damaged", b.where, err)
	}
	return nil
}

// natsLogger writes the embedded server's log through slog. Notices (the
// start-up banner among them) are Debug; warnings and errors stay visible.
type natsLogger struct {
	log *slog.Logger

	mu       sync.Mutex
	fatalErr error
}

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

func (l *natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Maximum payloads over") {
		// embeddedMaxPayload is deliberate: GitHub sends up to 25 MB.
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}

func (l *natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Fatalf must not exit the process (the server's own logger does): it
// records the error for startEmbedded.
func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatalErr == nil {
		l.fatalErr = errors.New(msg)
	}
}

func (l *natsLogger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalErr
}
