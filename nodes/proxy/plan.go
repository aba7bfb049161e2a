package proxy

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// maxNameLen keeps table and chain names well inside the kernel's 256-byte
// NFT_NAME_MAXLEN.
const maxNameLen = 200

// svcPort is one validated, normalized service port: what the renderer
// needs and nothing else.
type svcPort struct {
	key       string // namespace/name/proto/port, unique
	clusterIP netip.Addr
	proto     uint8 // unix.IPPROTO_TCP or IPPROTO_UDP
	port      uint16
	nodePort  uint16       // 0: none
	lbAddrs   []netip.Addr // LoadBalancer addresses, served at port
	// sourceRanges, when set, are the only clients the lbAddrs take.
	sourceRanges       []netip.Prefix
	affinity           time.Duration // 0: none
	intLocal, extLocal bool
	endpoints          []endpoint
}

type endpoint struct {
	netip.AddrPort
	local bool // on this node
}

func (e endpoint) String() string { return e.AddrPort.String() }

// local returns the endpoints on this node, by index in p.endpoints.
func (p *svcPort) local() []int {
	var out []int
	for i, ep := range p.endpoints {
		if ep.local {
			out = append(out, i)
		}
	}
	return out
}

// plan is the normalized input of one Sync. Everything is sorted so that
// equal input renders an equal ruleset.
type plan struct {
	ports    []svcPort
	invalid  []error
	affinity bool // a port has session affinity
}

