package runtime

import (
	"context"
	"io"
	"log/slog"

	"github.com/containerd/log"
	"github.com/sirupsen/logrus"
)

// containerd's client logs through logrus (the resolver's "trying next
// host" on every failed pull, for one). withLog sends those entries to the
// runtime's slog logger instead of the process-wide logrus one, at debug
// level below warnings, so they do not drown the agent's own log.
func (r *Runtime) withLog(ctx context.Context) context.Context {
	return log.WithLogger(ctx, logrus.NewEntry(r.logrus))
}

func newLogrus(l *slog.Logger) *logrus.Logger {
	lr := logrus.New()
	lr.SetOutput(io.Discard)
	lr.SetLevel(logrus.DebugLevel)
	lr.AddHook(slogHook{l})
	return lr
}

type slogHook struct{ l *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	if e.Level <= logrus.WarnLevel {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !h.l.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "source", "containerd")
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.l.Log(ctx, level, e.Message, attrs...)
	return nil
}
