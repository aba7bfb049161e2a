// Package proxy is berth's service proxy: kube-proxy's job in nftables mode.
//
// Every node renders one nftables table (family ip, default name "berth")
// that DNATs each Service ClusterIP:port, each LoadBalancer address at the
// service port, and each NodePort on any local address, to one of the
// service's ready endpoints picked by `numgen random mod N` (or the one a
// client with session affinity had; or among this node's endpoints, for a
// Local traffic policy). Sync replaces the whole table in one netlink
// transaction, so packets see either the old or the new ruleset, never a
// half-written one; the clients in the affinity set are carried over.
// Close removes the table.
package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Endpoint is one ready backend of a service port.
type Endpoint struct {
	IP    string
	Port  int32
	Local bool // on this node
}

// ServicePort is one port of a Service and the endpoints that serve it.
type ServicePort struct {
	Name     string
	Protocol string // TCP or UDP; empty means TCP, as in Kubernetes
	Port     int32
	NodePort int32 // 0: no NodePort
	// Endpoints are the ready endpoints only; with none, new connections
	// are rejected rather than silently dropped.
	Endpoints []Endpoint
}

// Service is what the proxy needs of a Service: where it listens and where
// its traffic goes. A ClusterIP of "" or "None" (headless) is not proxied.
type Service struct {
	Namespace, Name, ClusterIP string
	// LoadBalancer are addresses the Service is served on too, at each
	// port's Port, as ClusterIP is.
	LoadBalancer []string
	// SourceRanges, when set, are the only clients the LoadBalancer
	// addresses take; others are dropped.
	SourceRanges []string
	// Affinity sends a client (by source address) back to the endpoint it
	// had for this long after its last new connection; 0: none.
	Affinity time.Duration
	// InternalLocal sends ClusterIP traffic to this node's endpoints only
	// (and drops it when there are none). ExternalLocal does so for node
	// port and LoadBalancer traffic from outside the cluster, which keeps
	// its client address; pods and the node itself still reach every
	// endpoint there, as with kube-proxy.
	InternalLocal, ExternalLocal bool
	Ports                        []ServicePort
}

// ErrInvalid marks entries Sync skipped. The rest of the input was applied.
var ErrInvalid = errors.New("proxy: invalid service")

// DefaultTableName is the nftables table (family ip) the proxy owns.
const DefaultTableName = "berth"

// Option configures New.
type Option func(*Proxy) error

// WithTableName sets the table name; tests use unique ones.
func WithTableName(name string) Option {
	return func(p *Proxy) error {
		if name == "" || len(name) > maxNameLen {
			return fmt.Errorf("proxy: invalid table name %q", name)
		}
		p.table = name
		return nil
	}
}

// WithNetNS makes the proxy program the network namespace at path (for
// example /var/run/netns/x) instead of the caller's. The namespace is held
// open until Close.
func WithNetNS(path string) Option {
	return func(p *Proxy) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("proxy: netns: %w", err)
		}
		if p.netns != nil {
			p.netns.Close()
		}
		p.netns = f
		return nil
	}
}

// WithClusterCIDR sets the pod network. Traffic to a ClusterIP from outside
// it (other hosts, the node itself) is masqueraded, so that replies from an
// endpoint on another node come back through this node to be un-DNATed.
// Without it only NodePort and hairpin traffic is masqueraded.
func WithClusterCIDR(cidr string) Option {
	return func(p *Proxy) error {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil || !pfx.Addr().Is4() {
			return fmt.Errorf("proxy: cluster CIDR %q: not an IPv4 prefix", cidr)
		}
		p.clusterCIDR = pfx.Masked()
		return nil
	}
}

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(p *Proxy) error {
		if l != nil {
			p.log = l
		}
		return nil
	}
}

// Proxy owns one nftables table. Its methods are safe for concurrent use.
type Proxy struct {
	mu          sync.Mutex
	table       string
	netns       *os.File // nil: the caller's namespace
	clusterCIDR netip.Prefix
	log         *slog.Logger
	closed      bool
	synced      bool // the table exists
}

