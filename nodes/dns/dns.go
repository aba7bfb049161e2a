// Package dns is the node's cluster DNS server, what CoreDNS's kubernetes
// plugin is to Kubernetes: it answers for the cluster domain with the
// records of the Kubernetes DNS specification (kubernetes/dns,
// docs/specification.md, schema 1.0.1), and forwards every other name to
// the host's resolvers through a small cache.
//
// Inside the domain (cluster.local by default), every answer has TTL
// Config.TTL:
//
//   - <svc>.<ns>.svc.<domain> A/AAAA: the ClusterIP, or for a headless
//     Service one record per ready endpoint (none: NXDOMAIN, as the spec
//     says);
//   - <host>.<svc>.<ns>.svc.<domain> A/AAAA: each endpoint of a headless
//     Service, host being its hostname or its dashed IP, and each pod whose
//     spec.hostname/spec.subdomain point at a headless Service;
//   - _<port>._<proto>.<svc>.<ns>.svc.<domain> SRV for named ports: the
//     Service's name, or each endpoint's for a headless Service, with the
//     targets' addresses in the additional section;
//   - <a-b-c-d>.<ns>.pod.<domain> A: the address in the name, for any
//     namespace (the spec's deprecated pod records);
//   - PTR in in-addr.arpa/ip6.arpa for ClusterIPs, endpoints and pods;
//     unknown addresses are forwarded;
//   - dns-version.<domain> TXT, and the domain's SOA.
//
// ANY gets one RRset of the name (RFC 8482).
//
// A name that does not exist gets NXDOMAIN, one that exists without the
// asked type (AAAA of an IPv4 Service, or <ns>.svc.<domain>) an empty
// NOERROR; both carry the SOA, whose minimum is the TTL. Names compare
// case-insensitively, and the question is echoed as asked.
package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DefaultDomain is Kubernetes' default cluster domain.
const DefaultDomain = "cluster.local"

// Config configures a Server; the zero value of each field is its default.
type Config struct {
	Domain string        // the cluster domain: "cluster.local"
	TTL    time.Duration // of the cluster's records, whole seconds: 5s
	// Upstream are the resolvers for names outside the domain, tried in
	// turn: "host:port", or an address for port 53 (the host's
	// resolv.conf nameservers, see ReadResolvConf). None: SERVFAIL.
	Upstream  []string
	CacheSize int // entries of the forwarded answers' cache: 10,000
	Logger    *slog.Logger
}

// maxUDPSize is the largest UDP reply, whatever the client offers (the
// 2020 DNS flag day's value: no fragments); larger ones are truncated and
// the client retries over TCP. It is also what we offer upstreams.
const maxUDPSize = 1232

// Server answers DNS queries; see the package documentation. Its records
// are replaced whole by Update, and read without locks.
type Server struct {
	domain string
	ttl    uint32
	log    *slog.Logger
	fwd    *forwarder

	mu     sync.Mutex // serializes Update
	serial uint32
	zone   atomic.Pointer[zone]
}

// New returns a server with no Service or pod records yet.
func New(cfg Config) (*Server, error) {
	domain := strings.ToLower(dns.Fqdn(cmp.Or(cfg.Domain, DefaultDomain)))
	if _, ok := dns.IsDomainName(domain); !ok || domain == "." || strings.ContainsRune(domain, '\\') {
		return nil, fmt.Errorf("dns: invalid domain %q", cfg.Domain)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.TTL < time.Second || cfg.TTL > 24*time.Hour {
		return nil, fmt.Errorf("dns: TTL %s is not between 1s and 24h", cfg.TTL)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fwd, err := newForwarder(cfg.Upstream, cfg.CacheSize, log)
	if err != nil {
		return nil, err
	}
	s := &Server{domain: domain, ttl: uint32(cfg.TTL / time.Second), log: log, fwd: fwd}
	_ = s.Update(nil, nil) // nothing to be invalid
	return s, nil
}

// Update replaces the cluster's records with those of svcs and pods; the
// next query sees them. Invalid entries are skipped and reported in the
// error (wrapping ErrInvalid); the rest is applied.
func (s *Server) Update(svcs []Service, pods []Pod) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The SOA serial grows with every change, by the clock when it can.
	s.serial = max(s.serial+1, uint32(time.Now().Unix()))
	z, err := buildZone(s.domain, s.ttl, s.serial, svcs, pods)
	s.zone.Store(z)
	return err
}

// ServeDNS answers one query; it is a dns.Handler, so the server can be
// run on any listener with miekg/dns's dns.Server.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if m, _ := s.reply(r, !tcp, true); m != nil {
		if err := w.WriteMsg(m); err != nil {
			s.log.Debug("dns: writing a reply", "client", w.RemoteAddr(), "err", err)
		}
	}
}

