package proxy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// addClient puts a machine outside the cluster on the node's network:
// a namespace with ip on br0's /24, routed through the node.
func addClient(t testing.TB, tp *topo, ip string) string {
	t.Helper()
	octet := ip[strings.LastIndexByte(ip, '.')+1:]
	ns, veth := tp.node+"-c"+octet, "cl"+octet
	newNS(t, ns)
	ipn := func(args ...string) { run(t, append([]string{"ip", "-n", tp.node}, args...)...) }
	ipn("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	ipn("link", "set", veth, "master", "br0", "up")
	ipc := func(args ...string) { run(t, append([]string{"ip", "-n", ns}, args...)...) }
	ipc("link", "set", "lo", "up")
	ipc("addr", "add", ip+"/24", "dev", "eth0")
	ipc("link", "set", "eth0", "up")
	ipc("route", "add", "default", "via", nodeIP)
	return nsPath(ns)
}

func localEndpoints(tp *topo, local []bool) []Endpoint {
	var eps []Endpoint
	for i, l := range local {
		eps = append(eps, Endpoint{IP: tp.pods[i].ip, Port: tcpPort, Local: l})
	}
	return eps
}

func wantPods(t *testing.T, what string, got map[string]int, want ...string) {
	t.Helper()
	if k := keys(got); !slices.Equal(k, want) {
		t.Fatalf("%s: reached %v, want %v", what, got, want)
	}
}

func wantPeers(t *testing.T, what string, got map[string]bool, want string) {
	t.Helper()
	if !got[want] || len(got) != 1 {
		t.Fatalf("%s: pods saw clients %v, want only %s", what, got, want)
	}
}

// wantDropped: no answer at all, not a refusal.
func wantDropped(t *testing.T, what, path, addr string) {
	t.Helper()
	if a, err := ask(path, "tcp4", addr); err == nil || isRefused(err) {
		t.Fatalf("%s: %v %v, want a timeout", what, a, err)
	}
}

// A LoadBalancer address answers at the service port from outside, each
// connection masqueraded as a NodePort's is; without endpoints it refuses.
func TestLoadBalancer(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, table := newProxy(t, tp)
	client := addClient(t, tp, "172.31.0.2")
	svc := webService("TCP", 80, 0, endpoints(tp, 0, 1, 2))
	svc[0].LoadBalancer = []string{nodeIP}
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	t.Logf("ruleset:\n%s", listTable(t, tp.node, table))
	pods, peers := askMany(t, client, "tcp4", nodeIP+":80", 60)
	wantPods(t, "LoadBalancer from outside", pods, "pod1", "pod2", "pod3")
	for peer := range peers {
		if !strings.HasPrefix(peer, "10.200.") {
			t.Errorf("pod saw client %s, want the node's address on its link", peer)
		}
	}
	// Another port of the node's address is the host's own.
	if _, err := ask(client, "tcp4", nodeIP+":81"); !isRefused(err) {
		t.Errorf("%s:81: %v, want refused by the host stack", nodeIP, err)
	}
	svc[0].Ports[0].Endpoints = nil
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(client, "tcp4", nodeIP+":80"); !isRefused(err) {
		t.Fatalf("LoadBalancer without endpoints: %v, want refused", err)
	}
}

// loadBalancerSourceRanges: clients outside the ranges are dropped at the
// LoadBalancer address, before its DNAT; the ClusterIP stays open.
func TestLoadBalancerSourceRanges(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 1)
	p, table := newProxy(t, tp)
	allowed, other := addClient(t, tp, "172.31.0.2"), addClient(t, tp, "172.31.0.3")
	svc := webService("TCP", 80, 30080, endpoints(tp, 0))
	svc[0].LoadBalancer = []string{nodeIP}
	svc[0].SourceRanges = []string{"172.31.0.2/32", "192.168.0.0/16"}
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	t.Logf("ruleset:\n%s", listTable(t, tp.node, table))
	if a, err := ask(allowed, "tcp4", nodeIP+":80"); err != nil || a.pod != "pod1" {
		t.Fatalf("client in range: %v %v", a, err)
	}
	wantDropped(t, "client out of range", other, nodeIP+":80")
	// The ranges guard the LoadBalancer addresses only, as in Kubernetes.
	if a, err := ask(other, "tcp4", nodeIP+":30080"); err != nil || a.pod != "pod1" {
		t.Fatalf("node port from out of range: %v %v", a, err)
	}
	// Without endpoints too: no refusal tells an outsider anything.
	svc[0].Ports[0].Endpoints = nil
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	wantDropped(t, "client out of range, no endpoints", other, nodeIP+":80")
	if _, err := ask(allowed, "tcp4", nodeIP+":80"); !isRefused(err) {
		t.Fatalf("client in range, no endpoints: %v, want refused", err)
	}
}

