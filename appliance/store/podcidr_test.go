package store

import (
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
