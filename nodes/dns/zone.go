package dns

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Service is what the DNS server needs of a Service.
type Service struct {
	Namespace, Name string
	// ClusterIP is the Service's virtual IP; "" or "None" makes the
	// Service headless: its name resolves to its endpoints.
	ClusterIP string
	Ports     []Port
	// Endpoints are the ready endpoints; only headless Services use them.
	Endpoints []Endpoint
	// ExternalName makes the Service's name a CNAME of this one.
	ExternalName string
}

// Port is a Service port. Only named ports get SRV records.
type Port struct {
	Name     string
	Protocol string // TCP (also when empty), UDP or SCTP
	Port     int32
}

// Endpoint is one ready address of a headless Service.
type Endpoint struct {
	IP string
	// Hostname is the pod's spec.hostname when its spec.subdomain is the
	// Service's name. Without one the endpoint is named after its IP
	// (10-1-2-3), the spec's system-assigned identifier.
	Hostname string
	// Ports are the endpoint's own numbers for the Service's named ports
	// (the resolved targetPort); a port not listed keeps the Service's.
	Ports []Port
}

// Pod is what the DNS server needs of a pod: pass those with an IP (the
// ready ones, as Kubernetes publishes hostnames only for those).
type Pod struct {
	Namespace, IP string
	// Hostname and Subdomain are spec.hostname and spec.subdomain:
	// <hostname>.<subdomain>.<ns>.svc.<domain> exists when a headless
	// Service named <subdomain> does in the namespace.
	Hostname, Subdomain string
}

// ErrInvalid marks the entries Update skipped; the rest was applied.
var ErrInvalid = errors.New("dns: invalid entry")

// specVersion is the schema version of the Kubernetes DNS specification
// these records follow, served as TXT at dns-version.<domain>.
const specVersion = "1.0.1"

type qkey struct {
	name  string // lower case, fully qualified
	qtype uint16
}

// answer is a prepared reply: the sections every query for one
// (name, type) gets, shared read-only by all replies.
type answer struct {
	rcode             int
	answer, ns, extra []dns.RR
	// cname is the target of an ExternalName Service asked for another
	// type: the server resolves it and adds what it finds.
	cname string
}

// zone is an immutable snapshot of the cluster's records, indexed so a
// query costs one or two map look-ups.
type zone struct {
	podZone  string // ".pod.<domain>", the domain a lower-case FQDN
	ttl      uint32
	answers  map[qkey]*answer // positive answers, PTRs of the reverse zones included
	names    map[string]bool  // names in the domain that exist (with records or under which records are)
	nodata   *answer
	nxdomain *answer
}

// lookup answers a query for name (lower case) inside the domain.
func (z *zone) lookup(name string, qtype uint16) *answer {
	if a := z.answers[qkey{name, qtype}]; a != nil {
		return a
	}
	if a := z.answers[qkey{name, dns.TypeCNAME}]; a != nil {
		return &answer{answer: a.answer, cname: a.answer[0].(*dns.CNAME).Target}
	}
	if qtype == dns.TypeANY {
		// One RRset of the name, as RFC 8482 allows: ANY is no way to
		// get them all.
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeSOA} {
			if a := z.answers[qkey{name, t}]; a != nil {
				return a
			}
		}
	}
	if z.names[name] {
		return z.nodata
	}
	if strings.HasSuffix(name, z.podZone) {
		return z.podRecord(name[:len(name)-len(z.podZone)], qtype)
	}
	return z.nxdomain
}

// ptr is the PTR answer for a reverse name (lower case), or nil when the
// zone does not know the address.
func (z *zone) ptr(name string) *answer {
	return z.answers[qkey{name, dns.TypePTR}]
}

// podRecord answers <a-b-c-d>.<ns>.pod.<domain> with the address its
// first label spells, for any namespace: the spec's deprecated pod
// records, which CoreDNS serves as "pods insecure". rest is the name
// without ".pod.<domain>".
func (z *zone) podRecord(rest string, qtype uint16) *answer {
	label, ns, found := strings.Cut(rest, ".")
	if !found {
		if validLabel(label) {
			return z.nodata // <ns>.pod.<domain>: only names below it exist
		}
		return z.nxdomain
	}
	ip, ok := dashedIP(label)
	if !ok || !validLabel(ns) {
		return z.nxdomain
	}
	rr := addrRR(label+"."+ns+z.podZone, ip, z.ttl)
	if qtype != rr.Header().Rrtype && qtype != dns.TypeANY {
		return z.nodata
	}
	return &answer{answer: []dns.RR{rr}}
}