func buildPlan(services []Service) *plan {
	pl := &plan{}
	bad := func(s *Service, sp *ServicePort, format string, args ...any) {
		where := s.Namespace + "/" + s.Name
		if sp != nil {
			where += fmt.Sprintf(" port %s/%d", sp.Protocol, sp.Port)
		}
		pl.invalid = append(pl.invalid, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}

	for i := range services {
		s := &services[i]
		if s.ClusterIP == "" || s.ClusterIP == "None" {
			continue // headless: nothing to proxy
		}
		vip, err := netip.ParseAddr(s.ClusterIP)
		if err != nil || !vip.Is4() {
			bad(s, nil, "clusterIP %q is not an IPv4 address", s.ClusterIP)
			continue
		}
		var lbAddrs []netip.Addr
		for _, a := range s.LoadBalancer {
			if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
				lbAddrs = append(lbAddrs, ip)
			} else {
				bad(s, nil, "load balancer address %q is not an IPv4 address", a)
			}
		}
		slices.SortFunc(lbAddrs, netip.Addr.Compare)
		lbAddrs = slices.Compact(lbAddrs)
		var ranges []netip.Prefix
		for _, r := range s.SourceRanges {
			if pfx, err := netip.ParsePrefix(r); err == nil && pfx.Addr().Is4() {
				ranges = append(ranges, pfx.Masked())
			} else {
				bad(s, nil, "source range %q is not an IPv4 prefix", r)
			}
		}
		if len(ranges) == 0 && len(s.SourceRanges) > 0 {
			// Open to anyone would be the opposite of what was asked.
			bad(s, nil, "no valid source range; its load balancer addresses are left out")
			lbAddrs = nil
		}
		if s.Affinity < 0 {
			bad(s, nil, "negative session affinity %s", s.Affinity)
			continue
		}
		for j := range s.Ports {
			sp := &s.Ports[j]
			var proto uint8
			switch strings.ToUpper(sp.Protocol) {
			case "", "TCP":
				proto = unix.IPPROTO_TCP
			case "UDP":
				proto = unix.IPPROTO_UDP
			default:
				bad(s, sp, "protocol %q not supported", sp.Protocol)
				continue
			}
			if sp.Port < 1 || sp.Port > 65535 {
				bad(s, sp, "port out of range")
				continue
			}
			if sp.NodePort < 0 || sp.NodePort > 65535 {
				bad(s, sp, "nodePort %d out of range", sp.NodePort)
				continue
			}
			p := svcPort{
				key:          s.Namespace + "/" + s.Name + "/" + protoName(proto) + "/" + strconv.Itoa(int(sp.Port)),
				clusterIP:    vip,
				proto:        proto,
				port:         uint16(sp.Port),
				nodePort:     uint16(sp.NodePort),
				lbAddrs:      lbAddrs,
				sourceRanges: ranges,
				affinity:     s.Affinity,
				intLocal:     s.InternalLocal,
				extLocal:     s.ExternalLocal,
			}
			for _, ep := range sp.Endpoints {
				ip, err := netip.ParseAddr(ep.IP)
				if err != nil || !ip.Is4() || ep.Port < 1 || ep.Port > 65535 {
					bad(s, sp, "endpoint %s:%d is not an IPv4 address and port", ep.IP, ep.Port)
					continue
				}
				p.endpoints = append(p.endpoints, endpoint{netip.AddrPortFrom(ip, uint16(ep.Port)), ep.Local})
			}
			slices.SortFunc(p.endpoints, func(a, b endpoint) int { return a.Compare(b.AddrPort) })
			p.endpoints = slices.CompactFunc(p.endpoints, func(a, b endpoint) bool { return a.AddrPort == b.AddrPort })
			pl.ports = append(pl.ports, p)
		}
	}

	// Sort, then drop what would collide in a map or a chain name: the
	// kernel rejects a whole transaction on one duplicate key, so one
	// bad Service must not take every other one down with it.
	slices.SortFunc(pl.ports, func(a, b svcPort) int {
		return cmp.Or(strings.Compare(a.key, b.key), a.clusterIP.Compare(b.clusterIP))
	})
	type vipKey struct {
		ip    netip.Addr
		proto uint8
		port  uint16
	}
	type npKey struct {
		proto uint8
		port  uint16
	}
	keys := map[string]bool{}
	vips := map[vipKey]string{}
	nodePorts := map[npKey]string{}
	out := pl.ports[:0]
	for _, p := range pl.ports {
		vk := vipKey{p.clusterIP, p.proto, p.port}
		if keys[p.key] {
			pl.invalid = append(pl.invalid, fmt.Errorf("%s: duplicate service port", p.key))
			continue
		}
		if other, ok := vips[vk]; ok {
			pl.invalid = append(pl.invalid, fmt.Errorf("%s: %s:%d/%s already used by %s",
				p.key, p.clusterIP, p.port, protoName(p.proto), other))
			continue
		}
		if p.nodePort != 0 {
			nk := npKey{p.proto, p.nodePort}
			if other, ok := nodePorts[nk]; ok {
				pl.invalid = append(pl.invalid, fmt.Errorf("%s: nodePort %d/%s already used by %s",
					p.key, p.nodePort, protoName(p.proto), other))
				continue
			}
			nodePorts[nk] = p.key
		}
		keys[p.key] = true
		vips[vk] = p.key
		pl.affinity = pl.affinity || p.affinity > 0
		// A load balancer address taken already is left out, the rest of
		// the port stays.
		p.lbAddrs = slices.DeleteFunc(slices.Clone(p.lbAddrs), func(a netip.Addr) bool {
			other, ok := vips[vipKey{a, p.proto, p.port}]
			if ok {
				pl.invalid = append(pl.invalid, fmt.Errorf("%s: %s:%d/%s already used by %s",
					p.key, a, p.port, protoName(p.proto), other))
			}
			return ok
		})
		for _, a := range p.lbAddrs {
			vips[vipKey{a, p.proto, p.port}] = p.key
		}
		out = append(out, p)
	}
	pl.ports = out
	return pl
}

func protoName(p uint8) string {
	if p == unix.IPPROTO_UDP {
		return "udp"
	}
	return "tcp"
}

// chainName is prefix-HASH-readable, as kube-proxy names its chains: the
// hash keeps names unique after sanitizing and truncating, the rest is for
// the human reading `nft list table`.
func chainName(prefix, readable string) string {
	sum := sha256.Sum256([]byte(readable))
	h := base32.StdEncoding.EncodeToString(sum[:5]) // 8 characters
	clean := []byte(readable)
	for i, c := range clean {
		// The nft CLI's identifier syntax, so listed rules parse back.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '/' || c == '-' || c == '_' || c == '.') {
			clean[i] = '_'
		}
	}
	name := prefix + "-" + h + "-" + string(clean)
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	return name
}
