package dns

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a resolver on loopback that counts the queries it gets.
type upstream struct {
	addr    string
	mu      sync.Mutex
	queries map[string]int // "<name> <network>"
}

func (u *upstream) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queries[name+" udp"] + u.queries[name+" tcp"]
}

// startUpstream serves:
//   - a.example.: A 192.0.2.1, TTL 300
//   - short.example.: A 192.0.2.2, TTL 2
//   - nx.example.: NXDOMAIN, SOA minimum 60
//   - nodata.example.: NOERROR, no answer, SOA minimum 2
//   - nosoa.example.: NXDOMAIN without SOA
//   - big.example.: 100 A records, truncated over UDP
//   - fail.example.: SERVFAIL
//   - n<i>.example.: A 192.0.2.3
func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{queries: map[string]int{}}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		network := "udp"
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			network = "tcp"
		}
		q := r.Question[0]
		u.mu.Lock()
		u.queries[q.Name+" "+network]++
		u.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		a := func(ip string, ttl uint32) dns.RR {
			return &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.ParseIP(ip)}
		}
		soa := func(minttl uint32) dns.RR {
			return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
				Ns: "ns.example.", Mbox: "h.example.", Minttl: minttl}
		}
		switch q.Name {
		case "a.example.":
			m.Answer = []dns.RR{a("192.0.2.1", 300)}
		case "short.example.":
			m.Answer = []dns.RR{a("192.0.2.2", 2)}
		case "nx.example.":
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa(60)}
		case "nodata.example.":
			m.Ns = []dns.RR{soa(2)}
		case "nosoa.example.":
			m.Rcode = dns.RcodeNameError
		case "big.example.":
			for i := range 100 {
				m.Answer = append(m.Answer, a(net.IPv4(192, 0, 2, byte(i)).String(), 300))
			}
			if network == "udp" {
				m.Truncate(512)
			}
		case "fail.example.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Answer = []dns.RR{a("192.0.2.3", 300)}
		}
		w.WriteMsg(m)
	})
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	u.addr = pc.LocalAddr().String()
	return u
}

// deadAddr is a loopback UDP port nobody listens on: queries to it fail
// at once (ICMP port unreachable).
func deadAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// clock is a settable time for the cache.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func forwardingServer(t *testing.T, cfg Config) (*Server, string, *clock) {
	t.Helper()
	s := newServer(t, cfg)
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s.fwd.now = c.now
	return s, serve(t, s), c
}

func TestForwardAndCache(t *testing.T) {
	up := startUpstream(t)
	_, addr, clk := forwardingServer(t, Config{Upstream: []string{up.addr}})

	r := query(t, addr, "udp", "a.example.", dns.TypeA)
	wantRRs(t, "forwarded", r.Answer, "a.example. 30 IN A 192.0.2.1") // TTL capped at 30 s
	if r.Authoritative || !r.RecursionAvailable {
		t.Errorf("flags aa=%v ra=%v", r.Authoritative, r.RecursionAvailable)
	}
	clk.advance(10 * time.Second)
	r = query(t, addr, "udp", "A.Example.", dns.TypeA)
	wantRRs(t, "cached", r.Answer, "a.example. 20 IN A 192.0.2.1")
	if r.Question[0].Name != "A.Example." {
		t.Errorf("question echoed as %q", r.Question[0].Name)
	}
	if n := up.count("a.example."); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
	// Another type is another entry.
	query(t, addr, "udp", "a.example.", dns.TypeAAAA)
	if n := up.count("a.example."); n != 2 {
		t.Errorf("upstream asked %d times, want 2", n)
	}
	clk.advance(20 * time.Second)
	query(t, addr, "udp", "a.example.", dns.TypeA)
	if n := up.count("a.example."); n != 3 {
		t.Errorf("after expiry: upstream asked %d times, want 3", n)
	}

	// The record's own shorter TTL.
	r = query(t, addr, "udp", "short.example.", dns.TypeA)
	wantRRs(t, "short", r.Answer, "short.example. 2 IN A 192.0.2.2")
	clk.advance(1 * time.Second)
	wantRRs(t, "short, cached", query(t, addr, "udp", "short.example.", dns.TypeA).Answer, "short.example. 1 IN A 192.0.2.2")
	clk.advance(1 * time.Second)
	query(t, addr, "udp", "short.example.", dns.TypeA)
	if n := up.count("short.example."); n != 2 {
		t.Errorf("short: upstream asked %d times, want 2", n)
	}

	// Without RD, from the cache only.
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	m.RecursionDesired = false
	if r := exchangeMsg(t, addr, "udp", m); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("cached, no RD: %v", r)
	}
}

