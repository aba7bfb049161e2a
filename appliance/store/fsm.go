package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// published is a state the FSM has made visible. The FSM never changes a
// published state (Apply works on a copy), so readers and snapshots use it
// without a lock; next is closed when a newer state replaces it.
type published struct {
	state *State
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
	s := &State{}
	s.init()
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
func (f *fsm) publish(s *State) {
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
	if err := Apply(&next, batch); err != nil {
		if errors.Is(err, ErrUnknownCommand) {
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

func decodeBatch(data []byte) ([]Command, error) {
	var batch []Command
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
	s, err := readSnapshot(bufio.NewReader(rc))
	if err != nil {
		return err
	}
	if cur := f.cur.Load().state.Index; s.Index <= cur && cur > 0 {
		s.Index = cur + 1
	}
	f.publish(s)
	return nil
}

type fsmSnapshot struct{ state *State }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	err := writeSnapshot(w, s.state)
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

// A snapshot is a header line, then the State exactly as json.Marshal
// writes it, produced and read one revision, node or pod at a time so
// neither side holds the whole encoding in memory.
const (
	snapshotFormat  = "berth-state"
	snapshotVersion = 1
)

type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// jsonWriter keeps the first error so writeSnapshot reads straight through.
type jsonWriter struct {
	w   io.Writer
	err error
}

func (w *jsonWriter) raw(s string) {
	if w.err == nil {
		_, w.err = io.WriteString(w.w, s)
	}
}

func (w *jsonWriter) value(v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	_, w.err = w.w.Write(b)
}

func writeSnapshot(out io.Writer, s *State) error {
	w := &jsonWriter{w: out}
	w.value(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion})
	w.raw("\n{\"index\":")
	w.value(s.Index)
	w.raw(",\"revisions\":")
	if s.Revisions == nil {
		w.raw("null")
	} else {
		w.raw("[")
		for i, r := range s.Revisions {
			if i > 0 {
				w.raw(",")
			}
			w.value(r)
		}
		w.raw("]")
	}
	w.raw(",\"nodes\":")
	writeMap(w, s.Nodes)
	w.raw(",\"pods\":{")
	first := true
	for p := range s.Pods.All() {
		if !first {
			w.raw(",")
		}
		first = false
		w.value(p.Key())
		w.raw(":")
		w.value(p)
	}
	w.raw("}")
	w.raw(",\"serviceIPs\":")
	w.value(s.ServiceIPs)
	w.raw(",\"tokens\":")
	w.value(s.Tokens)
	if s.CA != nil {
		w.raw(",\"ca\":")
		w.value(s.CA)
	}
	w.raw(",\"masterAPIs\":")
	w.value(s.MasterAPIs)
	if s.PodNetwork != nil {
		w.raw(",\"podNetwork\":")
		w.value(s.PodNetwork)
	}
	w.raw("}\n")
	return w.err
}

// writeMap writes m as json.Marshal would, keys sorted.
func writeMap[V any](w *jsonWriter, m map[string]V) {
	if m == nil {
		w.raw("null")
		return
	}
	w.raw("{")
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			w.raw(",")
		}
		w.value(k)
		w.raw(":")
		w.value(m[k])
	}
	w.raw("}")
}

func readSnapshot(r io.Reader) (*State, error) {
	dec := json.NewDecoder(r)
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("not a berth state snapshot (format %q)", h.Format)
	}
	if h.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot format version %d is unknown (this master reads %d)", h.Version, snapshotVersion)
	}
	s := &State{}
	if err := readDelim(dec, '{'); err != nil {
		return nil, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		switch key := tok.(string); key {
		case "index":
			err = dec.Decode(&s.Index)
		case "revisions":
			s.Revisions, err = readArray[Revision](dec)
		case "nodes":
			s.Nodes, err = readObject[*Node](dec)
		case "pods":
			var pods map[string]*Pod
			if pods, err = readObject[*Pod](dec); err == nil {
				s.Pods, err = podTableOf(pods)
			}
		case "serviceIPs":
			err = dec.Decode(&s.ServiceIPs)
		case "tokens":
			err = dec.Decode(&s.Tokens)
		case "ca":
			err = dec.Decode(&s.CA)
		case "masterAPIs":
			err = dec.Decode(&s.MasterAPIs)
		case "podNetwork":
			err = dec.Decode(&s.PodNetwork)
		default:
			err = fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot state: %w", err)
		}
	}
	if err := readDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("snapshot: data after the state")
	}
	// Apply dereferences every node and pod.
	for k, n := range s.Nodes {
		if n == nil {
			return nil, fmt.Errorf("snapshot state: node %q is null", k)
		}
	}
	s.init()
	return s, nil
}

func readDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if tok != want {
		return fmt.Errorf("snapshot: found %v where %v belongs", tok, want)
	}
	return nil
}

// readArray reads a JSON array (or null) one element at a time.
func readArray[T any](dec *json.Decoder) ([]T, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("found %v where an array belongs", tok)
	}
	var out []T
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	_, err = dec.Token() // the closing ], which Token checks
	return out, err
}

// readObject reads a JSON object (or null) one member at a time.
func readObject[V any](dec *json.Decoder) (map[string]V, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("found %v where an object belongs", tok)
	}
	out := map[string]V{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v V
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[key.(string)] = v
	}
	_, err = dec.Token() // the closing }
	return out, err
}