// externalTrafficPolicy Local: node port and LoadBalancer traffic from
// outside goes to this node's endpoints only, with the client's address
// kept, and is dropped on a node without any; pods and the node itself
// still reach every endpoint.
func TestExternalTrafficPolicyLocal(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, table := newProxy(t, tp, WithClusterCIDR("10.200.0.0/16"))
	client := addClient(t, tp, "172.31.0.2")
	svc := webService("TCP", 80, 30080, localEndpoints(tp, []bool{true, true, false}))
	svc[0].LoadBalancer, svc[0].ExternalLocal = []string{nodeIP}, true
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	t.Logf("ruleset:\n%s", listTable(t, tp.node, table))
	for _, addr := range []string{nodeIP + ":30080", nodeIP + ":80"} {
		pods, peers := askMany(t, client, "tcp4", addr, 40)
		wantPods(t, "from outside to "+addr, pods, "pod1", "pod2")
		wantPeers(t, "from outside to "+addr, peers, "172.31.0.2")
	}
	pods, peers := askMany(t, nsPath(tp.pods[2].ns), "tcp4", nodeIP+":30080", 60)
	wantPods(t, "from pod3", pods, "pod1", "pod2", "pod3")
	if peers[nodeIP] {
		t.Errorf("from pod3: pods saw %v, want pod3's own address", peers)
	}
	pods, peers = askMany(t, tp.nodePath(), "tcp4", nodeIP+":30080", 60)
	wantPods(t, "from the node", pods, "pod1", "pod2", "pod3")
	if peers[nodeIP] {
		t.Errorf("from the node: pods saw %v, want masqueraded", peers)
	}

	// No local endpoint: outside clients are dropped, not refused; the
	// node still reaches the others.
	svc[0].Ports[0].Endpoints = localEndpoints(tp, []bool{false, false, false})
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	wantDropped(t, "no local endpoint", client, nodeIP+":30080")
	wantDropped(t, "no local endpoint", client, nodeIP+":80")
	pods, _ = askMany(t, tp.nodePath(), "tcp4", nodeIP+":30080", 60)
	wantPods(t, "from the node, no local endpoint", pods, "pod1", "pod2", "pod3")
}

// internalTrafficPolicy Local: the ClusterIP reaches this node's endpoints
// only, and drops without any; the node port keeps every endpoint.
func TestInternalTrafficPolicyLocal(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, _ := newProxy(t, tp)
	node := tp.nodePath()
	svc := webService("TCP", 80, 30080, localEndpoints(tp, []bool{true, false, false}))
	svc[0].InternalLocal = true
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	pods, _ := askMany(t, node, "tcp4", clusterIP+":80", 20)
	wantPods(t, "ClusterIP", pods, "pod1")
	pods, _ = askMany(t, node, "tcp4", nodeIP+":30080", 60)
	wantPods(t, "node port", pods, "pod1", "pod2", "pod3")

	svc[0].Ports[0].Endpoints = localEndpoints(tp, []bool{false, false, false})
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	wantDropped(t, "ClusterIP without a local endpoint", nsPath(tp.pods[0].ns), clusterIP+":80")
}