// New returns a proxy. It does not touch the ruleset until Sync.
func New(opts ...Option) (*Proxy, error) {
	p := &Proxy{table: DefaultTableName, log: slog.Default()}
	for _, o := range opts {
		if err := o(p); err != nil {
			if p.netns != nil {
				p.netns.Close()
			}
			return nil, err
		}
	}
	return p, nil
}

// Sync replaces the table's content with services in one transaction:
// delete and recreate the table inside a single batch, so the kernel swaps
// the whole ruleset atomically. Established connections keep their NAT in
// conntrack. Sync is idempotent. Entries it cannot render are skipped and
// reported in an error wrapping ErrInvalid; everything else is applied.
func (p *Proxy) Sync(services []Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy: closed")
	}
	start := time.Now()
	pl := buildPlan(services)

	kept := p.affinityEntries(pl)
	c, err := p.conn(bufSize(pl, len(kept)))
	if err != nil {
		return err
	}
	msgs, err := render(c, p.table, pl, p.clusterCIDR, kept)
	if err != nil {
		return fmt.Errorf("proxy: render table %s: %w", p.table, err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("proxy: sync table %s: %w", p.table, err)
	}
	p.synced = true
	p.log.Debug("proxy: synced", "table", p.table, "servicePorts", len(pl.ports),
		"messages", msgs, "took", time.Since(start))
	if len(pl.invalid) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(pl.invalid...))
	}
	return nil
}

// affinityEntries reads the clients the affinity set holds now, with the
// time each has left, for the table that replaces it: a Sync must not make
// clients lose their endpoints. A client that first connects between this
// read and the replace loses its entry. Only a plan with affinity pays for
// the read.
func (p *Proxy) affinityEntries(pl *plan) []nftables.SetElement {
	if !pl.affinity {
		return nil
	}
	var kept []nftables.SetElement
	c, err := p.conn(1 << 20)
	if err == nil {
		var s *nftables.Set
		if s, err = c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: p.table}, setAffinity); err == nil {
			var elems []nftables.SetElement
			if elems, err = c.GetSetElements(s); err == nil {
				for _, e := range elems {
					if e.Expires > 0 {
						kept = append(kept, nftables.SetElement{Key: e.Key, Timeout: e.Expires})
					}
				}
				return kept
			}
		}
	}
	if p.synced { // before the first Sync there is no table to read
		p.log.Warn("proxy: reading session affinity; clients may change endpoints", "err", err)
	}
	return kept
}

// Close removes the table and releases the namespace. Traffic to services
// is no longer handled afterwards. Calling Close again is a no-op.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	defer func() {
		if p.netns != nil {
			p.netns.Close()
		}
	}()
	c, err := p.conn(1 << 16)
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: p.table}
	// Adding first makes the delete succeed when Sync never ran.
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("proxy: delete table %s: %w", p.table, err)
	}
	return nil
}

// flushTimeout bounds one Flush, so a wedged netlink socket can not hang
// the agent's sync loop forever.
const flushTimeout = 30 * time.Second

// conn returns a non-lasting Conn: every Flush dials a fresh socket in the
// target namespace with the socket options below applied.
func (p *Proxy) conn(bufSize int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		// A Sync is one sendmsg of the whole batch, and the kernel answers
		// every message (ack, echo for rules). The default 208 KiB buffers
		// fail with EMSGSIZE / ENOBUFS at a few hundred services, so size
		// them to the batch. FORCE needs CAP_NET_ADMIN, as nftables does.
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bufSize); e != nil {
				serr = fmt.Errorf("SO_SNDBUFFORCE: %w", e)
				return
			}
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufSize); e != nil {
				serr = fmt.Errorf("SO_RCVBUFFORCE: %w", e)
			}
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		return c.SetDeadline(time.Now().Add(flushTimeout))
	})}
	if p.netns != nil {
		opts = append(opts, nftables.WithNetNSFd(int(p.netns.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("proxy: nftables: %w", err)
	}
	return c, nil
}