// reply is the answer to r, or nil to send none; udp limits its size.
// Unless it may block, a query that must wait for an upstream gets
// later true and no answer.
func (s *Server) reply(r *dns.Msg, udp, block bool) (m *dns.Msg, later bool) {
	if r.Response {
		return nil, false // a reply sent to a server is noise, as miekg/dns's server treats it
	}
	m = &dns.Msg{
		MsgHdr: dns.MsgHdr{Id: r.Id, Response: true, Opcode: r.Opcode,
			RecursionDesired: r.RecursionDesired, RecursionAvailable: true, CheckingDisabled: r.CheckingDisabled},
		Question: r.Question,
	}
	opt := r.IsEdns0()
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
	default:
		if !s.answer(m, r, block) {
			return nil, true
		}
	}
	return finish(m, opt, udp), false
}

// answer fills m, the reply to r, a query of one question; it returns
// false, having done nothing, when it would block and may not.
func (s *Server) answer(m, r *dns.Msg, block bool) bool {
	q := r.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY || q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		m.Rcode = dns.RcodeRefused // only Internet-class queries; no zone transfers
		return true
	}
	name := strings.ToLower(q.Name)
	z := s.zone.Load()
	var a *answer
	if s.inDomain(name) {
		a = z.lookup(name, q.Qtype)
	} else if q.Qtype == dns.TypePTR {
		a = z.ptr(name)
	}
	if a == nil {
		return s.fwd.forward(m, r, name, block)
	}
	if a.cname != "" {
		return s.chase(m, r, a, z, block)
	}
	m.Authoritative = true
	m.Rcode = a.rcode
	m.Answer, m.Ns, m.Extra = a.answer, a.ns, a.extra
	return true
}

// chase answers a name that is a CNAME (an ExternalName Service) as a
// recursive server does: the CNAME, then the target's records, from the
// zone or the upstreams (one step: a target in the zone that is itself a
// CNAME is not followed further).
func (s *Server) chase(m, r *dns.Msg, a *answer, z *zone, block bool) bool {
	if s.inDomain(a.cname) {
		t := z.lookup(a.cname, r.Question[0].Qtype)
		m.Authoritative, m.Rcode = true, t.rcode
		m.Answer, m.Ns = append(slices.Clip(a.answer), t.answer...), t.ns
		return true
	}
	q := r.Copy()
	q.Question[0].Name = a.cname
	target := new(dns.Msg)
	if !s.fwd.forward(target, q, a.cname, block) {
		return false
	}
	m.Rcode = target.Rcode
	m.Answer, m.Ns = append(slices.Clip(a.answer), target.Answer...), target.Ns
	return true
}

func (s *Server) inDomain(name string) bool {
	if strings.ContainsRune(name, '\\') {
		return dns.IsSubDomain(s.domain, name) // an escaped dot is no label boundary
	}
	return name == s.domain || strings.HasSuffix(name, s.domain) && name[len(name)-len(s.domain)-1] == '.'
}

// finish adds an OPT record when the query had one (RFC 6891) and
// truncates a reply larger than the client can take, setting TC so it
// retries over TCP. m's sections may be shared; finish copies what it
// changes.
func finish(m *dns.Msg, opt *dns.OPT, udp bool) *dns.Msg {
	size := dns.MaxMsgSize
	if udp {
		size = dns.MinMsgSize
	}
	if opt != nil {
		if udp {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(maxUDPSize)
		if opt.Do() {
			o.SetDo() // RFC 3225: copied, though nothing here is signed
		}
		m.Extra = append(m.Extra[:len(m.Extra):len(m.Extra)], o)
	}
	m.Truncate(size)
	return m
}

// Serve answers queries on pc (UDP) and l (TCP), either may be nil, until
// ctx is done or one of them fails; then it stops both, and returns once
// the queries waiting for an upstream are answered (2 s per upstream at
// most). A pc bound to one address is served faster than one bound to all
// (0.0.0.0), which needs miekg/dns's server to reply from the address
// each query came to.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, l net.Listener) error {
	type run struct {
		serve func() error
		stop  func()
		done  chan struct{}
		err   error
	}
	var runs []*run
	miekg := func(srv *dns.Server) *run {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		r := &run{serve: srv.ActivateAndServe}
		r.stop = func() {
			select {
			case <-started:
				_ = srv.Shutdown() // fails only for a server that stopped already
			case <-r.done:
			}
		}
		return r
	}
	if u := ownUDP(pc); u != nil {
		us := newUDPServer(s, u)
		runs = append(runs, &run{serve: us.serve, stop: us.stop})
	} else if pc != nil {
		runs = append(runs, miekg(&dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.MaxMsgSize}))
	}
	if l != nil {
		runs = append(runs, miekg(&dns.Server{Listener: l, Handler: s}))
	}
	stopped := make(chan struct{}, len(runs))
	for _, r := range runs {
		r.done = make(chan struct{})
		go func() {
			r.err = r.serve()
			close(r.done)
			stopped <- struct{}{}
		}()
	}
	select {
	case <-ctx.Done():
	case <-stopped:
	}
	var errs []error
	for _, r := range runs {
		r.stop()
		<-r.done
		errs = append(errs, r.err)
	}
	return errors.Join(errs...)
}

// ListenAndServe answers queries over UDP and TCP on addr until ctx is
// done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	pc, l, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, pc, l)
}

// Listen opens UDP and TCP on addr. With port 0 both get one port: the
// number UDP got may be taken for TCP (by any outgoing connection), so a
// few ports are tried.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" || try == 20 {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
	}
}