// sessionAffinity ClientIP: a client keeps its endpoint, across Syncs that
// rebuild the table, until it has made no new connection for the timeout.
func TestSessionAffinity(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t, 3)
	p, table := newProxy(t, tp)
	node := tp.nodePath()
	svc := webService("TCP", 80, 0, endpoints(tp, 0, 1, 2))
	svc[0].Affinity = 2 * time.Second
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	pods, _ := askMany(t, node, "tcp4", clusterIP+":80", 20)
	if len(pods) != 1 {
		t.Fatalf("one client reached %v, want one pod", pods)
	}
	first := keys(pods)[0]
	// Another client, pod1, has an endpoint of its own to keep.
	mine, _ := askMany(t, nsPath(tp.pods[0].ns), "tcp4", clusterIP+":80", 10)
	if len(mine) != 1 {
		t.Fatalf("pod1 reached %v, want one pod", mine)
	}
	ruleset := listTable(t, tp.node, table)
	t.Logf("ruleset:\n%s", ruleset)
	if n := strings.Count(ruleset, "expires"); n != 2 {
		t.Errorf("%d entries in the affinity set, want the node's and pod1's", n)
	}
	for range 3 {
		if err := p.Sync(svc); err != nil {
			t.Fatal(err)
		}
		pods, _ = askMany(t, node, "tcp4", clusterIP+":80", 5)
		wantPods(t, "after a Sync", pods, first)
	}
	// The endpoint goes: the client moves to another, and stays there.
	var rest []int
	for i := range 3 {
		if tp.pods[i].name != first {
			rest = append(rest, i)
		}
	}
	svc[0].Ports[0].Endpoints = endpoints(tp, rest...)
	if err := p.Sync(svc); err != nil {
		t.Fatal(err)
	}
	pods, _ = askMany(t, node, "tcp4", clusterIP+":80", 10)
	if len(pods) != 1 || pods[first] != 0 {
		t.Fatalf("after its endpoint went: %v", pods)
	}
	// Silent for longer than the timeout: the entries are gone.
	time.Sleep(2500 * time.Millisecond)
	if got := listTable(t, tp.node, table); strings.Contains(got, "expires") {
		t.Fatalf("entries outlived the timeout:\n%s", got)
	}
}

func TestBuildPlanFeatures(t *testing.T) {
	pl := buildPlan([]Service{
		{Namespace: "a", Name: "lb", ClusterIP: "10.0.0.1", LoadBalancer: []string{"192.168.1.2", "192.168.1.1", "192.168.1.2"},
			SourceRanges: []string{"10.0.0.1/8"}, Ports: []ServicePort{{Port: 80}, {Port: 81}}},
		{Namespace: "b", Name: "lb", ClusterIP: "10.0.0.2", LoadBalancer: []string{"192.168.1.1", "192.168.1.3"}, Ports: []ServicePort{{Port: 80}}},
		{Namespace: "c", Name: "bad", ClusterIP: "10.0.0.3", LoadBalancer: []string{"fd00::1"}, SourceRanges: []string{"x"}, Ports: []ServicePort{{Port: 80}}},
		{Namespace: "d", Name: "headless", ClusterIP: "None", Ports: []ServicePort{{Port: 80}}},
	})
	var got []string
	for _, p := range pl.ports {
		got = append(got, fmt.Sprintf("%s %v %v", p.key, p.lbAddrs, p.sourceRanges))
	}
	want := []string{
		"a/lb/tcp/80 [192.168.1.1 192.168.1.2] [10.0.0.0/8]",
		"a/lb/tcp/81 [192.168.1.1 192.168.1.2] [10.0.0.0/8]",
		"b/lb/tcp/80 [192.168.1.3] []", // 192.168.1.1:80 is a/lb's
		"c/bad/tcp/80 [] []",           // no valid range: no LoadBalancer address
	}
	if !slices.Equal(got, want) {
		t.Errorf("ports:\n%q\nwant\n%q", got, want)
	}
	if len(pl.invalid) != 4 { // the taken address, the IPv6 address, the range, no range left
		t.Errorf("invalid: %v", pl.invalid)
	}
}
