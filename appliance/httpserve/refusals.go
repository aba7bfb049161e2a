package httpserve

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// RefusalLog logs refused calls at a bounded rate: the first one at once,
// then at most one line per Every saying how many more were refused (with
// the attributes of the last), so a flood of bad calls is seen without
// flooding the log.
type RefusalLog struct {
	Log *slog.Logger
	Msg string
	// Every is the period of the summary lines (default one minute).
	Every time.Duration

	mu    sync.Mutex
	timer *time.Timer // running while a period is open
	more  int
	last  []any
}

// Refused records one refusal, described by attrs (slog key-value pairs).
func (l *RefusalLog) Refused(attrs ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer == nil {
		l.Log.Warn(l.Msg, attrs...)
		l.timer = time.AfterFunc(l.every(), l.flush)
		return
	}
	l.more++
	l.last = attrs
}

func (l *RefusalLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.more == 0 {
		// A quiet period: the next refusal is logged at once.
		l.timer = nil
		return
	}
	l.Log.Warn(fmt.Sprintf("%s: %d more in the last %s", l.Msg, l.more, l.every()), l.last...)
	l.more, l.last = 0, nil
	l.timer.Reset(l.every())
}

func (l *RefusalLog) every() time.Duration {
	if l.Every <= 0 {
		return time.Minute
	}
	return l.Every
}
