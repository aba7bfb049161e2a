package state_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

var kubelet = state.EventSource{Component: "kubelet", Host: "1n.example"}

func podEvent(name, reason string, at time.Duration) state.Event {
	return state.NewEvent(state.EventWarning, reason, state.ObjectRef{Kind: "Pod", Namespace: "ns", Name: name}, kubelet,
		statetest.T0.Add(at), "probe failed on %s", name)
}

// A repeated event adds to the count of the one it repeats, keeps its
// first time and moves to the end, as kubectl shows "x3 over 2m".
func TestEventsAggregate(t *testing.T) {
	t.Parallel()
	s := &state.State{}
	statetest.MustApply(t, s, state.RecordEvents(podEvent("a", "Unhealthy", 0), podEvent("b", "Unhealthy", time.Second)))
	statetest.MustApply(t, s, state.RecordEvents(podEvent("a", "Unhealthy", time.Minute)))
	again := podEvent("a", "Unhealthy", 2*time.Minute)
	again.Count = 5 // an agent's batch aggregated 5 already
	statetest.MustApply(t, s, state.RecordEvents(again))
	if len(s.Events) != 2 {
		t.Fatalf("events = %+v, want 2", s.Events)
	}
	a := s.Events[1]
	if a.Object.Name != "a" || a.Count != 7 || !a.FirstTimestamp.Equal(statetest.T0) || !a.LastTimestamp.Equal(statetest.T0.Add(2*time.Minute)) {
		t.Errorf("aggregated event = %+v, want a x7 from T0 to T0+2m, last", a)
	}
	// Another reason or message is another event.
	statetest.MustApply(t, s, state.RecordEvents(podEvent("a", "BackOff", 3*time.Minute)))
	if len(s.Events) != 3 {
		t.Errorf("a different reason was aggregated: %+v", s.Events)
	}
}

// Each object keeps its newest MaxEventsPerObject and the log its newest
// MaxEvents; the oldest go first.
func TestEventsAreBounded(t *testing.T) {
	t.Parallel()
	s := &state.State{}
	var batch []state.Event
	for i := range state.MaxEventsPerObject + 5 {
		batch = append(batch, podEvent("noisy", fmt.Sprint("R", i), time.Duration(i)*time.Second))
	}
	statetest.MustApply(t, s, state.RecordEvents(batch...))
	if len(s.Events) != state.MaxEventsPerObject || s.Events[0].Reason != "R5" {
		t.Fatalf("one object kept %d events from %s, want %d from R5", len(s.Events), s.Events[0].Reason, state.MaxEventsPerObject)
	}
	for i := range state.MaxEvents / 10 {
		var batch []state.Event
		for j := range 10 {
			batch = append(batch, podEvent(fmt.Sprintf("p%d-%d", i, j), "Started", time.Hour))
		}
		statetest.MustApply(t, s, state.RecordEvents(batch...))
	}
	if len(s.Events) != state.MaxEvents || s.Events[0].Object.Name != "p0-0" {
		t.Errorf("log has %d events from %s, want %d from p0-0 (noisy's pushed out)", len(s.Events), s.Events[0].Object.Name, state.MaxEvents)
	}
}

// The same batches give the same log on every member, and the log
// survives a snapshot.
func TestEventsTrimDeterministically(t *testing.T) {
	t.Parallel()
	var batches [][]state.Event
	for i := range 60 {
		var b []state.Event
		for j := range 40 {
			b = append(b, podEvent(fmt.Sprint("p", (i*7+j)%45), fmt.Sprint("R", j%3), time.Duration(i)*time.Second))
		}
		batches = append(batches, b)
	}
	apply := func() *state.State {
		s := &state.State{}
		for _, b := range batches {
			statetest.MustApply(t, s, state.RecordEvents(b...))
		}
		return s
	}
	a, b := apply(), apply()
	if !statetest.Same(a, b) {
		t.Fatal("the same batches gave different event logs")
	}
	var buf bytes.Buffer
	if err := state.WriteSnapshot(&buf, a); err != nil {
		t.Fatal(err)
	}
	restored, err := state.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !statetest.Same(a, restored) {
		t.Error("the event log changed through a snapshot")
	}
}

func TestEventsRefuseBadInput(t *testing.T) {
	t.Parallel()
	s := statetest.Cluster(t)
	bad := podEvent("a", "Unhealthy", 0)
	bad.Type = "Error"
	statetest.MustReject(t, s, "want Normal or Warning", state.RecordEvents(bad))
	noObject := podEvent("", "Unhealthy", 0)
	statetest.MustReject(t, s, "involvedObject", state.RecordEvents(noObject))
	spaced := podEvent("a", "Probe failed", 0)
	statetest.MustReject(t, s, "want one word", state.RecordEvents(spaced))
	huge := podEvent("a", "Unhealthy", 0)
	huge.Count = state.MaxEventCount + 1
	statetest.MustReject(t, s, "event count", state.RecordEvents(huge))
	huge.Count = state.MaxEventCount
	statetest.MustApply(t, s, state.RecordEvents(huge), state.RecordEvents(huge))
	if c := s.Events[len(s.Events)-1].Count; c != state.MaxEventCount {
		t.Errorf("count %d, want it to stop at %d", c, state.MaxEventCount)
	}
	many := make([]state.Event, state.MaxEventBatch+1)
	for i := range many {
		many[i] = podEvent("a", "Unhealthy", 0)
	}
	statetest.MustReject(t, s, "at most", state.RecordEvents(many...))
	long := podEvent("a", "Unhealthy", 0)
	long.Message = strings.Repeat("é", state.MaxEventMessage)
	statetest.MustApply(t, s, state.RecordEvents(long))
	if m := s.Events[len(s.Events)-1].Message; len(m) > state.MaxEventMessage || !strings.HasPrefix(long.Message, m) {
		t.Errorf("long message kept as %d bytes", len(m))
	}
}