// dashedIP parses 10-1-2-3 or fd00--1 (IPv6 with dashes for colons).
func dashedIP(label string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil {
		return ip, true
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	return ip, err == nil && ip.Zone() == ""
}

func dashed(ip netip.Addr) string {
	if ip.Is4() {
		return strings.ReplaceAll(ip.String(), ".", "-")
	}
	return strings.ReplaceAll(ip.String(), ":", "-")
}

// validLabel accepts what Kubernetes names are made of (RFC 1123
// labels), after lower-casing.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func addrRR(name string, ip netip.Addr, ttl uint32) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: ip.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: ip.AsSlice()}
}

// zoneBuilder collects records by owner name and type, without
// duplicates, before buildZone prepares the answers.
type zoneBuilder struct {
	domain string
	ttl    uint32
	rrs    map[qkey][]dns.RR
	seen   map[rrKey]bool // to drop duplicates
	errs   []error
}

type rrKey struct {
	name  string
	rtype uint16
	data  string
}

func (b *zoneBuilder) add(rr dns.RR) {
	h := rr.Header()
	k := rrKey{h.Name, h.Rrtype, ""}
	switch rr := rr.(type) {
	case *dns.A:
		k.data = string(rr.A)
	case *dns.AAAA:
		k.data = string(rr.AAAA)
	case *dns.PTR:
		k.data = rr.Ptr
	case *dns.SRV:
		k.data = strconv.Itoa(int(rr.Port)) + " " + rr.Target
	default: // the SOA and the TXT, added once
	}
	if b.seen[k] {
		return
	}
	b.seen[k] = true
	b.rrs[qkey{h.Name, h.Rrtype}] = append(b.rrs[qkey{h.Name, h.Rrtype}], rr)
}

func (b *zoneBuilder) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: b.ttl}
}

func (b *zoneBuilder) ptr(ip netip.Addr, target string) {
	rev, _ := dns.ReverseAddr(ip.String()) // a parsed address always reverses
	b.add(&dns.PTR{Hdr: b.hdr(rev, dns.TypePTR), Ptr: target})
}

func (b *zoneBuilder) srv(name string, port int32, target string) {
	b.add(&dns.SRV{Hdr: b.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(port), Target: target})
}

