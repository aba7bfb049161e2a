package httpserve

import (
	"net"
	"net/netip"
	"sync"
)

// perAddress is a listener that keeps at most max connections from one
// remote IP open at once: a connection over that is closed as soon as it is
// accepted, so one client cannot take every descriptor of the process.
// (netutil.LimitListener bounds the total, which one client could fill.)
type perAddress struct {
	net.Listener
	max     int
	refused *RefusalLog

	mu   sync.Mutex
	open map[netip.Addr]int
}

func limitPerAddress(ln net.Listener, max int, refused *RefusalLog) net.Listener {
	return &perAddress{Listener: ln, max: max, refused: refused, open: map[netip.Addr]int{}}
}

func (l *perAddress) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		full := l.open[ip] >= l.max
		if !full {
			l.open[ip]++
		}
		l.mu.Unlock()
		if full {
			c.Close()
			l.refused.Refused("remote", ip.String(), "open", l.max)
			continue
		}
		return &countedConn{Conn: c, release: sync.OnceFunc(func() { l.release(ip) })}, nil
	}
}

func (l *perAddress) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// remoteIP is the connection's peer address without port or IPv4-in-IPv6
// mapping, so that both forms of one client count together. A peer that is
// not an IP (a unix socket in tests) counts as the zero address.
func remoteIP(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// countedConn gives its place back once, on the first Close.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
