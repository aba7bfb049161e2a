package gitops

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
)

// SyncNow returns once a sync that fetched after the call has ended: a
// commit pushed before it is recorded, however long the poll interval.
func TestSyncNow(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	if _, err := s.SyncNow(ctxT(t)); !errors.Is(err, ErrNotSyncing) {
		t.Fatalf("SyncNow without Run: %v, want ErrNotSyncing", err)
	}
	s.interval = time.Hour
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return s.syncs.Load() == 1 })
	up.edit("app.yaml", "replicas: 3", "replicas: 2")
	second := up.commit("two")
	st, err := s.SyncNow(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Commit != second || st.CommitStatus != state.RevisionApplied || fs.lastCommit() != second {
		t.Fatalf("after SyncNow: status %+v, store at %s; want %s applied", st, fs.lastCommit(), second)
	}
}