func (b *zoneBuilder) invalid(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

// srvName is _<port>._<proto>.<fqdn>, or "" for an unnamed or invalid port.
func srvName(p Port, fqdn string) string {
	name := strings.ToLower(p.Name)
	if !validLabel(name) || !validLabel(proto(p)) {
		return ""
	}
	return "_" + name + "._" + proto(p) + "." + fqdn
}

// proto is p's protocol in lower case, tcp when it has none.
func proto(p Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

func (b *zoneBuilder) service(s Service) (headless bool) {
	ns, name := strings.ToLower(s.Namespace), strings.ToLower(s.Name)
	if !validLabel(ns) || !validLabel(name) {
		b.invalid("service %s/%s: not a DNS label", s.Namespace, s.Name)
		return false
	}
	fqdn := name + "." + ns + ".svc." + b.domain
	if s.ExternalName != "" {
		target := strings.ToLower(dns.Fqdn(s.ExternalName))
		if _, ok := dns.IsDomainName(target); !ok || target == "." {
			b.invalid("service %s/%s: externalName %q", s.Namespace, s.Name, s.ExternalName)
			return false
		}
		b.add(&dns.CNAME{Hdr: b.hdr(fqdn, dns.TypeCNAME), Target: target})
		return false
	}
	if s.ClusterIP != "" && s.ClusterIP != "None" {
		ip, err := netip.ParseAddr(s.ClusterIP)
		if err != nil || ip.Zone() != "" {
			b.invalid("service %s/%s: clusterIP %q", s.Namespace, s.Name, s.ClusterIP)
			return false
		}
		ip = ip.Unmap()
		b.add(addrRR(fqdn, ip, b.ttl))
		b.ptr(ip, fqdn)
		for _, p := range s.Ports {
			if n := srvName(p, fqdn); n != "" {
				b.srv(n, p.Port, fqdn)
			}
		}
		return false
	}
	for _, e := range s.Endpoints {
		ip, err := netip.ParseAddr(e.IP)
		if err != nil || ip.Zone() != "" {
			b.invalid("service %s/%s: endpoint IP %q", s.Namespace, s.Name, e.IP)
			continue
		}
		ip = ip.Unmap()
		host := strings.ToLower(e.Hostname)
		if host == "" {
			host = dashed(ip)
		} else if !validLabel(host) {
			b.invalid("service %s/%s: endpoint hostname %q", s.Namespace, s.Name, e.Hostname)
			continue
		}
		target := host + "." + fqdn
		b.add(addrRR(fqdn, ip, b.ttl))
		b.add(addrRR(target, ip, b.ttl))
		b.ptr(ip, target)
		for _, p := range s.Ports {
			n := srvName(p, fqdn)
			if n == "" {
				continue
			}
			port := p.Port
			for _, ep := range e.Ports {
				if strings.EqualFold(ep.Name, p.Name) && proto(ep) == proto(p) {
					port = ep.Port
				}
			}
			b.srv(n, port, target)
		}
	}
	return true
}

// buildZone indexes the records of svcs and pods. Invalid entries are
// skipped and reported, wrapping ErrInvalid.
func buildZone(domain string, ttl, serial uint32, svcs []Service, pods []Pod) (*zone, error) {
	n := 4*len(svcs) + 2*len(pods) // about the names and records there will be
	b := &zoneBuilder{domain: domain, ttl: ttl, rrs: make(map[qkey][]dns.RR, n), seen: make(map[rrKey]bool, n)}
	soa := &dns.SOA{Hdr: b.hdr(domain, dns.TypeSOA), Ns: "ns.dns." + domain, Mbox: "hostmaster." + domain,
		Serial: serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ttl}
	b.add(soa)
	b.add(&dns.TXT{Hdr: b.hdr("dns-version."+domain, dns.TypeTXT), Txt: []string{specVersion}})

	headless := map[string]bool{} // "<ns>/<name>"
	for _, s := range svcs {
		if b.service(s) {
			headless[strings.ToLower(s.Namespace+"/"+s.Name)] = true
		}
	}
	type podAddr struct {
		ip netip.Addr
		ns string
	}
	var plain []podAddr // pods that may get the generic PTR
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.IP)
		if err != nil || ip.Zone() != "" {
			b.invalid("pod IP %q in %s", p.IP, p.Namespace)
			continue
		}
		ip = ip.Unmap()
		ns := strings.ToLower(p.Namespace)
		if !validLabel(ns) {
			b.invalid("pod %s in %q: namespace", p.IP, p.Namespace)
			continue
		}
		host, sub := strings.ToLower(p.Hostname), strings.ToLower(p.Subdomain)
		if host != "" && headless[ns+"/"+sub] {
			if !validLabel(host) {
				b.invalid("pod %s in %s: hostname %q", p.IP, p.Namespace, p.Hostname)
				continue
			}
			name := host + "." + sub + "." + ns + ".svc." + domain
			b.add(addrRR(name, ip, ttl))
			b.ptr(ip, name)
			continue
		}
		plain = append(plain, podAddr{ip, ns})
	}
	// A pod without a name of its own resolves back to its pod record,
	// unless a Service already names its address.
	for _, p := range plain {
		if rev, _ := dns.ReverseAddr(p.ip.String()); len(b.rrs[qkey{rev, dns.TypePTR}]) == 0 {
			b.ptr(p.ip, dashed(p.ip)+"."+p.ns+".pod."+domain)
		}
	}

	z := &zone{
		podZone: ".pod." + domain,
		ttl:     ttl,
		answers: make(map[qkey]*answer, len(b.rrs)),
		names:   make(map[string]bool, len(b.rrs)),
	}
	for _, n := range []string{domain, "svc." + domain, "pod." + domain} {
		z.names[n] = true
	}
	neg := []dns.RR{soa}
	z.nodata = &answer{ns: neg}
	z.nxdomain = &answer{rcode: dns.RcodeNameError, ns: neg}
	for k, rrs := range b.rrs {
		a := &answer{answer: rrs}
		if k.qtype == dns.TypeSRV {
			a.extra = b.targets(rrs)
		}
		z.answers[k] = a
		if k.name != domain && !strings.HasSuffix(k.name, "."+domain) {
			continue // reverse names: only their PTRs are answered
		}
		for n := k.name; n != domain && !z.names[n]; n = n[strings.IndexByte(n, '.')+1:] {
			z.names[n] = true
		}
	}
	return z, errors.Join(b.errs...)
}

// targets are the address records of the SRV records' targets, for the
// additional section.
func (b *zoneBuilder) targets(srvs []dns.RR) []dns.RR {
	var extra []dns.RR
	seen := map[string]bool{}
	for _, rr := range srvs {
		t := rr.(*dns.SRV).Target
		if !seen[t] {
			seen[t] = true
			extra = append(extra, b.rrs[qkey{t, dns.TypeA}]...)
			extra = append(extra, b.rrs[qkey{t, dns.TypeAAAA}]...)
		}
	}
	return extra
}
