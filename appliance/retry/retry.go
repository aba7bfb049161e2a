// Package retry is the one way berth waits between attempts, on masters and
// nodes alike: a doubling back-off with a cap, and a pause that ends with
// its context.
package retry

import (
	"context"
	"errors"
	"time"
)

// Backoff doubles the pause after each consecutive failure, from Base up to
// Max. Base == Max is a constant pause.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the pause after the n-th consecutive failure (n from 1): Base
// doubled n-1 times, at most Max; none before the first failure.
func (b Backoff) Delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Sleep pauses d, or less if ctx ends first, and reports whether ctx is
// still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks an error that another attempt cannot cure: Until returns
// it (unwrapped) at once.
func Permanent(err error) error { return permanent{err} }

// Until calls f until it succeeds, returns a Permanent error, or ctx ends
// (then ctx's error). Between failures it pauses by b, after telling
// onRetry (if set) the error and the pause.
func Until(ctx context.Context, b Backoff, f func() error, onRetry func(err error, next time.Duration)) error {
	for failures := 1; ; failures++ {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		next := b.Delay(failures)
		if onRetry != nil {
			onRetry(err, next)
		}
		if !Sleep(ctx, next) {
			return ctx.Err()
		}
	}
}
