package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve runs s on 127.0.0.1 over UDP and TCP until the test ends and
// returns the address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	return serveConn(t, s, func(pc net.PacketConn) net.PacketConn { return pc })
}

// serveConn is serve with the UDP socket as wrap makes it.
func serveConn(t testing.TB, s *Server, wrap func(net.PacketConn) net.PacketConn) string {
	t.Helper()
	udp, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc := wrap(udp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, pc, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pc.LocalAddr().String()
}

func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// query asks addr over net ("udp" or "tcp") and checks the reply's ID.
func query(t testing.TB, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return exchangeMsg(t, addr, network, m)
}

func exchangeMsg(t testing.TB, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", dns.TypeToString[m.Question[0].Qtype], m.Question[0].Name, err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply ID %d to query %d", r.Id, m.Id)
	}
	return r
}

// rrs is a section as sorted presentation lines, without the tabs.
func rrs(section []dns.RR) []string {
	var out []string
	for _, rr := range section {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	sort.Strings(out)
	return out
}

func wantRRs(t *testing.T, what string, section []dns.RR, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := rrs(section); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func wantRcode(t *testing.T, r *dns.Msg, rcode int) {
	t.Helper()
	if r.Rcode != rcode {
		t.Errorf("%s: rcode %s, want %s", r.Question[0].Name, dns.RcodeToString[r.Rcode], dns.RcodeToString[rcode])
	}
}

// wantNegative checks an NXDOMAIN or NODATA reply: no answer, the SOA.
func wantNegative(t *testing.T, r *dns.Msg, rcode int) {
	t.Helper()
	wantRcode(t, r, rcode)
	if len(r.Answer) != 0 || !r.Authoritative {
		t.Errorf("%s: answer %v, authoritative %v", r.Question[0].Name, r.Answer, r.Authoritative)
	}
	if len(r.Ns) != 1 {
		t.Fatalf("%s: authority %v, want the SOA", r.Question[0].Name, r.Ns)
	}
	soa, ok := r.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != "cluster.local." || soa.Minttl != 5 || soa.Hdr.Ttl != 5 {
		t.Errorf("%s: authority %v", r.Question[0].Name, r.Ns[0])
	}
}

var testServices = []Service{
	{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80},
		{Name: "dns", Protocol: "UDP", Port: 53},
		{Port: 8080}, // unnamed: no SRV
	}},
	{Namespace: "default", Name: "db", ClusterIP: "None", Ports: []Port{{Name: "pg", Port: 5432}},
		Endpoints: []Endpoint{
			{IP: "10.244.1.5", Hostname: "db-0", Ports: []Port{{Name: "pg", Protocol: "TCP", Port: 15432}}},
			{IP: "10.244.2.7"},
		}},
	{Namespace: "default", Name: "empty", ClusterIP: "", Ports: []Port{{Name: "x", Port: 1}}},
	{Namespace: "other", Name: "v6", ClusterIP: "fd00::10"},
}

var testPods = []Pod{
	{Namespace: "default", IP: "10.244.1.5", Hostname: "db-0", Subdomain: "db"},
	{Namespace: "default", IP: "10.244.3.9", Hostname: "worker", Subdomain: "db"},
	{Namespace: "default", IP: "10.244.3.10", Hostname: "lone", Subdomain: "web"}, // not headless
	{Namespace: "kube-system", IP: "10.244.4.4"},
}

func clusterServer(t *testing.T) string {
	t.Helper()
	s := newServer(t, Config{})
	if err := s.Update(testServices, testPods); err != nil {
		t.Fatal(err)
	}
	return serve(t, s)
}

