package bot

import (
	"context"
	"log/slog"
)

// Log keys used across Stagehand, so every line can be searched the same way.
const (
	LogDeliveryID     = "delivery_id"
	LogInstallationID = "installation_id"
	LogRepo           = "repo"
	LogPipeline       = "pipeline"
	LogExecution      = "execution"
	LogStep           = "step"
	LogEvent          = "event"
	LogError          = "error"
)

type logAttrsKey struct{}

// WithLogAttrs returns a context whose log lines carry attrs in addition to
// those already in ctx. It is how a delivery's GUID follows the work it
// causes into every log line (see ContextLogHandler).
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	all = append(all, prev...)
	all = append(all, attrs...)
	return context.WithValue(ctx, logAttrsKey{}, all)
}

// ContextLogHandler adds the attributes stored by WithLogAttrs to every
// record logged with a context.
type ContextLogHandler struct{ slog.Handler }

// Handle adds the context's attributes, then passes the record on.
func (h ContextLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(logAttrsKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h ContextLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextLogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h ContextLogHandler) WithGroup(name string) slog.Handler {
	return ContextLogHandler{h.Handler.WithGroup(name)}
}
