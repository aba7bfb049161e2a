package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route sends traffic for another node's pod CIDR to that node, as
// flannel's host-gw backend does: the nodes must share a layer-2 network.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// RouteProtocol marks the routes SyncRoutes owns (rtnetlink's protocol
// field, shown by `ip route` as "proto 190"), so that it never touches a
// route someone else made.
const RouteProtocol = 190

// SyncRoutes makes the routes with RouteProtocol in h's network namespace
// (nil: this process's) exactly routes: missing ones are added,
// changed ones replaced, the rest removed. It carries on past a route it
// cannot add, and returns every failure.
func SyncRoutes(h *netlink.Handle, routes []Route) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	have, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("network: listing routes: %w", err)
	}
	want := map[netip.Prefix]netip.Addr{}
	for _, r := range routes {
		want[r.Dst.Masked()] = r.Via
	}
	var errs []error
	for _, r := range have {
		via, wanted := want[prefixOf(r.Dst)]
		switch {
		case wanted && r.Gw.Equal(net.IP(via.AsSlice())):
			delete(want, prefixOf(r.Dst)) // already right
		case wanted:
			// RouteReplace below points it at the node that has it now.
		default:
			if err := h.RouteDel(&r); err != nil {
				errs = append(errs, fmt.Errorf("network: removing the route to %v: %w", r.Dst, err))
			}
		}
	}
	for dst, via := range want {
		r := &netlink.Route{Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)}, Gw: via.AsSlice(),
			Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("network: route to %v via %v: %w", dst, via, err))
		}
	}
	return errors.Join(errs...)
}

// prefixOf is n as a netip.Prefix; the zero Prefix for a default route.
func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}
