// Package nodes is the worker: it wires containerd, the pod network, the
// container runtime, the service proxy and the agent into one process, as
// package appliance wires the master.
package nodes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/agent"
	"github.com/berth/berth/nodes/dns"
	"github.com/berth/berth/nodes/network"
	"github.com/berth/berth/nodes/proxy"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/reconcile"
)

// DefaultClusterCIDR is the pod network of masters that do not say which
// one a node's pod CIDR is part of (those from before it was configurable).
const DefaultClusterCIDR = "10.244.0.0/16"

// Config is one worker's configuration.
type Config struct {
	// Name is the node's name; default the host name.
	Name    string
	DataDir string
	// Server is the masters' API (one URL, or several comma-separated).
	// On first start the agent joins with Token (an agent join token),
	// trusting only a CA with the fingerprint CAHash, and from then on
	// speaks mutual TLS with the certificate it got (kept under DataDir).
	Server, Token, CAHash string
	// Containerd is containerd's socket; empty starts a private containerd
	// under DataDir.
	Containerd string
	// Advertise is the address (HOST:PORT) the masters reach the agent's
	// own API (logs) at; default this node's address toward the first
	// master, port 10250 as the kubelet's. Listen is where that API
	// listens; default the advertised address and no other, "0.0.0.0:PORT"
	// for every interface (then the advertised default is the listener's
	// port on this node's address). See listenAgent.
	Listen, Advertise string
	// PlainHTTPRegistries are pulled from over HTTP (host or host:port).
	PlainHTTPRegistries []string
	Labels              map[string]string
	ClusterCIDR         string
	// ClusterDomain is the cluster's DNS domain (default cluster.local),
	// as the kubelet's --cluster-domain.
	ClusterDomain string
	// ResolvConf is the host's resolver configuration: the cluster DNS
	// forwards other names to its nameservers, and dnsPolicy Default pods
	// get it (default /etc/resolv.conf, as the kubelet's --resolv-conf).
	ResolvConf string
	// Heartbeat is the agent's heartbeat period (0: the agent's default).
	Heartbeat time.Duration
	// ProxyTable names the nftables table of the service proxy.
	ProxyTable string
	// Backoff shortens the restart back-off (tests); zero keeps the
	// kubelet's 10 s doubling to 5 min.
	BackoffBase, BackoffMax time.Duration
	Logger                  *slog.Logger
}

// Node is a running worker.
type Node struct {
	cfg    Config
	daemon *runtime.Daemon
	ln     net.Listener
	srv    *httpserve.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup

	client *api.Client

	hostDNS dns.ResolvConf

	mu    sync.Mutex
	rt    *runtime.Runtime
	proxy *proxy.Proxy
	dns   *dns.Server
	dnsIP string // where pods reach dns; "" until it listens
	// services is the latest answer of the Services watch, for the pods'
	// Service variables.
	services []reconcile.ServiceView
}

