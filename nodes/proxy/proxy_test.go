package proxy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const clusterIP = "10.96.0.10"

func newProxy(t *testing.T, tp *topo, opts ...Option) (*Proxy, string) {
	t.Helper()
	table := "berth-test-" + randHex(3)
	p, err := New(append([]Option{WithTableName(table), WithNetNS(tp.nodePath())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, table
}

func endpoints(tp *topo, idx ...int) []Endpoint {
	var eps []Endpoint
	for _, i := range idx {
		eps = append(eps, Endpoint{IP: tp.pods[i].ip, Port: tcpPort})
	}
	return eps
}

func webService(proto string, port, nodePort int32, eps []Endpoint) []Service {
	return []Service{{Namespace: "default", Name: "web", ClusterIP: clusterIP,
		Ports: []ServicePort{{Name: "http", Protocol: proto, Port: port, NodePort: nodePort, Endpoints: eps}}}}
}

func keys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

func TestClusterIP(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, table := newProxy(t, tp)
	addr := fmt.Sprintf("%s:80", clusterIP)
	node := tp.nodePath()

	// Three endpoints: random choice reaches all of them.
	gen := genID(t, node)
	svcs := webService("TCP", 80, 0, endpoints(tp, 0, 1, 2))
	if err := p.Sync(svcs); err != nil {
		t.Fatal(err)
	}
	if got := genID(t, node); got != gen+1 {
		t.Fatalf("Sync took %d transactions, want 1", got-gen)
	}
	ruleset := listTable(t, tp.node, table)
	t.Logf("ruleset:\n%s", ruleset)
	pods, peers := askMany(t, node, "tcp4", addr, 60)
	if got := keys(pods); !slices.Equal(got, []string{"pod1", "pod2", "pod3"}) {
		t.Fatalf("reached %v, want all of pod1..3", pods)
	}
	// From the node, without a cluster CIDR, no masquerade: the pod sees
	// the node's source address chosen by the default route.
	if !peers[nodeIP] || len(peers) != 1 {
		t.Errorf("peers %v, want only %s", peers, nodeIP)
	}

	// Same input: one more transaction, the same ruleset.
	gen = genID(t, node)
	if err := p.Sync(svcs); err != nil {
		t.Fatal(err)
	}
	if got := genID(t, node); got != gen+1 {
		t.Fatalf("Sync took %d transactions, want 1", got-gen)
	}
	if again := listTable(t, tp.node, table); again != ruleset {
		t.Fatalf("resync changed the ruleset:\n%s\nthen:\n%s", ruleset, again)
	}

	// Two endpoints: only those answer.
	if err := p.Sync(webService("TCP", 80, 0, endpoints(tp, 0, 2))); err != nil {
		t.Fatal(err)
	}
	pods, _ = askMany(t, node, "tcp4", addr, 40)
	if got := keys(pods); !slices.Equal(got, []string{"pod1", "pod3"}) {
		t.Fatalf("reached %v, want pod1 and pod3", pods)
	}

	// No endpoints: refused at once, not a timeout.
	if err := p.Sync(webService("TCP", 80, 0, nil)); err != nil {
		t.Fatal(err)
	}
	t.Logf("ruleset without endpoints:\n%s", listTable(t, tp.node, table))
	if _, err := ask(node, "tcp4", addr); !isRefused(err) {
		t.Fatalf("connect with no endpoints: %v, want connection refused", err)
	}

	// Close removes the table.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := listTable(t, tp.node, table); got != "" {
		t.Fatalf("table still there after Close:\n%s", got)
	}
	if out := run(t, "ip", "netns", "exec", tp.node, "nft", "list", "tables"); strings.Contains(out, table) {
		t.Fatalf("tables after Close: %s", out)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNodePort(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, _ := newProxy(t, tp)
	node := tp.nodePath()

	if err := p.Sync(webService("TCP", 80, 30080, endpoints(tp, 0, 1, 2))); err != nil {
		t.Fatal(err)
	}
	// The node's own address on the nodePort, and another local address
	// (a veth's), both reach every endpoint.
	for _, ip := range []string{nodeIP, tp.pods[1].hostIP} {
		pods, peers := askMany(t, node, "tcp4", ip+":30080", 60)
		if got := keys(pods); !slices.Equal(got, []string{"pod1", "pod2", "pod3"}) {
			t.Fatalf("%s: reached %v, want all of pod1..3", ip, pods)
		}
		// NodePort traffic is masqueraded: each pod sees the node's
		// address on its own link, never the original source.
		for peer := range peers {
			if !strings.HasPrefix(peer, "10.200.") || !strings.HasSuffix(peer, ".1") {
				t.Errorf("%s: pod saw peer %s, want the node's veth address", ip, peer)
			}
		}
	}
	// Loopback is excluded, as kube-proxy does: nothing listens there.
	if _, err := ask(node, "tcp4", "127.0.0.1:30080"); !isRefused(err) {
		t.Errorf("127.0.0.1:30080: %v, want refused by the host stack", err)
	}

	if err := p.Sync(webService("TCP", 80, 30080, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(node, "tcp4", nodeIP+":30080"); !isRefused(err) {
		t.Fatalf("nodePort with no endpoints: %v, want connection refused", err)
	}
}

func TestUDP(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, _ := newProxy(t, tp)
	node := tp.nodePath()
	eps := []Endpoint{{IP: tp.pods[0].ip, Port: udpPort}, {IP: tp.pods[1].ip, Port: udpPort}, {IP: tp.pods[2].ip, Port: udpPort}}

	if err := p.Sync(webService("UDP", 53, 0, eps)); err != nil {
		t.Fatal(err)
	}
	pods, _ := askMany(t, node, "udp4", clusterIP+":53", 60)
	if got := keys(pods); !slices.Equal(got, []string{"pod1", "pod2", "pod3"}) {
		t.Fatalf("reached %v, want all of pod1..3", pods)
	}
	// No endpoints: ICMP port unreachable, which a pod sees as
	// ECONNREFUSED. On the node itself the reject happens in its own
	// output path, so the send already fails, with EPERM.
	if err := p.Sync(webService("UDP", 53, 0, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(nsPath(tp.pods[0].ns), "udp4", clusterIP+":53"); !isRefused(err) {
		t.Fatalf("udp from a pod with no endpoints: %v, want connection refused", err)
	}
	if _, err := ask(node, "udp4", clusterIP+":53"); !errors.Is(err, unix.EPERM) && !isRefused(err) {
		t.Fatalf("udp from the node with no endpoints: %v, want EPERM or connection refused", err)
	}
}

// TestFromPods covers the prerouting path (a pod reaching a service through
// the node), hairpin (a pod reaching itself through its service) and the
// cluster CIDR masquerade of node-originated traffic.
func TestFromPods(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, _ := newProxy(t, tp, WithClusterCIDR("10.200.0.0/16"))
	node := tp.nodePath()
	addr := clusterIP + ":80"

	if err := p.Sync(webService("TCP", 80, 0, endpoints(tp, 0, 2))); err != nil {
		t.Fatal(err)
	}
	// pod2 is in the cluster CIDR: forwarded, not masqueraded.
	pods, peers := askMany(t, nsPath(tp.pods[1].ns), "tcp4", addr, 40)
	if got := keys(pods); !slices.Equal(got, []string{"pod1", "pod3"}) {
		t.Fatalf("from pod2: reached %v, want pod1 and pod3", pods)
	}
	if !peers[tp.pods[1].ip] || len(peers) != 1 {
		t.Errorf("from pod2: peers %v, want only pod2's own address", peers)
	}
	// The node itself is outside the cluster CIDR: masqueraded.
	_, peers = askMany(t, node, "tcp4", addr, 20)
	if peers[nodeIP] {
		t.Errorf("from node with cluster CIDR: pods saw %v, want masqueraded", peers)
	}

	// Hairpin: pod1 is the only endpoint and connects to its own service.
	if err := p.Sync(webService("TCP", 80, 0, endpoints(tp, 0))); err != nil {
		t.Fatal(err)
	}
	pods, peers = askMany(t, nsPath(tp.pods[0].ns), "tcp4", addr, 5)
	if pods["pod1"] != 5 || !peers[tp.pods[0].hostIP] || len(peers) != 1 {
		t.Fatalf("hairpin: reached %v, peers %v; want pod1 seeing %s", pods, peers, tp.pods[0].hostIP)
	}

	// No endpoints, forwarded traffic: rejected in the forward hook.
	if err := p.Sync(webService("TCP", 80, 0, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(nsPath(tp.pods[1].ns), "tcp4", addr); !isRefused(err) {
		t.Fatalf("from pod2, no endpoints: %v, want connection refused", err)
	}
}

// TestSyncInvalid checks that a bad entry is reported but does not keep
// the good ones out of the table.
func TestSyncInvalid(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 1)
	p, table := newProxy(t, tp)
	svcs := []Service{
		{Namespace: "a", Name: "bad-ip", ClusterIP: "fd00::1", Ports: []ServicePort{{Port: 80}}},
		{Namespace: "a", Name: "sctp", ClusterIP: "10.96.0.2", Ports: []ServicePort{{Protocol: "SCTP", Port: 80}}},
		{Namespace: "z", Name: "dup", ClusterIP: clusterIP, Ports: []ServicePort{{Port: 80, Endpoints: endpoints(tp, 0)}}},
		{Namespace: "a", Name: "headless", ClusterIP: "None", Ports: []ServicePort{{Port: 80}}},
	}
	svcs = append(svcs, webService("TCP", 80, 0, endpoints(tp, 0))...)
	err := p.Sync(svcs)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Sync: %v, want ErrInvalid", err)
	}
	t.Log(err)
	got := listTable(t, tp.node, table)
	if !strings.Contains(got, clusterIP+" . tcp . 80") {
		t.Fatalf("valid service missing:\n%s", got)
	}
	if a, err := ask(tp.nodePath(), "tcp4", clusterIP+":80"); err != nil || a.pod != "pod1" {
		t.Fatalf("ask: %v %v", a, err)
	}
}

func TestBuildPlan(t *testing.T) {
	pl := buildPlan([]Service{
		{Namespace: "b", Name: "s", ClusterIP: "10.0.0.2", Ports: []ServicePort{
			{Protocol: "udp", Port: 53, Endpoints: []Endpoint{{IP: "10.1.0.2", Port: 53}, {IP: "10.1.0.1", Port: 53}, {IP: "10.1.0.2", Port: 53}, {IP: "bogus", Port: 1}}},
		}},
		{Namespace: "a", Name: "s", ClusterIP: "10.0.0.1", Ports: []ServicePort{
			{Port: 80, NodePort: 30000},
			{Port: 0},
		}},
		{Namespace: "a", Name: "t", ClusterIP: "10.0.0.3", Ports: []ServicePort{{Port: 81, NodePort: 30000}}},
	})
	var got []string
	for _, p := range pl.ports {
		got = append(got, fmt.Sprintf("%s %s %v", p.key, p.clusterIP, p.endpoints))
	}
	want := []string{
		"a/s/tcp/80 10.0.0.1 []",
		"b/s/udp/53 10.0.0.2 [10.1.0.1:53 10.1.0.2:53]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ports:\n%q\nwant\n%q", got, want)
	}
	if len(pl.invalid) != 3 { // bogus endpoint, port 0, nodePort clash
		t.Errorf("invalid: %v", pl.invalid)
	}

	// Chain names: bounded, stable, distinct after sanitizing.
	long := strings.Repeat("x", 300)
	if n := chainName("svc", long); len(n) > maxNameLen {
		t.Errorf("len %d", len(n))
	}
	if chainName("svc", "a/b c") == chainName("svc", "a/b_c") {
		t.Error("sanitized names collide")
	}
	if chainName("svc", "a") != chainName("svc", "a") {
		t.Error("unstable name")
	}
}
