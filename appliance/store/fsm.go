package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/berth/berth/appliance/state"
	"github.com/hashicorp/raft"
)

// published is a state the FSM has made visible. The FSM never changes a
// published state (Apply works on a copy), so readers and snapshots use it
// without a lock; next is closed when a newer state replaces it.
type published struct {
	state *state.State
	next  chan struct{}
}

// fsm is the raft.FSM. Raft calls Apply, Snapshot and Restore from one
// goroutine; everything else only reads cur.
type fsm struct {
	cur atomic.Pointer[published]
	// halt is set, once, by an entry this master cannot apply; halted is
	// closed then. From that entry on the FSM applies nothing: the state
	// stays as the entries before it left it.
	halt   atomic.Pointer[error]
	halted chan struct{}
}

func newFSM() *fsm {
	s := state.New()
	f := &fsm{halted: make(chan struct{})}
	f.cur.Store(&published{state: s, next: make(chan struct{})})
	return f
}

// halting stops the FSM at an entry it cannot apply.
func (f *fsm) halting(index uint64, err error) error {
	err = fmt.Errorf("raft entry %d: %w", index, err)
	if f.halt.CompareAndSwap(nil, &err) {
		close(f.halted)
	}
	return err
}

// publish makes s current and wakes everyone waiting on the state before.
func (f *fsm) publish(s *state.State) {
	old := f.cur.Swap(&published{state: s, next: make(chan struct{})})
	close(old.next)
}

// Apply applies one log entry, a JSON []Command, all or nothing, and
// returns nil or the error that rejected the batch.
//
// State.Index moves only when a batch applies: a rejected batch changes
// nothing, so it wakes no waiter and a controller re-proposing it from a
// stale view does not spin.
func (f *fsm) Apply(l *raft.Log) any {
	if err := f.halt.Load(); err != nil {
		return *err
	}
	batch, err := decodeBatch(l.Data)
	if err != nil {
		return err
	}
	// A shallow copy suffices: Apply copies whatever it changes.
	next := *f.cur.Load().state
	if err := state.Apply(&next, batch); err != nil {
		if errors.Is(err, state.ErrUnknownCommand) {
			// The members that know it applied it: going on past it would
			// serve a state they do not have.
			return f.halting(l.Index, err)
		}
		return err
	}
	next.Index = l.Index
	f.publish(&next)
	return nil
}

func decodeBatch(data []byte) ([]state.Command, error) {
	var batch []state.Command
	if err := json.Unmarshal(data, &batch); err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	if len(batch) == 0 {
		return nil, errors.New("empty batch")
	}
	return batch, nil
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return fsmSnapshot{f.cur.Load().state}, nil
}

// Restore replaces the state with a snapshot's. On error the state is left
// as it was and raft refuses the snapshot.
//
// Index never goes back: a backup restored with RestoreSnapshot carries the
// index it was taken at, which may be below what waiters have seen, and
// they must still wake for the new state. The entries after the restore
// have higher Raft indexes, so Index stays monotonic.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := state.ReadSnapshot(bufio.NewReader(rc))
	if err != nil {
		return err
	}
	if cur := f.cur.Load().state.Index; s.Index <= cur && cur > 0 {
		s.Index = cur + 1
	}
	f.publish(s)
	return nil
}

type fsmSnapshot struct{ state *state.State }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	err := state.WriteSnapshot(w, s.state)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