// Start brings the worker up: containerd, the agent's API, then the agent
// and the service proxy, which run until Close.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		cfg.Name = h
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg}
	if cfg.Containerd == "" {
		d, err := runtime.StartContainerd(ctx, filepath.Join(cfg.DataDir, "containerd"))
		if err != nil {
			return nil, err
		}
		d.Supervise(cfg.Logger)
		n.daemon, n.cfg.Containerd = d, d.Address()
	}
	ln, advertise, err := listenAgent(cfg)
	if err != nil {
		n.stopDaemon()
		return nil, err
	}
	n.ln = ln
	info, err := agent.NodeInfo(cfg.Name, advertise, cfg.DataDir, cfg.Labels)
	if err != nil {
		n.Close()
		return nil, err
	}
	id, err := nodeIdentity(ctx, cfg, advertise)
	if err != nil {
		n.Close()
		return nil, err
	}
	clientTLS, err := pki.ClientTLS(id.caPEM, id.certPEM, id.keyPEM, pki.OrgMasters)
	if err != nil {
		n.Close()
		return nil, err
	}
	serverTLS, err := pki.ServerTLS(id.caPEM, id.certPEM, id.keyPEM)
	if err != nil {
		n.Close()
		return nil, err
	}
	// A master that does not answer must cost less than the masters'
	// grace: after two heartbeat periods the next master is tried.
	beat := cfg.Heartbeat
	if beat <= 0 {
		beat = agent.DefaultHeartbeat
	}
	n.client = api.NewClient(strings.Join(id.masters, ","), "", api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}),
		api.WithAnswerTimeout(2*beat))
	// Names outside the cluster go to the host's resolvers; without a
	// resolv.conf there are none (and pods get SERVFAIL for them).
	if n.hostDNS, err = dns.ReadResolvConf(cmp.Or(cfg.ResolvConf, "/etc/resolv.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.Close()
		return nil, err
	}
	ag, err := agent.New(agent.Config{
		Node: info, Master: n.client, DataDir: filepath.Join(cfg.DataDir, "agent"), NodeDir: cfg.DataDir, Logger: cfg.Logger,
		NewRuntime:    func(ctx context.Context, node state.Node) (agent.Runtime, error) { return n.newRuntime(ctx, node) },
		Routes:        syncRoutes,
		Heartbeat:     cfg.Heartbeat,
		ClusterDomain: cfg.ClusterDomain,
		ClusterDNS:    n.clusterDNS,
		HostDNS:       n.hostDNS,
		Services:      n.latestServices,
	})
	if err != nil {
		n.Close()
		return nil, err
	}
	// Every route of the agent streams (logs, followed or not).
	n.srv = httpserve.New(httpserve.Streaming(ag.Handler()), serverTLS, cfg.Logger, httpserve.Limits{})
	ctx, n.cancel = context.WithCancel(ctx)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.srv.ServeTLS(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("agent API", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := ag.Run(ctx); err != nil && ctx.Err() == nil {
			cfg.Logger.Error("agent stopped", "err", err)
		}
	}()
	return n, nil
}

// newRuntime builds the pod network on the node's pod CIDR, the runtime,
// and starts the service proxy: all need the masters' answer first.
func (n *Node) newRuntime(ctx context.Context, node state.Node) (*runtime.Runtime, error) {
	// Reset needs the pod CIDR to tear pods down when no master answers.
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, podCIDRFile), []byte(node.PodCIDR+"\n"), 0o600); err != nil {
		return nil, err
	}
	// The masters say which range the pod CIDR is part of; masters from
	// before it was configurable do not, and used the default.
	clusterCIDR := node.ClusterCIDR
	if clusterCIDR == "" {
		clusterCIDR = n.cfg.ClusterCIDR
	}
	netw, err := newNetwork(n.cfg.DataDir, node.PodCIDR, clusterCIDR)
	if err != nil {
		return nil, err
	}
	opts := []runtime.Option{runtime.WithLogger(n.cfg.Logger), runtime.WithPlainHTTPRegistries(n.cfg.PlainHTTPRegistries...),
		runtime.WithSnapshotter(runtime.SnapshotterFor(n.cfg.DataDir))}
	if n.cfg.BackoffBase > 0 {
		opts = append(opts, runtime.WithBackoff(n.cfg.BackoffBase, n.cfg.BackoffMax))
	}
	rt, err := runtime.New(ctx, n.cfg.Containerd, runtimeDir(n.cfg.DataDir), netw, opts...)
	if err != nil {
		return nil, err
	}
	popts := []proxy.Option{proxy.WithClusterCIDR(clusterCIDR), proxy.WithLogger(n.cfg.Logger)}
	if n.cfg.ProxyTable != "" {
		popts = append(popts, proxy.WithTableName(n.cfg.ProxyTable))
	}
	px, err := proxy.New(popts...)
	if err != nil {
		rt.Close()
		return nil, err
	}
	srv, err := n.startDNS(ctx, netw.Gateway().String())
	if err != nil {
		px.Close()
		rt.Close()
		return nil, err
	}
	n.mu.Lock()
	n.rt, n.proxy, n.dns = rt, px, srv
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		agent.RunServiceProxy(ctx, n.client, px, node.Name, n.servicesSeen, n.cfg.Logger)
	}()
	return rt, nil
}

