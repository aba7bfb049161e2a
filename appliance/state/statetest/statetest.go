// Package statetest holds what tests of the state and of its users share:
// fixed states, pods and comparisons.
package statetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// T0 is the time the fixtures are made at.
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Cluster is a state with nodes n1 (10.244.0.0/24) and n2, pod ns/a bound
// to n1, pod ns/b unbound, and Service ns/web at 10.96.0.10.
func Cluster(t testing.TB) *state.State {
	t.Helper()
	s := &state.State{}
	MustApply(t, s,
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", Labels: map[string]string{"zone": "a"}}),
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n2"}),
		state.NewCommand(state.CmdCreatePod, Pod("ns", "a")),
		state.NewCommand(state.CmdCreatePod, Pod("ns", "b")),
		state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/a", NodeName: "n1"}),
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/web", IP: "10.96.0.10"}),
	)
	return s
}

// Pod is a pod of Deployment web, created at T0, not yet bound.
func Pod(ns, name string) state.Pod {
	return state.Pod{
		Namespace: ns, Name: name, Deployment: "web", TemplateHash: "h1",
		Labels:  map[string]string{"app": "web"},
		Spec:    objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "nginx"}}},
		Created: T0,
	}
}

// Same reports whether a and b hold the same state: their JSON, which
// holds every field (the pod tables' trees may differ in shape).
func Same(a, b *state.State) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// Encoded is s as JSON, which holds every field of a State: two states
// with the same encoding are the same.
func Encoded(t testing.TB, s *state.State) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func MustApply(t testing.TB, s *state.State, batch ...state.Command) {
	t.Helper()
	if err := state.Apply(s, batch); err != nil {
		t.Fatal(err)
	}
}

// MustReject applies a batch that must fail with want in its error and
// leave s exactly as it was.
func MustReject(t *testing.T, s *state.State, want string, batch ...state.Command) {
	t.Helper()
	before := Encoded(t, s)
	err := state.Apply(s, batch)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Apply: got %v, want an error containing %q", err, want)
	}
	if !bytes.Equal(before, Encoded(t, s)) {
		t.Fatalf("a failed batch changed the state")
	}
}

// Filled sets every exported field reachable from State, including
// fields added later, to a non-zero value: two elements per slice, two
// entries per map, every pointer set.
func Filled() *state.State {
	s := &state.State{}
	fill(reflect.ValueOf(s).Elem())
	return s
}

func fill(v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)))
		return
	case reflect.TypeFor[json.RawMessage]():
		v.SetBytes([]byte(`{"k":[1,2]}`))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			k.SetString(fmt.Sprintf("k%d", i))
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	default:
		panic("fill: add a case for " + v.Type().String())
	}
}

// Store is the replicated store without Raft, for tests of what reads and
// proposes (the API server, the controller loop, agents), as hashicorp/raft's
// InmemStore stands in for its log: Propose applies a batch through the same
// state.Apply, each applied batch is one index, and Wait blocks until the
// index passes.
type Store struct {
	mu       sync.Mutex
	s        *state.State
	changed  chan struct{}
	proposed [][]state.Command
}

// NewStore is an empty in-memory store.
func NewStore() *Store { return &Store{s: state.New(), changed: make(chan struct{})} }

// State is the current state; callers must not change it.
func (m *Store) State() *state.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s
}

// Wait returns once the index is past after, or when ctx ends.
func (m *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		m.mu.Lock()
		index, changed := m.s.Index, m.changed
		m.mu.Unlock()
		if index > after {
			return index, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return index, ctx.Err()
		}
	}
}

// Propose applies batch whole or not at all, as the FSM does.
func (m *Store) Propose(_ context.Context, batch []state.Command) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.proposed = append(m.proposed, batch)
	next := *m.s // Apply copies what it changes, so m.s stays as readers saw it
	if err := state.Apply(&next, batch); err != nil {
		return 0, err
	}
	next.Index++
	m.s = &next
	close(m.changed)
	m.changed = make(chan struct{})
	return next.Index, nil
}

// Proposed is every batch proposed so far, refused ones included.
func (m *Store) Proposed() [][]state.Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.proposed)
}
