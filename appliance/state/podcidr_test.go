package state_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// TestPodCIDRsRunOutClearly: every node of the pod range gets a valid,
// distinct CIDR inside it, and the registration past the last is refused
// with a clear error instead of an invalid CIDR.
func TestPodCIDRsRunOutClearly(t *testing.T) {
	s := &state.State{}
	seen := map[string]bool{}
	for i := range 256 {
		name := fmt.Sprintf("n%d", i)
		statetest.MustApply(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: name}))
		cidr := s.Nodes[name].PodCIDR
		p, err := netip.ParsePrefix(cidr)
		if err != nil || p.Bits() != 24 || !netip.MustParsePrefix("10.244.0.0/16").Contains(p.Addr()) || seen[cidr] {
			t.Fatalf("node %d got pod CIDR %q (%v)", i, cidr, err)
		}
		seen[cidr] = true
	}
	statetest.MustReject(t, s, "pod address range 10.244.0.0/16 is exhausted", state.NewCommand(state.CmdRegisterNode, state.Node{Name: "one-too-many"}))
	// A known node re-registering keeps its CIDR, full range or not.
	statetest.MustApply(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n7"}))
}

// The pod network is configured once: a /20 in /26s holds 64 nodes, each
// told the range it is part of; a second, different network and bad ones
// are refused, and the network survives a snapshot.
func TestPodNetworkConfigured(t *testing.T) {
	s := &state.State{}
	for _, bad := range []struct {
		pn   state.PodNetwork
		want string
	}{
		{state.PodNetwork{CIDR: "10.50.0.1/20", NodeMaskBits: 26}, "want an IPv4 prefix"},
		{state.PodNetwork{CIDR: "300.0.0.0/8", NodeMaskBits: 24}, "want an IPv4 prefix"},
		{state.PodNetwork{CIDR: "10.50.0.0/20", NodeMaskBits: 30}, "between the range's /20 and /28"},
		{state.PodNetwork{CIDR: "10.50.0.0/20", NodeMaskBits: 16}, "between the range's /20 and /28"},
		{state.PodNetwork{CIDR: "10.0.0.0/4", NodeMaskBits: 28}, "want an IPv4 prefix"},
		{state.PodNetwork{CIDR: "0.0.0.0/0", NodeMaskBits: 28}, "over a million"},
	} {
		statetest.MustReject(t, s, bad.want, state.NewCommand(state.CmdSetPodNetwork, bad.pn))
	}
	pn := state.PodNetwork{CIDR: "10.50.0.0/20", NodeMaskBits: 26}
	statetest.MustApply(t, s, state.NewCommand(state.CmdSetPodNetwork, pn))
	statetest.MustApply(t, s, state.NewCommand(state.CmdSetPodNetwork, pn)) // the same again: no change
	statetest.MustReject(t, s, "pod network is 10.50.0.0/20 with /26 per node already", state.NewCommand(state.CmdSetPodNetwork, state.DefaultPodNetwork))
	cluster := netip.MustParsePrefix(pn.CIDR)
	for i := range 64 {
		name := fmt.Sprintf("n%d", i)
		statetest.MustApply(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: name}))
		n := s.Nodes[name]
		p, err := netip.ParsePrefix(n.PodCIDR)
		if err != nil || p.Bits() != 26 || !cluster.Contains(p.Addr()) || n.ClusterCIDR != pn.CIDR {
			t.Fatalf("node %d: pod CIDR %q in %q (%v)", i, n.PodCIDR, n.ClusterCIDR, err)
		}
	}
	statetest.MustReject(t, s, "pod address range 10.50.0.0/20 is exhausted: all 64 node CIDRs (/26)", state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n64"}))

	var buf bytes.Buffer
	if err := state.WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	back, err := state.ReadSnapshot(&buf)
	if err != nil || back.Network() != pn {
		t.Fatalf("after a snapshot: %+v (%v)", back.PodNetwork, err)
	}
	// A cluster made before the network was configurable keeps the default.
	old := &state.State{}
	statetest.MustApply(t, old, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "a"}))
	statetest.MustReject(t, old, "nodes have pod CIDRs from 10.244.0.0/16 already", state.NewCommand(state.CmdSetPodNetwork, pn))
	statetest.MustApply(t, old, state.NewCommand(state.CmdSetPodNetwork, state.DefaultPodNetwork))
}
