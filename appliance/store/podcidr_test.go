package store

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
)

// TestPodCIDRsRunOutClearly: every node of the pod range gets a valid,
// distinct CIDR inside it, and the registration past the last is refused
// with a clear error instead of an invalid CIDR.
func TestPodCIDRsRunOutClearly(t *testing.T) {
	s := &State{}
	seen := map[string]bool{}
	for i := range 256 {
		name := fmt.Sprintf("n%d", i)
		mustApply(t, s, NewCommand(CmdRegisterNode, Node{Name: name}))
		cidr := s.Nodes[name].PodCIDR
		p, err := netip.ParsePrefix(cidr)
		if err != nil || p.Bits() != 24 || !netip.MustParsePrefix("10.244.0.0/16").Contains(p.Addr()) || seen[cidr] {
			t.Fatalf("node %d got pod CIDR %q (%v)", i, cidr, err)
		}
		seen[cidr] = true
	}
	mustReject(t, s, "pod address range 10.244.0.0/16 is exhausted", NewCommand(CmdRegisterNode, Node{Name: "one-too-many"}))
	// A known node re-registering keeps its CIDR, full range or not.
	mustApply(t, s, NewCommand(CmdRegisterNode, Node{Name: "n7"}))
}

// The pod network is configured once: a /20 in /26s holds 64 nodes, each
// told the range it is part of; a second, different network and bad ones
// are refused, and the network survives a snapshot.
func TestPodNetworkConfigured(t *testing.T) {
	s := &State{}
	for _, bad := range []struct {
		pn   PodNetwork
		want string
	}{
		{PodNetwork{CIDR: "10.50.0.1/20", NodeMaskBits: 26}, "want an IPv4 prefix"},
		{PodNetwork{CIDR: "300.0.0.0/8", NodeMaskBits: 24}, "want an IPv4 prefix"},
		{PodNetwork{CIDR: "10.50.0.0/20", NodeMaskBits: 30}, "between the range's /20 and /28"},
		{PodNetwork{CIDR: "10.50.0.0/20", NodeMaskBits: 16}, "between the range's /20 and /28"},
		{PodNetwork{CIDR: "10.0.0.0/4", NodeMaskBits: 28}, "want an IPv4 prefix"},
		{PodNetwork{CIDR: "0.0.0.0/0", NodeMaskBits: 28}, "over a million"},
	} {
		mustReject(t, s, bad.want, NewCommand(CmdSetPodNetwork, bad.pn))
	}
	pn := PodNetwork{CIDR: "10.50.0.0/20", NodeMaskBits: 26}
	mustApply(t, s, NewCommand(CmdSetPodNetwork, pn))
	mustApply(t, s, NewCommand(CmdSetPodNetwork, pn)) // the same again: no change
	mustReject(t, s, "pod network is 10.50.0.0/20 with /26 per node already", NewCommand(CmdSetPodNetwork, DefaultPodNetwork))
	cluster := netip.MustParsePrefix(pn.CIDR)
	for i := range 64 {
		name := fmt.Sprintf("n%d", i)
		mustApply(t, s, NewCommand(CmdRegisterNode, Node{Name: name}))
		n := s.Nodes[name]
		p, err := netip.ParsePrefix(n.PodCIDR)
		if err != nil || p.Bits() != 26 || !cluster.Contains(p.Addr()) || n.ClusterCIDR != pn.CIDR {
			t.Fatalf("node %d: pod CIDR %q in %q (%v)", i, n.PodCIDR, n.ClusterCIDR, err)
		}
	}
	mustReject(t, s, "pod address range 10.50.0.0/20 is exhausted: all 64 node CIDRs (/26)", NewCommand(CmdRegisterNode, Node{Name: "n64"}))

	var buf bytes.Buffer
	if err := writeSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	back, err := readSnapshot(&buf)
	if err != nil || back.Network() != pn {
		t.Fatalf("after a snapshot: %+v (%v)", back.PodNetwork, err)
	}
	// A cluster made before the network was configurable keeps the default.
	old := &State{}
	mustApply(t, old, NewCommand(CmdRegisterNode, Node{Name: "a"}))
	mustReject(t, old, "nodes have pod CIDRs from 10.244.0.0/16 already", NewCommand(CmdSetPodNetwork, pn))
	mustApply(t, old, NewCommand(CmdSetPodNetwork, DefaultPodNetwork))
}