func TestServiceRecords(t *testing.T) {
	addr := clusterServer(t)
	// Not a *net.UDPConn: served by miekg/dns's server, as a socket bound
	// to all addresses is.
	s := newServer(t, Config{})
	if err := s.Update(testServices, testPods); err != nil {
		t.Fatal(err)
	}
	miekgAddr := serveConn(t, s, func(pc net.PacketConn) net.PacketConn { return struct{ net.PacketConn }{pc} })
	for _, network := range []string{"udp", "tcp", "udp/miekg"} {
		t.Run(network, func(t *testing.T) {
			addr := addr
			if network == "udp/miekg" {
				network, addr = "udp", miekgAddr
			}
			r := query(t, addr, network, "web.default.svc.cluster.local.", dns.TypeA)
			wantRcode(t, r, dns.RcodeSuccess)
			if !r.Authoritative {
				t.Error("a cluster answer is authoritative")
			}
			wantRRs(t, "A", r.Answer, "web.default.svc.cluster.local. 5 IN A 10.96.0.10")

			r = query(t, addr, network, "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV)
			wantRRs(t, "SRV", r.Answer, "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.")
			wantRRs(t, "SRV additional", r.Extra, "web.default.svc.cluster.local. 5 IN A 10.96.0.10")
			r = query(t, addr, network, "_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV)
			wantRRs(t, "SRV udp", r.Answer, "_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local.")
			wantNegative(t, query(t, addr, network, "_http._udp.web.default.svc.cluster.local.", dns.TypeSRV), dns.RcodeNameError)
			// The name of a protocol under which a port is exists.
			wantNegative(t, query(t, addr, network, "_tcp.web.default.svc.cluster.local.", dns.TypeSRV), dns.RcodeSuccess)

			r = query(t, addr, network, "10.0.96.10.in-addr.arpa.", dns.TypePTR)
			wantRRs(t, "PTR", r.Answer, "10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.")

			r = query(t, addr, network, "v6.other.svc.cluster.local.", dns.TypeAAAA)
			wantRRs(t, "AAAA", r.Answer, "v6.other.svc.cluster.local. 5 IN AAAA fd00::10")
			r = query(t, addr, network, "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR)
			wantRRs(t, "PTR v6", r.Answer, "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR v6.other.svc.cluster.local.")
		})
	}
}

func TestNegativeAnswers(t *testing.T) {
	addr := clusterServer(t)
	// NODATA: the name exists, not with this type.
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.default.svc.cluster.local.", dns.TypeAAAA},
		{"web.default.svc.cluster.local.", dns.TypeTXT},
		{"default.svc.cluster.local.", dns.TypeA},
		{"svc.cluster.local.", dns.TypeA},
		{"pod.cluster.local.", dns.TypeA},
		{"cluster.local.", dns.TypeA},
		{"kube-system.pod.cluster.local.", dns.TypeA},
		{"10-244-4-4.kube-system.pod.cluster.local.", dns.TypeAAAA},
	} {
		wantNegative(t, query(t, addr, "udp", q.name, q.qtype), dns.RcodeSuccess)
	}
	for _, name := range []string{
		"nope.default.svc.cluster.local.",
		"web.nope.svc.cluster.local.",
		"x.web.default.svc.cluster.local.",
		"nope.cluster.local.",
		"empty.default.svc.cluster.local.", // headless without ready endpoints, as the spec says
		"_x._tcp.empty.default.svc.cluster.local.",
		"lone.web.default.svc.cluster.local.", // web is not headless
		"10-244-4-x.kube-system.pod.cluster.local.",
		"a.10-244-4-4.kube-system.pod.cluster.local.",
	} {
		wantNegative(t, query(t, addr, "udp", name, dns.TypeA), dns.RcodeNameError)
	}
}

func TestZoneApex(t *testing.T) {
	addr := clusterServer(t)
	r := query(t, addr, "udp", "cluster.local.", dns.TypeSOA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Mbox != "hostmaster.cluster.local." {
		t.Errorf("SOA: %v", r.Answer)
	}
	r = query(t, addr, "udp", "dns-version.cluster.local.", dns.TypeTXT)
	wantRRs(t, "TXT", r.Answer, `dns-version.cluster.local. 5 IN TXT "1.0.1"`)
	// ANY gets one RRset, as RFC 8482 allows.
	r = query(t, addr, "udp", "web.default.svc.cluster.local.", dns.TypeANY)
	wantRRs(t, "ANY", r.Answer, "web.default.svc.cluster.local. 5 IN A 10.96.0.10")
	wantNegative(t, query(t, addr, "udp", "default.svc.cluster.local.", dns.TypeANY), dns.RcodeSuccess)
}

func TestCaseInsensitive(t *testing.T) {
	addr := clusterServer(t)
	r := query(t, addr, "udp", "WeB.Default.SVC.Cluster.LOCAL.", dns.TypeA)
	if r.Question[0].Name != "WeB.Default.SVC.Cluster.LOCAL." {
		t.Errorf("question echoed as %q", r.Question[0].Name)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.96.0.10" {
		t.Errorf("answer %v", r.Answer)
	}
	r = query(t, addr, "udp", "_HTTP._Tcp.web.DEFAULT.svc.cluster.local.", dns.TypeSRV)
	if len(r.Answer) != 1 {
		t.Errorf("SRV answer %v", r.Answer)
	}
	wantNegative(t, query(t, addr, "udp", "NOPE.cluster.local.", dns.TypeA), dns.RcodeNameError)
}

func TestHeadless(t *testing.T) {
	addr := clusterServer(t)
	r := query(t, addr, "udp", "db.default.svc.cluster.local.", dns.TypeA)
	wantRRs(t, "A", r.Answer,
		"db.default.svc.cluster.local. 5 IN A 10.244.1.5",
		"db.default.svc.cluster.local. 5 IN A 10.244.2.7")
	r = query(t, addr, "udp", "db-0.db.default.svc.cluster.local.", dns.TypeA)
	wantRRs(t, "hostname A", r.Answer, "db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.5")
	r = query(t, addr, "udp", "10-244-2-7.db.default.svc.cluster.local.", dns.TypeA)
	wantRRs(t, "IP-named A", r.Answer, "10-244-2-7.db.default.svc.cluster.local. 5 IN A 10.244.2.7")

	r = query(t, addr, "udp", "_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV)
	wantRRs(t, "SRV", r.Answer,
		"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 15432 db-0.db.default.svc.cluster.local.",
		"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 10-244-2-7.db.default.svc.cluster.local.")
	wantRRs(t, "SRV additional", r.Extra,
		"db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.5",
		"10-244-2-7.db.default.svc.cluster.local. 5 IN A 10.244.2.7")

	r = query(t, addr, "udp", "5.1.244.10.in-addr.arpa.", dns.TypePTR)
	wantRRs(t, "PTR", r.Answer, "5.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local.")
	r = query(t, addr, "udp", "7.2.244.10.in-addr.arpa.", dns.TypePTR)
	wantRRs(t, "PTR", r.Answer, "7.2.244.10.in-addr.arpa. 5 IN PTR 10-244-2-7.db.default.svc.cluster.local.")
}

func TestPodRecords(t *testing.T) {
	addr := clusterServer(t)
	// spec.hostname + spec.subdomain naming a headless Service, whether
	// or not the pod is one of its endpoints.
	r := query(t, addr, "udp", "worker.db.default.svc.cluster.local.", dns.TypeA)
	wantRRs(t, "hostname.subdomain", r.Answer, "worker.db.default.svc.cluster.local. 5 IN A 10.244.3.9")
	r = query(t, addr, "udp", "9.3.244.10.in-addr.arpa.", dns.TypePTR)
	wantRRs(t, "its PTR", r.Answer, "9.3.244.10.in-addr.arpa. 5 IN PTR worker.db.default.svc.cluster.local.")

	r = query(t, addr, "udp", "10-244-4-4.kube-system.pod.cluster.local.", dns.TypeA)
	wantRRs(t, "pod A", r.Answer, "10-244-4-4.kube-system.pod.cluster.local. 5 IN A 10.244.4.4")
	// Any address, in any namespace, as the spec's deprecated records.
	r = query(t, addr, "udp", "192-0-2-1.Nowhere.pod.cluster.local.", dns.TypeA)
	wantRRs(t, "any pod A", r.Answer, "192-0-2-1.nowhere.pod.cluster.local. 5 IN A 192.0.2.1")
	r = query(t, addr, "udp", "fd00--1.x.pod.cluster.local.", dns.TypeAAAA)
	wantRRs(t, "pod AAAA", r.Answer, "fd00--1.x.pod.cluster.local. 5 IN AAAA fd00::1")
	r = query(t, addr, "udp", "4.4.244.10.in-addr.arpa.", dns.TypePTR)
	wantRRs(t, "pod PTR", r.Answer, "4.4.244.10.in-addr.arpa. 5 IN PTR 10-244-4-4.kube-system.pod.cluster.local.")
	r = query(t, addr, "udp", "10.3.244.10.in-addr.arpa.", dns.TypePTR)
	wantRRs(t, "PTR of a pod whose subdomain is no headless Service", r.Answer,
		"10.3.244.10.in-addr.arpa. 5 IN PTR 10-244-3-10.default.pod.cluster.local.")
}

func TestUpdateReportsInvalid(t *testing.T) {
	s := newServer(t, Config{Domain: "Example.Test", TTL: 30 * time.Second})
	err := s.Update([]Service{
		{Namespace: "a", Name: "ok", ClusterIP: "10.0.0.1"},
		{Namespace: "a", Name: "bad_name", ClusterIP: "10.0.0.2"},
		{Namespace: "a", Name: "badip", ClusterIP: "10.0.0"},
		{Namespace: "a", Name: "h", Endpoints: []Endpoint{{IP: "x"}, {IP: "10.1.0.1", Hostname: "-no"}, {IP: "10.1.0.2"}}},
	}, []Pod{{Namespace: "a", IP: "nope"}})
	if !errors.Is(err, ErrInvalid) || strings.Count(err.Error(), "\n") != 4 {
		t.Errorf("Update: %v", err)
	}
	addr := serve(t, s)
	r := query(t, addr, "udp", "ok.a.svc.example.test.", dns.TypeA)
	wantRRs(t, "the valid rest", r.Answer, "ok.a.svc.example.test. 30 IN A 10.0.0.1")
	r = query(t, addr, "udp", "h.a.svc.example.test.", dns.TypeA)
	wantRRs(t, "the valid endpoint", r.Answer, "h.a.svc.example.test. 30 IN A 10.1.0.2")
}

// TestUpdateWhileQuerying swaps between two versions of the records while
// clients query: every answer is one version's, never a mix (run with
// -race).
func TestUpdateWhileQuerying(t *testing.T) {
	s := newServer(t, Config{})
	addr := serve(t, s)
	versions := [][]Service{
		{{Namespace: "n", Name: "s", ClusterIP: "None", Endpoints: []Endpoint{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}}},
		{{Namespace: "n", Name: "s", ClusterIP: "None", Endpoints: []Endpoint{{IP: "10.0.0.3"}, {IP: "10.0.0.4"}}}},
	}
	want := map[string]bool{"10.0.0.1 10.0.0.2": true, "10.0.0.3 10.0.0.4": true}
	if err := s.Update(versions[1], nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil || n < 50; n++ {
				r := query(t, addr, "udp", "s.n.svc.cluster.local.", dns.TypeA)
				var ips []string
				for _, rr := range r.Answer {
					ips = append(ips, rr.(*dns.A).A.String())
				}
				sort.Strings(ips)
				if got := strings.Join(ips, " "); !want[got] {
					t.Errorf("answer %q is neither version", got)
					return
				}
			}
		})
	}
	for i := range 300 {
		if err := s.Update(versions[i%2], nil); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
}

func TestTruncation(t *testing.T) {
	s := newServer(t, Config{})
	var eps []Endpoint
	for i := range 50 {
		eps = append(eps, Endpoint{IP: fmt.Sprintf("10.0.1.%d", i+1)})
	}
	if err := s.Update([]Service{{Namespace: "n", Name: "big", Endpoints: eps}}, nil); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	const name = "big.n.svc.cluster.local."

	r := query(t, addr, "udp", name, dns.TypeA)
	if !r.Truncated || len(r.Answer) == 50 {
		t.Errorf("UDP without EDNS: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	r = query(t, addr, "tcp", name, dns.TypeA)
	if r.Truncated || len(r.Answer) != 50 {
		t.Errorf("TCP: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(4096, true)
	r = exchangeMsg(t, addr, "udp", m)
	if r.Truncated || len(r.Answer) != 50 {
		t.Errorf("UDP with EDNS: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	if opt := r.IsEdns0(); opt == nil || !opt.Do() || opt.UDPSize() != maxUDPSize {
		t.Errorf("OPT %v", opt)
	}
}

func TestRefusesGarbage(t *testing.T) {
	addr := clusterServer(t)
	ask := func(edit func(*dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
		edit(m)
		return exchangeMsg(t, addr, "udp", m)
	}
	for _, c := range []struct {
		what  string
		edit  func(*dns.Msg)
		rcode int
	}{
		{"notify", func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }, dns.RcodeNotImplemented},
		{"update", func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }, dns.RcodeNotImplemented},
		{"two questions", func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }, dns.RcodeFormatError},
		{"chaos", func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }, dns.RcodeRefused},
		{"AXFR", func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR }, dns.RcodeRefused},
		{"EDNS version 1", func(m *dns.Msg) { m.SetEdns0(1232, false).IsEdns0().SetVersion(1) }, dns.RcodeBadVers},
		// Not ours, and no recursion asked for, nothing cached.
		{"no recursion", func(m *dns.Msg) { m.Question[0].Name = "example.com."; m.RecursionDesired = false }, dns.RcodeRefused},
	} {
		if r := ask(c.edit); r.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.what, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
		}
	}
}

func TestListenAndServeStops(t *testing.T) {
	s := newServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	if err := s.ListenAndServe(context.Background(), "127.0.0.1:99999"); err == nil {
		t.Error("a bad address must fail")
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Domain: "bad..domain"},
		{Domain: "."},
		{TTL: time.Millisecond},
		{Upstream: []string{"no-port"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
