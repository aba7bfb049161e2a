package reconcile

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

func typed(name, typ string, ports ...objects.ServicePort) *objects.Service {
	svc := service(name, "")
	svc.Spec.Type = typ
	svc.Spec.Selector = map[string]string{"app": "web"}
	if ports != nil {
		svc.Spec.Ports = ports
	}
	return svc
}

func port(proto string, number, nodePort int32) objects.ServicePort {
	return objects.ServicePort{Name: fmt.Sprintf("%s-%d", proto, number), Protocol: proto, Port: number, NodePort: nodePort}
}

// nodePorts is every node port in the state, by Service port.
func (h *harness) nodePorts() map[string]int32 {
	out := map[string]int32{}
	for k, p := range h.s.NodePorts {
		out[k] = p.NodePort
	}
	return out
}

func TestNodePortsAllocated(t *testing.T) {
	h := newHarness(t)
	noNodePorts := typed("lb-none", "LoadBalancer")
	noNodePorts.Spec.AllocateLoadBalancerNodePorts = new(false)
	pinnedLB := typed("lb-pinned", "LoadBalancer", port("TCP", 443, 30443))
	pinnedLB.Spec.AllocateLoadBalancerNodePorts = new(false)
	h.commit(
		typed("np", "NodePort"), // listed first, and still not given the pinned 30000
		typed("pin", "NodePort", port("TCP", 80, 30000)),
		typed("dns", "NodePort", port("UDP", 53, 0), port("TCP", 53, 0), port("TCP", 54, 0)),
		typed("lb", "LoadBalancer"),
		noNodePorts, pinnedLB,
		typed("cluster", "ClusterIP"),
	)
	h.control()
	want := map[string]int32{
		"default/np/TCP/80": 30001, "default/pin/TCP/80": 30000,
		"default/dns/UDP/53": 30002, "default/dns/TCP/53": 30002, "default/dns/TCP/54": 30003,
		"default/lb/TCP/80": 30004, "default/lb-pinned/TCP/443": 30443,
	}
	if got := h.nodePorts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("node ports:\n got %v\nwant %v", got, want)
	}
	if cmds := NodePorts(h.s, h.desired()); len(cmds) != 0 {
		t.Fatalf("a second pass proposes %d commands, want none", len(cmds))
	}
	views := map[string]ServiceView{}
	for _, v := range Services(h.s, h.desired()) {
		views[v.Name] = v
	}
	if views["np"].Ports[0].NodePort != 30001 || views["lb-none"].Ports[0].NodePort != 0 || views["cluster"].Ports[0].NodePort != 0 {
		t.Fatalf("views: %+v", views)
	}

	// A Service that goes releases its number, which the next new port
	// gets; a pin that moves takes its new number; the rest keep theirs.
	h.commit(
		typed("pin", "NodePort", port("TCP", 80, 30500)),
		typed("dns", "NodePort", port("UDP", 53, 0), port("TCP", 53, 0), port("TCP", 54, 0)),
		typed("lb", "LoadBalancer"),
		typed("new", "NodePort"),
		typed("lb-none", "NodePort"), // allocates now
	)
	h.control()
	want = map[string]int32{
		"default/pin/TCP/80": 30500,
		"default/dns/UDP/53": 30002, "default/dns/TCP/53": 30002, "default/dns/TCP/54": 30003,
		"default/lb/TCP/80":      30004,
		"default/new/TCP/80":     30000,
		"default/lb-none/TCP/80": 30001,
	}
	if got := h.nodePorts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a commit:\n got %v\nwant %v", got, want)
	}
	h.commit(typed("cluster", "ClusterIP"))
	h.control()
	if got := h.nodePorts(); len(got) != 0 {
		t.Fatalf("no NodePort Service left, node ports %v", got)
	}
}

// A pin on a number a remaining Service holds is refused alone, as for
// ClusterIPs; a full range leaves the rest without a node port.
func TestNodePortConflicts(t *testing.T) {
	h := newHarness(t)
	h.commit(typed("dyn", "NodePort"))
	h.control()
	h.commit(typed("dyn", "NodePort"), typed("late", "NodePort", port("TCP", 80, 30000)), typed("new", "NodePort"))
	cmds, refused := plan(h.s, NodePorts(h.s, h.desired()))
	h.apply(cmds...)
	if len(refused) != 1 || refused[0].err == nil || h.s.NodePorts["default/new/TCP/80"].NodePort != 30001 {
		t.Fatalf("pin on a held number: %v, refused %v", h.nodePorts(), refused)
	}

	h = newHarness(t)
	var ports []objects.ServicePort
	for i := range maxNodePort - minNodePort + 2 {
		ports = append(ports, port("TCP", int32(i+1), 0))
	}
	h.commit(typed("many", "NodePort", ports...))
	h.control()
	if n := len(h.s.NodePorts); n != maxNodePort-minNodePort+1 {
		t.Fatalf("%d node ports, want the whole range", n)
	}
}