// startDNS serves the cluster's names on the pods' gateway, port 53, which
// every pod of the node reaches. The bridge that carries the address comes
// with the first pod, so the sockets bind before it exists (IP_FREEBIND).
// A node where the port is taken runs on: its pods get the host's
// resolvers, and the log says why.
func (n *Node) startDNS(ctx context.Context, ip string) (*dns.Server, error) {
	var upstream []string
	for _, ns := range n.hostDNS.Nameservers {
		upstream = append(upstream, net.JoinHostPort(ns, "53"))
	}
	srv, err := dns.New(dns.Config{Domain: n.cfg.ClusterDomain, Upstream: upstream, Logger: n.cfg.Logger})
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ip, "53")
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1) })
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", addr)
	if err != nil {
		n.cfg.Logger.Error("cluster DNS cannot listen; pods use the host's resolvers", "addr", addr, "err", err)
		return srv, nil
	}
	l, err := lc.Listen(ctx, "tcp4", addr)
	if err != nil {
		pc.Close()
		n.cfg.Logger.Error("cluster DNS cannot listen; pods use the host's resolvers", "addr", addr, "err", err)
		return srv, nil
	}
	n.mu.Lock()
	n.dnsIP = ip
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(ctx, pc, l); err != nil && ctx.Err() == nil {
			n.cfg.Logger.Error("cluster DNS stopped", "err", err)
		}
	}()
	return srv, nil
}

// servicesSeen takes each answer of the Services watch: the DNS records
// follow it, and pods started from then on get its variables.
func (n *Node) servicesSeen(views []reconcile.ServiceView) {
	n.mu.Lock()
	n.services = views
	srv := n.dns
	n.mu.Unlock()
	if srv != nil {
		if err := srv.Update(agent.DNSRecords(views), nil); err != nil {
			n.cfg.Logger.Warn("services skipped by the cluster DNS", "err", err)
		}
	}
}

// latestServices is the last answer of the Services watch.
func (n *Node) latestServices() []reconcile.ServiceView {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.services
}

// clusterDNS is the address pods resolve names at; "" while none listens.
func (n *Node) clusterDNS() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dnsIP
}

// Close stops the agent and the proxy (removing its nftables table) and
// the private containerd. Pods keep running in their shims, as they do
// when a kubelet stops; the next Start adopts them.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	if n.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.srv.Shutdown(ctx)
		cancel()
	} else if n.ln != nil {
		n.ln.Close()
	}
	n.wg.Wait()
	var errs []error
	n.mu.Lock()
	if n.proxy != nil {
		errs = append(errs, n.proxy.Close())
	}
	if n.rt != nil {
		errs = append(errs, n.rt.Close())
	}
	n.mu.Unlock()
	errs = append(errs, n.stopDaemon())
	return errors.Join(errs...)
}

func (n *Node) stopDaemon() error {
	if n.daemon == nil {
		return nil
	}
	return n.daemon.Stop()
}

const podCIDRFile = "pod-cidr"

func newNetwork(dataDir, podCIDR, clusterCIDR string) (*network.Network, error) {
	return network.New(network.Config{PodCIDR: podCIDR, ClusterCIDR: clusterCIDR, DataDir: filepath.Join(dataDir, "cni"), PortMap: true})
}

func runtimeDir(dataDir string) string { return filepath.Join(dataDir, "runtime") }

// syncRoutes points each other node's pod CIDR at that node.
func syncRoutes(rs []api.PodRoute) error {
	var routes []network.Route
	var errs []error
	for _, r := range rs {
		dst, err := netip.ParsePrefix(r.PodCIDR)
		via, verr := netip.ParseAddr(r.Via)
		if err = errors.Join(err, verr); err != nil {
			errs = append(errs, fmt.Errorf("route to node %s: %w", r.Node, err))
			continue
		}
		routes = append(routes, network.Route{Dst: dst, Via: via})
	}
	return errors.Join(append(errs, network.SyncRoutes(nil, routes))...)
}

