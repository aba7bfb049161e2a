package state_test

import (
	"bytes"
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// Removing a node removes it and the pods bound to it, leaves the others
// and the state before the batch alone, and refuses a node it lacks.
func TestApplyRemoveNode(t *testing.T) {
	t.Parallel()
	before := statetest.Cluster(t)
	statetest.MustApply(t, before, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "../../etc"}),
		state.NewCommand(state.CmdCreatePod, statetest.Pod("ns", "c")), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/c", NodeName: "n2"}))
	want := statetest.Encoded(t, before)

	s := *before
	statetest.MustApply(t, &s, state.NewCommand(state.CmdRemoveNode, state.NodeRef{Name: "n1"}), state.NewCommand(state.CmdRemoveNode, state.NodeRef{Name: "../../etc"}))
	if !bytes.Equal(want, statetest.Encoded(t, before)) {
		t.Fatal("removing a node changed the state it started from")
	}
	if _, ok := s.Nodes["n1"]; ok || len(s.Nodes) != 1 || s.Nodes["n2"] == nil {
		t.Errorf("nodes after removing n1 and ../../etc: %v", s.Nodes)
	}
	if s.Pods.Get("ns/a") != nil {
		t.Error("the pod bound to n1 outlived its node")
	}
	if s.Pods.Get("ns/b") == nil || s.Pods.Get("ns/c") == nil {
		t.Errorf("pods of other nodes, or of none, were removed: %v", s.Pods)
	}
	statetest.MustReject(t, &s, `no node "n1"`, state.NewCommand(state.CmdRemoveNode, state.NodeRef{Name: "n1"}))
	// Its pod CIDR is free again.
	statetest.MustApply(t, &s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n4"}))
	if got := s.Nodes["n4"].PodCIDR; got != before.Nodes["n1"].PodCIDR {
		t.Errorf("a new node got %s, want the removed node's %s", got, before.Nodes["n1"].PodCIDR)
	}
}
