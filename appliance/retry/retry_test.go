package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 5 * time.Second}
	for n, want := range []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		if got := b.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	if got := (Backoff{Base: time.Second, Max: time.Second}).Delay(1000); got != time.Second {
		t.Errorf("constant back-off: %v", got)
	}
}

// Until pauses by the back-off between failures, stops at success, at a
// permanent error and when its context ends; time is synctest's.
func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		var pauses []time.Duration
		err := Until(t.Context(), Backoff{Base: time.Second, Max: 3 * time.Second}, func() error {
			if calls++; calls < 4 {
				return errors.New("not yet")
			}
			return nil
		}, func(_ error, next time.Duration) { pauses = append(pauses, next) })
		if err != nil || calls != 4 || time.Since(start) != 6*time.Second || len(pauses) != 3 {
			t.Fatalf("err %v, %d calls, %v elapsed, pauses %v", err, calls, time.Since(start), pauses)
		}

		bad := errors.New("refused")
		calls = 0
		if err := Until(t.Context(), Backoff{Base: time.Second, Max: time.Second}, func() error { calls++; return Permanent(bad) }, nil); err != bad || calls != 1 {
			t.Fatalf("permanent: %v after %d calls", err, calls)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := Until(ctx, Backoff{Base: time.Second, Max: time.Second}, func() error { return bad }, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ended context: %v", err)
		}
	})
}
