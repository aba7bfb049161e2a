package gitops

import (
	"context"
	"errors"
)

// ErrNotSyncing is SyncNow's answer where Run is not running: on a master
// that does not lead, whose syncer is stopped.
var ErrNotSyncing = errors.New("gitops: the syncer is not running on this master (it runs on the leader)")

// SyncNow triggers a sync and waits until one that started after the call
// has ended, and returns the status it left: the fetch saw every push made
// before the call. It waits at most as long as ctx allows.
func (s *Syncer) SyncNow(ctx context.Context) (Status, error) {
	if !s.running.Load() {
		return Status{}, ErrNotSyncing
	}
	s.mu.Lock()
	want := s.started + 1
	s.mu.Unlock()
	s.Trigger()
	for {
		s.mu.Lock()
		finished, done := s.finished, s.done
		s.mu.Unlock()
		if finished >= want {
			return s.Status(), nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return Status{}, ctx.Err()
		}
	}
}

// ended counts a finished sync and wakes SyncNow's waiters; s.mu is held.
func (s *Syncer) ended() {
	s.finished++
	close(s.done)
	s.done = make(chan struct{})
}