func (h *harness) views() map[string]ServiceView {
	out := map[string]ServiceView{}
	for _, v := range Services(h.s, h.desired()) {
		out[v.Name] = v
	}
	return out
}

// setStatus reports pod key running with ip, ready or not.
func (h *harness) setStatus(key, ip string, ready bool) {
	h.apply(state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: key, Status: state.PodStatus{Phase: state.PodRunning, Ready: ready, IP: ip}}))
}

// A headless Service has no ClusterIP, and gives up the one it had; its
// view lists its endpoints with their pods and nodes, for DNS. With
// publishNotReadyAddresses a running pod that is not ready is one too.
func TestHeadlessServiceView(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 2, "1"), typed("db", "ClusterIP"))
	h.control()
	if h.s.ServiceIPs["default/db"] == "" {
		t.Fatal("no ClusterIP before it is headless")
	}
	headless := typed("db", "ClusterIP")
	headless.Spec.ClusterIP = "None"
	unready := typed("unready", "ClusterIP")
	unready.Spec.ClusterIP, unready.Spec.PublishNotReadyAddresses = "None", true
	h.commit(deployment("web", 2, "1"), headless, unready)
	h.control()
	if ip, ok := h.s.ServiceIPs["default/db"]; ok {
		t.Fatalf("headless Service holds %s", ip)
	}
	h.agents()
	var first *state.Pod
	for p := range h.s.Pods.All() {
		first = p
		break
	}
	h.setStatus(first.Key(), first.Status.IP, false)

	views := h.views()
	db, un := views["db"], views["unready"]
	if db.ClusterIP != "None" || len(db.Ports[0].Endpoints) != 1 || un.ClusterIP != "None" || len(un.Ports[0].Endpoints) != 2 {
		t.Fatalf("headless views: %+v", views)
	}
	nodes := map[string]bool{}
	for _, ep := range un.Ports[0].Endpoints {
		p := h.s.Pods.Get("default/" + ep.Pod)
		if p == nil || p.Status.IP != ep.IP || p.NodeName != ep.Node {
			t.Fatalf("endpoint %+v is not its pod %+v", ep, p)
		}
		nodes[ep.Node] = true
	}
	if len(nodes) != 2 {
		t.Fatalf("endpoints on nodes %v, want a and b", nodes)
	}
}

// A LoadBalancer is served on every ready node's address (a host name or
// loopback is none); with
// externalTrafficPolicy Local on those of ready nodes with an endpoint, as
// k3s's ServiceLB reports them. The view carries the policies and the
// affinity the proxy renders.
func TestLoadBalancerIngress(t *testing.T) {
	nodeAt := func(name, addr string) state.Node {
		n := node(name)
		n.Address = addr
		return n
	}
	h := newHarness(t, nodeAt("a", "10.0.0.10:10250"), nodeAt("b", "10.0.0.9:10250"), nodeAt("c", "10.0.0.11:10250"),
		nodeAt("d", "worker-d:10250"), nodeAt("e", "127.0.0.1:10250"))
	h.apply(state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "c", Ready: false}))
	lb := typed("lb", "LoadBalancer")
	local := typed("local", "LoadBalancer")
	local.Spec.ExternalTrafficPolicy, local.Spec.InternalTrafficPolicy = "Local", "Local"
	local.Spec.SessionAffinity = "ClientIP"
	local.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/16"}
	h.commit(deployment("web", 3, "1"), lb, local)
	h.control()
	h.agents()
	views := h.views()
	if got := views["lb"].Ingress; !reflect.DeepEqual(got, []string{"10.0.0.9", "10.0.0.10"}) {
		t.Errorf("LoadBalancer ingress %v, want the ready nodes' addresses in order", got)
	}
	hosting := map[string]bool{}
	for _, ep := range views["local"].Ports[0].Endpoints {
		hosting[ep.Node] = true
	}
	if len(hosting) != 3 {
		t.Fatalf("endpoints on %v, want three nodes", hosting)
	}
	var want []string // of a and b, in address order
	for _, n := range []struct{ name, ip string }{{"b", "10.0.0.9"}, {"a", "10.0.0.10"}} {
		if hosting[n.name] {
			want = append(want, n.ip)
		}
	}
	v := views["local"]
	if !reflect.DeepEqual(v.Ingress, want) || v.AffinityTimeout != objects.DefaultAffinityTimeout ||
		v.ExternalTrafficPolicy != "Local" || v.InternalTrafficPolicy != "Local" || len(v.LoadBalancerSourceRanges) != 1 {
		t.Errorf("Local LoadBalancer %+v, want ingress %v", v, want)
	}
}
