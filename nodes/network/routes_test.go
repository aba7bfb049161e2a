package network

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routesIn lists the routes of h's namespace as "dst via gw proto N".
func routesIn(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	rs, err := h.RouteList(nil, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Gw != nil {
			out = append(out, r.Dst.String()+" via "+r.Gw.String()+" proto "+r.Protocol.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestSyncRoutes, in a network namespace of its own with a link on
// 10.77.0.0/24: routes are added, moved and removed, and a route SyncRoutes
// did not make is left alone.
func TestSyncRoutes(t *testing.T) {
	name := "berth-routes-test"
	exec.Command("ip", "netns", "del", name).Run()
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "add", "n0", "type", "veth", "peer", "name", "n1"},
		{"-n", name, "link", "set", "n1", "up"},
		{"-n", name, "addr", "add", "10.77.0.2/24", "dev", "n0"},
		{"-n", name, "link", "set", "n0", "up"},
		{"-n", name, "route", "add", "10.244.9.0/24", "via", "10.77.0.9"}, // someone else's
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	route := func(dst, via string) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
	}
	for _, step := range []struct {
		routes []Route
		want   []string
	}{
		{[]Route{route("10.244.1.0/24", "10.77.0.3"), route("10.244.2.0/24", "10.77.0.4")},
			[]string{"10.244.1.0/24 via 10.77.0.3 proto 190", "10.244.2.0/24 via 10.77.0.4 proto 190", "10.244.9.0/24 via 10.77.0.9 proto boot"}},
		// node 2's CIDR moves to another address, node 1 leaves, node 3 comes
		{[]Route{route("10.244.2.0/24", "10.77.0.5"), route("10.244.3.1/24", "10.77.0.6")},
			[]string{"10.244.2.0/24 via 10.77.0.5 proto 190", "10.244.3.0/24 via 10.77.0.6 proto 190", "10.244.9.0/24 via 10.77.0.9 proto boot"}},
		{nil, []string{"10.244.9.0/24 via 10.77.0.9 proto boot"}},
	} {
		if err := SyncRoutes(h, step.routes); err != nil {
			t.Fatal(err)
		}
		if got := routesIn(t, h); !slices.Equal(got, step.want) {
			t.Fatalf("after SyncRoutes(%v):\n got %q\nwant %q", step.routes, got, step.want)
		}
	}
	// A gateway off every link is refused, and the others still go in.
	err = SyncRoutes(h, []Route{route("10.244.4.0/24", "192.0.2.1"), route("10.244.5.0/24", "10.77.0.7")})
	if err == nil || !strings.Contains(err.Error(), "10.244.4.0/24 via 192.0.2.1") {
		t.Fatalf("unreachable gateway: %v", err)
	}
	if got := routesIn(t, h); !slices.Contains(got, "10.244.5.0/24 via 10.77.0.7 proto 190") {
		t.Fatalf("the good route is missing: %q", got)
	}
}
