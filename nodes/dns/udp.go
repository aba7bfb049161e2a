package dns

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpServer answers on a UDP socket bound to one address without
// miekg/dns's server, which cost twice dnsmasq's CPU per query: a
// goroutine per packet, a read deadline per read, control messages to
// pick each reply's source. Here one reader per core takes the queries
// waiting on the socket in one recvmmsg, answers cluster names and cached
// ones with buffers it reuses, and sends the replies in one sendmmsg;
// only a query that waits for an upstream gets a goroutine. miekg/dns
// still unpacks and packs every message.
type udpServer struct {
	s       *Server
	pc      *net.UDPConn
	batch   batchConn
	wg      sync.WaitGroup // readers, and queries waiting for an upstream
	closing atomic.Bool
}

// batchConn is ipv4.PacketConn or ipv6.PacketConn.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

const (
	batchSize    = 64
	maxQuerySize = 4096 // of a query; miekg/dns's server reads 512 by default
)

// ownUDP is pc as a *net.UDPConn when it is bound to one address, so
// replies leave from the address queries came to; nil otherwise.
func ownUDP(pc net.PacketConn) *net.UDPConn {
	u, ok := pc.(*net.UDPConn)
	if !ok || u.LocalAddr().(*net.UDPAddr).IP.IsUnspecified() {
		return nil
	}
	return u
}

func newUDPServer(s *Server, pc *net.UDPConn) *udpServer {
	u := &udpServer{s: s, pc: pc}
	if pc.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		u.batch = ipv4.NewPacketConn(pc)
	} else {
		u.batch = ipv6.NewPacketConn(pc)
	}
	return u
}

func (u *udpServer) serve() error {
	n := runtime.GOMAXPROCS(0)
	errc := make(chan error, n)
	for range n {
		u.wg.Go(func() { errc <- u.read() })
	}
	u.wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

func (u *udpServer) stop() {
	u.closing.Store(true)
	u.pc.Close()
}

func (u *udpServer) read() error {
	queries := make([]ipv4.Message, batchSize)
	replies := make([]ipv4.Message, batchSize)
	out := make([][]byte, batchSize)
	for i := range batchSize {
		queries[i].Buffers = [][]byte{make([]byte, maxQuerySize)}
		replies[i].Buffers = [][]byte{nil}
		out[i] = make([]byte, maxUDPSize)
	}
	for {
		n, err := u.batch.ReadBatch(queries, 0)
		if err != nil {
			if u.closing.Load() {
				return nil
			}
			return err
		}
		k := 0
		for _, q := range queries[:n] {
			r := new(dns.Msg)
			if r.Unpack(q.Buffers[0][:q.N]) != nil {
				continue // no reply to what does not parse: it could only amplify
			}
			m, later := u.s.reply(r, true, false)
			if later {
				to := q.Addr
				u.wg.Go(func() {
					if m, _ := u.s.reply(r, true, true); m != nil {
						u.write(m, to)
					}
				})
				continue
			}
			if m == nil {
				continue
			}
			b, err := m.PackBuffer(out[k])
			if err != nil {
				u.s.log.Debug("dns: packing a reply", "err", err)
				continue
			}
			replies[k].Buffers[0], replies[k].Addr = b, q.Addr
			k++
		}
		for sent := 0; sent < k; {
			n, err := u.batch.WriteBatch(replies[sent:k], 0)
			if err != nil {
				// One reply that cannot go (the client's address, say)
				// must not hold back the others.
				u.s.log.Debug("dns: writing a reply", "client", replies[sent].Addr, "err", err)
				n = max(n, 1)
			}
			sent += n
		}
	}
}

func (u *udpServer) write(m *dns.Msg, to net.Addr) {
	b, err := m.Pack()
	if err == nil {
		_, err = u.pc.WriteTo(b, to)
	}
	if err != nil {
		u.s.log.Debug("dns: writing a reply", "client", to, "err", err)
	}
}
