package dns

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// recorder is a ResponseWriter that keeps the packed reply.
type recorder struct {
	tcp   bool
	reply []byte
}

func (w *recorder) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *recorder) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
}

func (w *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.reply != nil {
		return 0, errors.New("a second reply")
	}
	w.reply = b
	return len(b), nil
}

func (*recorder) Close() error        { return nil }
func (*recorder) TsigStatus() error   { return nil }
func (*recorder) TsigTimersOnly(bool) {}
func (*recorder) Hijack()             {}

// FuzzServeDNS feeds any message through ServeDNS: it must not panic,
// and every reply must pack, carry the query's ID, and fit the client's
// size over UDP.
func FuzzServeDNS(f *testing.F) {
	s, err := New(Config{Upstream: []string{"192.0.2.53"}})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Update(testServices, testPods); err != nil {
		f.Fatal(err)
	}
	// The upstream answers from memory: an A record, a truncated or
	// failing reply by name, so the cache's paths run without sockets.
	s.fwd.exchange = func(q *dns.Msg, _ string) (*dns.Msg, error) {
		name := q.Question[0].Name
		if strings.HasPrefix(name, "fail") {
			return nil, errors.New("down")
		}
		m := new(dns.Msg)
		m.SetReply(q)
		if strings.HasPrefix(name, "nx") {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.", Mbox: "h.", Minttl: uint32(len(name))}}
			return m, nil
		}
		for i := range len(name) {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: uint32(i)}, A: net.IPv4(192, 0, 2, byte(i))})
		}
		return m, nil
	}

	seed := func(name string, qtype uint16, edit func(*dns.Msg)) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	seed("web.default.svc.cluster.local.", dns.TypeA, nil)
	seed("WEB.default.svc.cluster.local.", dns.TypeAAAA, nil)
	seed("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, nil)
	seed("_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, func(m *dns.Msg) { m.SetEdns0(4096, true) })
	seed("db.default.svc.cluster.local.", dns.TypeANY, nil)
	seed("10-244-4-4.kube-system.pod.cluster.local.", dns.TypeA, nil)
	seed("10.0.96.10.in-addr.arpa.", dns.TypePTR, nil)
	seed("nope.cluster.local.", dns.TypeA, nil)
	seed("cluster.local.", dns.TypeSOA, nil)
	seed("example.com.", dns.TypeA, nil)
	seed("a-long-name-for-many-records.example.com.", dns.TypeA, nil)
	seed("nx.example.com.", dns.TypeA, nil)
	seed("fail.example.com.", dns.TypeMX, nil)
	seed("example.com.", dns.TypeA, func(m *dns.Msg) { m.RecursionDesired = false })
	seed("example.com.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(512, false).IsEdns0().SetVersion(2) })
	seed("x\\.cluster.local.", dns.TypeA, nil)
	seed("web.default.svc.cluster.local.", dns.TypeAXFR, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	f.Add([]byte{}, false)
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}, false)

	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		r := new(dns.Msg)
		if r.Unpack(data) != nil {
			return
		}
		w := &recorder{tcp: tcp}
		s.ServeDNS(w, r)
		if w.reply == nil {
			if !r.Response {
				t.Fatal("no reply to a query")
			}
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(w.reply); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if m.Id != r.Id || !m.Response {
			t.Fatalf("reply ID %d, response %v, to query %d", m.Id, m.Response, r.Id)
		}
		size := dns.MaxMsgSize
		if !tcp {
			size = dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
			}
		}
		if len(w.reply) > size {
			t.Fatalf("reply of %d bytes, the client takes %d", len(w.reply), size)
		}
	})
}
