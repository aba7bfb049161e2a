package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// eventsOf lists the events of one object as "Type Reason xCount: Message".
func eventsOf(s *state.State, kind, name string) []string {
	var out []string
	for _, e := range s.Events {
		if e.Object.Kind == kind && e.Object.Name == name {
			out = append(out, fmt.Sprintf("%s %s x%d: %s", e.Type, e.Reason, e.Count, e.Message))
		}
	}
	return out
}

func hasEvent(events []string, want ...string) bool {
	return slices.ContainsFunc(events, func(e string) bool {
		for _, w := range want {
			if !strings.Contains(e, w) {
				return false
			}
		}
		return true
	})
}

// A rollout tells each step of each template's replica count on the
// Deployment, and each pod stopped, and why, on the pod.
func TestEventsOfARollout(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 2, "1"))
	h.settle(3)
	v1 := TemplateHash(deployment("web", 2, "1").Spec.Template)
	v2 := TemplateHash(deployment("web", 2, "2").Spec.Template)
	if evs := eventsOf(h.s, "Deployment", "web"); !slices.Equal(evs, []string{"Normal ScalingReplicaSet x1: Scaled up replica set web-" + v1 + " to 2"}) {
		t.Errorf("Deployment events = %q", evs)
	}
	var first string
	for p := range h.s.Pods.All() {
		first = p.Name
		if evs := eventsOf(h.s, "Pod", p.Name); !hasEvent(evs, "Normal Scheduled x1: Successfully assigned default/"+p.Name+" to "+p.NodeName) {
			t.Errorf("pod %s events = %q", p.Name, evs)
		}
	}
	h.commit(deployment("web", 2, "2"))
	for range 10 {
		h.cycle()
	}
	evs := eventsOf(h.s, "Deployment", "web")
	if !hasEvent(evs, "Scaled up replica set web-"+v2+" to 2") || !hasEvent(evs, "Scaled down replica set web-"+v1+" to 0") {
		t.Errorf("Deployment events after the rollout = %q", evs)
	}
	if evs := eventsOf(h.s, "Pod", first); !hasEvent(evs, "Normal Killing", "replaced by the rollout of Deployment web") {
		t.Errorf("old pod %s events = %q", first, evs)
	}
	h.commit(deployment("web", 1, "2"))
	h.control()
	if evs := eventsOf(h.s, "Deployment", "web"); !hasEvent(evs, "Scaled down replica set web-"+v2+" to 1") {
		t.Errorf("Deployment events after scaling down = %q", evs)
	}
	killed := 0
	for _, e := range h.s.Events {
		if e.Reason == "Killing" && strings.Contains(e.Message, "Deployment web scaled down to 1 replicas") {
			killed++
		}
	}
	if killed != 1 {
		t.Errorf("%d pods told they were scaled down, want 1", killed)
	}
}

// A pod that fits nowhere is told why, once per reason however often the
// scheduler runs; a lost node is NotReady and its pods are told they are
// evicted.
func TestEventsOfSchedulingAndNodeLoss(t *testing.T) {
	small := node("small")
	small.CPUMilli = 150
	h := newHarness(t, small)
	h.commit(deployment("web", 2, "1"))
	for range 5 {
		h.control()
	}
	var failed []state.Event
	for _, e := range h.s.Events {
		if e.Reason == "FailedScheduling" {
			failed = append(failed, e)
		}
	}
	if len(failed) != 1 || failed[0].Type != state.EventWarning || failed[0].Count != 1 || !strings.Contains(failed[0].Message, "1 lack cpu") ||
		failed[0].Source.Component != "default-scheduler" {
		t.Errorf("FailedScheduling events = %+v, want one, once, with the scheduler's reason", failed)
	}

	h = newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 2, "1"))
	h.settle(3)
	var onB []string
	for p := range h.s.Pods.OnNode("b") {
		onB = append(onB, p.Name)
	}
	start := h.now
	for range 20 {
		h.now = h.now.Add(time.Second)
		h.beats["a"] = h.now
		h.run("nodes", Nodes(h.s, h.beats, start, h.now, DefaultNodeTimeouts))
		h.control()
		h.agents("a")
	}
	if evs := eventsOf(h.s, "Node", "b"); !hasEvent(evs, "Warning NodeNotReady x1: Node b status is now: NodeNotReady (no heartbeat for") {
		t.Errorf("node b events = %q", evs)
	}
	if len(onB) == 0 {
		t.Fatal("no pod ran on b")
	}
	for _, name := range onB {
		if evs := eventsOf(h.s, "Pod", name); !hasEvent(evs, "Warning Evicted x1: Node b has been NotReady since") {
			t.Errorf("evicted pod %s events = %q", name, evs)
		}
	}
}

// The loop commits a controller's events in the same batch as its
// commands, stamped with its clock.
func TestLoopRecordsEvents(t *testing.T) {
	m := statetest.NewStore()
	n := node("n1")
	n.Ready = true
	if _, err := m.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdRegisterNode, n)}); err != nil {
		t.Fatal(err)
	}
	l := &Loop{Store: m, Heartbeats: &Heartbeats{}, ServiceCIDR: DefaultServiceCIDR, Timeouts: DefaultNodeTimeouts}
	later := statetest.T0.Add(time.Hour)
	l.pass(context.Background(), statetest.T0, func() time.Time { return later })
	proposed := m.Proposed()
	last := proposed[len(proposed)-1]
	if len(last) != 2 || last[0].Type != state.CmdSetNodeReady || last[1].Type != state.CmdRecordEvents {
		t.Fatalf("last batch = %+v, want SetNodeReady and its events", last)
	}
	evs := m.State().Events
	if len(evs) != 1 || evs[0].Reason != "NodeNotReady" || !evs[0].LastTimestamp.Equal(later) || evs[0].Source.Component != "node-controller" {
		t.Errorf("events = %+v", evs)
	}
}