func TestForwardNegativeCache(t *testing.T) {
	up := startUpstream(t)
	_, addr, clk := forwardingServer(t, Config{Upstream: []string{up.addr}})

	r := query(t, addr, "udp", "nx.example.", dns.TypeA)
	wantRcode(t, r, dns.RcodeNameError)
	wantRRs(t, "SOA", r.Ns, "example. 5 IN SOA ns.example. h.example. 0 0 0 0 60") // capped at 5 s
	clk.advance(4 * time.Second)
	wantRcode(t, query(t, addr, "udp", "nx.example.", dns.TypeA), dns.RcodeNameError)
	if n := up.count("nx.example."); n != 1 {
		t.Errorf("NXDOMAIN: upstream asked %d times, want 1", n)
	}
	clk.advance(time.Second)
	query(t, addr, "udp", "nx.example.", dns.TypeA)
	if n := up.count("nx.example."); n != 2 {
		t.Errorf("NXDOMAIN after 5 s: upstream asked %d times, want 2", n)
	}

	// NODATA by the SOA minimum, here under the cap.
	query(t, addr, "udp", "nodata.example.", dns.TypeA)
	clk.advance(time.Second)
	query(t, addr, "udp", "nodata.example.", dns.TypeA)
	clk.advance(time.Second)
	query(t, addr, "udp", "nodata.example.", dns.TypeA)
	if n := up.count("nodata.example."); n != 2 {
		t.Errorf("NODATA: upstream asked %d times, want 2", n)
	}

	// Without an SOA nothing says how long: not cached.
	query(t, addr, "udp", "nosoa.example.", dns.TypeA)
	query(t, addr, "udp", "nosoa.example.", dns.TypeA)
	if n := up.count("nosoa.example."); n != 2 {
		t.Errorf("no SOA: upstream asked %d times, want 2", n)
	}
}

func TestForwardCacheBound(t *testing.T) {
	up := startUpstream(t)
	_, addr, _ := forwardingServer(t, Config{Upstream: []string{up.addr}, CacheSize: 2})
	for _, n := range []string{"n1", "n2", "n1", "n3", "n1", "n2"} {
		query(t, addr, "udp", n+".example.", dns.TypeA)
	}
	// n2 was the least recently used when n3 came in.
	for n, want := range map[string]int{"n1": 1, "n2": 2, "n3": 1} {
		if got := up.count(n + ".example."); got != want {
			t.Errorf("%s: upstream asked %d times, want %d", n, got, want)
		}
	}
}

func TestForwardFailover(t *testing.T) {
	up := startUpstream(t)
	_, addr, _ := forwardingServer(t, Config{Upstream: []string{deadAddr(t), up.addr}})
	wantRRs(t, "from the second upstream", query(t, addr, "udp", "a.example.", dns.TypeA).Answer, "a.example. 30 IN A 192.0.2.1")

	// SERVFAIL from every upstream, or no upstream at all.
	wantRcode(t, query(t, addr, "udp", "fail.example.", dns.TypeA), dns.RcodeServerFailure)
	_, dead, _ := forwardingServer(t, Config{Upstream: []string{deadAddr(t)}})
	wantRcode(t, query(t, dead, "udp", "a.example.", dns.TypeA), dns.RcodeServerFailure)
	_, none, _ := forwardingServer(t, Config{})
	wantRcode(t, query(t, none, "udp", "a.example.", dns.TypeA), dns.RcodeServerFailure)
	// An unknown address is forwarded too.
	wantRcode(t, query(t, none, "udp", "1.2.0.192.in-addr.arpa.", dns.TypePTR), dns.RcodeServerFailure)
}

func TestForwardTruncatedUpstream(t *testing.T) {
	up := startUpstream(t)
	_, addr, _ := forwardingServer(t, Config{Upstream: []string{up.addr}})
	if r := query(t, addr, "tcp", "big.example.", dns.TypeA); len(r.Answer) != 100 {
		t.Errorf("%d answers, want 100", len(r.Answer))
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.queries["big.example. udp"] != 1 || up.queries["big.example. tcp"] != 1 {
		t.Errorf("upstream queries %v, want one over UDP then one over TCP", up.queries)
	}
}

// TestForwardOnce: concurrent misses for one name make one upstream query.
func TestForwardOnce(t *testing.T) {
	up := startUpstream(t)
	s := newServer(t, Config{Upstream: []string{up.addr}})
	release := make(chan struct{})
	var asked atomic.Int32
	s.fwd.exchange = func(q *dns.Msg, u string) (*dns.Msg, error) {
		asked.Add(1)
		<-release
		return exchange(q, u)
	}
	addr := serve(t, s)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { query(t, addr, "udp", "a.example.", dns.TypeA) })
	}
	for asked.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the other queries join the first
	close(release)
	wg.Wait()
	if n := up.count("a.example."); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
}

// An ExternalName Service is a CNAME, answered with the target's records:
// from the upstream for a name outside the cluster, from the zone for one
// inside; a CNAME query gets the CNAME alone.
func TestExternalName(t *testing.T) {
	up := startUpstream(t)
	s, addr, _ := forwardingServer(t, Config{Upstream: []string{up.addr}})
	if err := s.Update([]Service{
		{Namespace: "shop", Name: "db", ExternalName: "a.example"},
		{Namespace: "shop", Name: "alias", ExternalName: "web.shop.svc.cluster.local"},
		{Namespace: "shop", Name: "web", ClusterIP: "10.96.0.7"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	r := query(t, addr, "udp", "db.shop.svc.cluster.local.", dns.TypeA)
	wantRRs(t, "external", r.Answer, "db.shop.svc.cluster.local. 5 IN CNAME a.example.", "a.example. 30 IN A 192.0.2.1")
	r = query(t, addr, "udp", "alias.shop.svc.cluster.local.", dns.TypeA)
	wantRRs(t, "in the zone", r.Answer, "alias.shop.svc.cluster.local. 5 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 5 IN A 10.96.0.7")
	r = query(t, addr, "tcp", "db.shop.svc.cluster.local.", dns.TypeCNAME)
	wantRRs(t, "the CNAME", r.Answer, "db.shop.svc.cluster.local. 5 IN CNAME a.example.")
}