// Reset undoes a worker whose agent has stopped: it stops every pod it
// runs, detaches them from the network, removes the pod network's
// masquerade rule, the routes to other nodes' pods and the service proxy's
// table, and stops the private containerd (started here if it is not
// running).
// `berth down` calls it; cfg needs DataDir, and Containerd and ProxyTable
// when the worker had them.
func Reset(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	errs := []error{network.SyncRoutes(nil, nil)}
	popts := []proxy.Option{proxy.WithLogger(cfg.Logger)}
	if cfg.ProxyTable != "" {
		popts = append(popts, proxy.WithTableName(cfg.ProxyTable))
	}
	if px, err := proxy.New(popts...); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, px.Close())
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, podCIDRFile))
	if errors.Is(err, os.ErrNotExist) {
		return errors.Join(errs...) // the node never ran a pod
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	// The cluster CIDR only shapes the masquerade rule, which Reset
	// removes: the pod CIDR alone will do.
	netw, err := newNetwork(cfg.DataDir, strings.TrimSpace(string(b)), "")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	address := cfg.Containerd
	if address == "" {
		d, err := runtime.StartContainerd(ctx, filepath.Join(cfg.DataDir, "containerd"))
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		defer d.Stop()
		address = d.Address()
	}
	rt, err := runtime.New(ctx, address, runtimeDir(cfg.DataDir), netw, runtime.WithLogger(cfg.Logger))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer rt.Close()
	pods, err := rt.ListPods(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	stopped := true
	for _, p := range pods {
		if err := rt.StopPod(ctx, p.PodRef, runtime.DefaultGracePeriod); err != nil {
			errs = append(errs, err)
			stopped = false
		}
	}
	if stopped {
		// Last, once no pod needs it: pods left running keep their NAT
		// for the next try.
		errs = append(errs, netw.Close())
	}
	return errors.Join(errs...)
}

// nodeID is a worker's TLS material, under DATA/tls.
type nodeID struct {
	caPEM, certPEM, keyPEM []byte
	masters                []string
}

// nodeIdentity loads the node's certificate, or joins the cluster for one:
// the join token is used once, the certificate from then on.
func nodeIdentity(ctx context.Context, cfg Config, advertise string) (*nodeID, error) {
	dir := filepath.Join(cfg.DataDir, "tls")
	files := []string{"ca.crt", "node.crt", "node.key"}
	masters := strings.Split(cfg.Server, ",")
	var id nodeID
	dst := []*[]byte{&id.caPEM, &id.certPEM, &id.keyPEM}
	var err error
	for i, f := range files {
		if *dst[i], err = os.ReadFile(filepath.Join(dir, f)); err != nil {
			break
		}
	}
	if err == nil {
		id.masters = masters
		return &id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if cfg.Token == "" || cfg.CAHash == "" {
		return nil, errors.New("this node has not joined a cluster yet: give the agent join token and the CA fingerprint")
	}
	pinned, err := pki.PinnedTLS(cfg.CAHash)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(advertise)
	c := api.NewClient(cfg.Server, cfg.Token, api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: pinned}, Timeout: 30 * time.Second}))
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(cfg.Name)
	if err != nil {
		return nil, err
	}
	var resp api.JoinResponse
	// The masters may still be starting: retry until they answer.
	err = retry.Until(ctx, retry.Backoff{Base: time.Second, Max: time.Second}, func() (err error) {
		resp, err = c.JoinAgent(ctx, api.JoinRequest{Name: cfg.Name, Hosts: []string{host}, CSRPEM: csrPEM})
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code < 500 {
			return retry.Permanent(fmt.Errorf("joining the cluster: %w", err))
		}
		return err
	}, func(err error, _ time.Duration) { cfg.Logger.Warn("joining the cluster", "err", err) })
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	id = nodeID{caPEM: resp.CAPEM, certPEM: resp.CertPEM, keyPEM: keyPEM, masters: masters}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), *dst[i], 0o600); err != nil {
			return nil, err
		}
	}
	for _, m := range resp.Masters {
		if !slices.Contains(id.masters, m) {
			id.masters = append(id.masters, m)
		}
	}
	cfg.Logger.Info("joined the cluster", "node", cfg.Name, "masters", id.masters)
	return &id, nil
}
