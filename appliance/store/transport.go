package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// streamLayer is Raft's connection layer: TCP, wrapped in mutual TLS when
// the config has a tls.Config. Raft's NetworkTransport frames its RPCs on
// whatever connections this hands it.
type streamLayer struct {
	ln        net.Listener // TCP
	advertise net.Addr
	tls       *tls.Config // nil: plain TCP

	// Raft serves each accepted connection in a goroutine that outlives
	// Raft's Shutdown and the transport's Close, and answers heartbeats by
	// writing to the log store; served tracks them so that Store.Close
	// can end them before closing that store.
	served  sync.WaitGroup
	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{} // raw TCP connections being served
}

// advertiseAddr is the address peers dial, which differs from the
// listener's when it binds all interfaces or sits behind NAT.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

// listen binds bindAddr and decides the address peers use: advertise when
// set, else the bound address, which must then be one a peer can dial.
func listen(bindAddr, advertise string, tlsConfig *tls.Config) (*streamLayer, error) {
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			return nil, fmt.Errorf("advertise address %q: %w", advertise, err)
		}
	}
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, err
	}
	if advertise == "" {
		tcp := ln.Addr().(*net.TCPAddr)
		if tcp.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("%s listens on every interface: set an advertise address for peers to dial", bindAddr)
		}
		advertise = tcp.String()
	}
	return &streamLayer{ln: ln, advertise: advertiseAddr(advertise), tls: tlsConfig, conns: map[net.Conn]struct{}{}}, nil
}

func (l *streamLayer) Accept() (net.Conn, error) {
	raw, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		raw.Close()
		return nil, net.ErrClosed
	}
	l.conns[raw] = struct{}{}
	l.served.Add(1)
	conn := raw
	if l.tls != nil {
		// The handshake happens on the first read, in the goroutine Raft
		// runs per connection, so a slow or hostile client cannot stall
		// the accept loop.
		conn = tls.Server(raw, l.tls)
	}
	return &servedConn{Conn: conn, raw: raw, l: l}, nil
}

// Close stops accepting connections.
func (l *streamLayer) Close() error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	return l.ln.Close()
}

// drain ends every connection being served and waits for Raft's handlers
// to return. Call it after the transport's Close.
func (l *streamLayer) drain() {
	l.mu.Lock()
	l.closing = true
	for raw := range l.conns {
		raw.Close()
	}
	l.mu.Unlock()
	l.served.Wait()
}

func (l *streamLayer) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// servedConn is an accepted connection; Raft's handler closes it when it
// returns.
type servedConn struct {
	net.Conn
	raw  net.Conn
	l    *streamLayer
	once sync.Once
}

// Read reports a connection that drain ended as io.EOF, which Raft's
// handler takes as a quiet end instead of logging an error per peer.
func (c *servedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.l.isClosing() {
		err = io.EOF
	}
	return n, err
}

// Write reports success on a connection that drain ended, for the same
// reason: the peer sees the connection close either way.
func (c *servedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && c.l.isClosing() {
		return len(p), nil
	}
	return n, err
}

func (c *servedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.raw)
		c.l.mu.Unlock()
		c.l.served.Done()
	})
	return err
}

// Addr is what Raft records as this server's address in the cluster
// configuration.
func (l *streamLayer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer. Over TLS the handshake completes here, so a peer
// with a certificate the cluster CA did not sign fails the dial with the
// verification error instead of a framing error on the first RPC.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if l.tls == nil {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", string(address))
	}
	cfg := l.tls.Clone()
	if cfg.ServerName == "" {
		// Without a fixed name every peer's certificate must name the
		// address it is dialled at, as etcd's peer certificates do.
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, err
		}
		cfg.ServerName = host
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("raft peer %s presented a certificate this cluster does not trust: %w", address, err)
		}
		return nil, err
	}
	return conn, nil
}

func newTransport(cfg Config, logger hclog.Logger) (*raft.NetworkTransport, *streamLayer, error) {
	stream, err := listen(cfg.BindAddr, cfg.Advertise, cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger,
	})
	return trans, stream, nil
}
