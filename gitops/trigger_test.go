package gitops

import (
	"context"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
)

// gatedStore holds the first proposal until the test opens the gate, so
// that a sync is known to be running.
type gatedStore struct {
	*fakeStore
	entered, gate chan struct{}
	first         bool
}

func (g *gatedStore) Propose(ctx context.Context, batch []state.Command) (uint64, error) {
	if !g.first {
		g.first = true
		close(g.entered)
		<-g.gate
	}
	return g.fakeStore.Propose(ctx, batch)
}

// 200 triggers during one sync give one more sync, not 200: one runs, one
// waits, the rest merge into the waiting one.
func TestTriggersDuringASyncMerge(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	g := &gatedStore{fakeStore: fs, entered: make(chan struct{}), gate: make(chan struct{})}
	s.prop, s.interval = g, time.Hour
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	<-g.entered // the first sync has fetched and is proposing
	for range 200 {
		s.Trigger()
	}
	close(g.gate)
	waitFor(t, func() bool { return s.syncs.Load() >= 2 })
	cancel()
	<-done
	if n := s.syncs.Load(); n != 2 {
		t.Fatalf("200 triggers during a sync gave %d syncs after it, want 1", n-1)
	}
}

// A steady flood of triggers costs one fetch per trigger gap, not one per
// sync's duration: the flood that once gave 125 fetches in 10 s.
func TestTriggerFloodIsRateBounded(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	up.commit("one")
	s, _ := newTestSyncer(t, up.dir)
	s.interval, s.gap = time.Hour, 300*time.Millisecond
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, func() bool { return s.syncs.Load() == 1 })
	const flood = 1500 * time.Millisecond
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	for time.Since(start) < flood {
		<-tick.C
		s.Trigger()
	}
	tick.Stop()
	cancel()
	<-done
	// One sync per gap and one that was waiting when the flood began.
	if n, max := s.syncs.Load()-1, int64(flood/s.gap)+1; n > max || n < 2 {
		t.Fatalf("a %s flood of triggers gave %d syncs, want 2 to %d", flood, n, max)
	}
}
