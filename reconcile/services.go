package reconcile

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// DefaultServiceCIDR is Kubernetes' usual service range.
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")

// ServiceIPs gives every Service of the revision a ClusterIP and releases
// the IPs of Services that are gone. Releases come first, then pinned IPs
// (spec.clusterIP), then every other Service gets the lowest free address
// of cidr past the network address and .1 that no Service pins: so a
// commit that moves an IP from a removed Service to a new one, or lists a
// dynamic Service before a pinned one, plans in an order the FSM accepts.
// A pinned IP that a remaining Service holds is still asked for: the FSM
// refuses that one command, which the loop reports, and only that Service
// waits (Kubernetes refuses such a Service: "provided IP is already
// allocated").
func ServiceIPs(s *state.State, d *Desired, cidr netip.Prefix) []state.Command {
	var cmds []state.Command
	set := func(key, ip string) {
		cmds = append(cmds, state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: key, IP: ip}))
	}
	wanted := map[string]bool{}
	pins := map[netip.Addr]string{} // pinned IP -> the first Service pinning it
	for _, svc := range d.Services {
		if !svc.Spec.VirtualIP() {
			continue // no IP; one it had is released
		}
		key := serviceKey(svc)
		wanted[key] = true
		if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && pins[a] == "" {
			pins[a] = key
		}
	}
	held := map[netip.Addr]bool{} // IPs of Services that stay
	keys := make([]string, 0, len(s.ServiceIPs))
	for k := range s.ServiceIPs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !wanted[k] {
			set(k, "")
		} else if a, err := netip.ParseAddr(s.ServiceIPs[k]); err == nil {
			held[a] = true
		}
	}
	for _, svc := range d.Services {
		key, pin := serviceKey(svc), svc.Spec.ClusterIP
		a, err := netip.ParseAddr(pin)
		if err != nil || pins[a] != key || s.ServiceIPs[key] == pin {
			continue // none, invalid or pinned twice (the loader says so), or assigned
		}
		held[a] = true
		set(key, pin)
	}
	next := cidr.Addr().Next().Next()
	for _, svc := range d.Services {
		key := serviceKey(svc)
		if svc.Spec.ClusterIP != "" || s.ServiceIPs[key] != "" {
			continue
		}
		for cidr.Contains(next) && (held[next] || pins[next] != "") {
			next = next.Next()
		}
		if !cidr.Contains(next) {
			break // the range is full; the rest stay without an IP
		}
		held[next] = true
		set(key, next.String())
	}
	return cmds
}

func serviceKey(svc *objects.Service) string { return svc.Metadata.Namespace + "/" + svc.Metadata.Name }

// The node port range, kube-apiserver's --service-node-port-range default.
const (
	minNodePort = 30000
	maxNodePort = 32767
)

// NodePorts gives a node port to every port of a NodePort Service, and of a
// LoadBalancer unless allocateLoadBalancerNodePorts is false, and releases
// the node ports of ports that are gone, in ServiceIPs' order: releases,
// then pinned nodePorts, then the lowest free number no Service pins. Ports
// of one Service with one number (53/UDP and 53/TCP) get one node port, as
// Kubernetes allocates them. A port keeps its node port across commits.
func NodePorts(s *state.State, d *Desired) []state.Command {
	var cmds []state.Command
	set := func(p state.ServiceNodePort) { cmds = append(cmds, state.NewCommand(state.CmdSetNodePort, p)) }
	var wants []state.ServiceNodePort // NodePort: the pinned number, or 0
	wanted := map[string]int32{}
	pins := map[int32]string{} // pinned number -> the first Service pinning it
	for _, svc := range d.Services {
		if svc.Spec.Type != "NodePort" && svc.Spec.Type != "LoadBalancer" {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.NodePort == 0 && !svc.Spec.AllocatesNodePorts() {
				continue
			}
			w := state.ServiceNodePort{Service: serviceKey(svc), Protocol: sp.Protocol, Port: sp.Port, NodePort: sp.NodePort}
			wants = append(wants, w)
			wanted[w.Key()] = w.NodePort
			if w.NodePort != 0 && pins[w.NodePort] == "" {
				pins[w.NodePort] = w.Service
			}
		}
	}
	held := map[int32]bool{}     // numbers of ports that stay
	shared := map[string]int32{} // Service/port number -> its node port
	share := func(p state.ServiceNodePort) { shared[fmt.Sprintf("%s/%d", p.Service, p.Port)] = p.NodePort }
	for _, k := range slices.Sorted(maps.Keys(s.NodePorts)) {
		p := s.NodePorts[k]
		switch pin, ok := wanted[k]; {
		case !ok:
			p.NodePort = 0
			set(p)
		case pin == 0 || pin == p.NodePort:
			held[p.NodePort] = true
			share(p)
		} // and one pinned to another number now is set below
	}
	for _, w := range wants {
		if w.NodePort != 0 && s.NodePorts[w.Key()].NodePort != w.NodePort {
			held[w.NodePort] = true
			share(w)
			set(w)
		}
	}
	next := int32(minNodePort)
	for _, w := range wants {
		if w.NodePort != 0 || s.NodePorts[w.Key()].NodePort != 0 {
			continue
		}
		if w.NodePort = shared[fmt.Sprintf("%s/%d", w.Service, w.Port)]; w.NodePort == 0 {
			for next <= maxNodePort && (held[next] || pins[next] != "") {
				next++
			}
			if next > maxNodePort {
				break // the range is full; the rest stay without one
			}
			w.NodePort = next
			held[next] = true
			share(w)
		}
		set(w)
	}
	return cmds
}

// ServiceView is a Service as a node's proxy renders it and the DNS
// answers it: its ClusterIP, how it is reached, and per port the endpoints.
type ServiceView struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	// ClusterIP is "None" for a headless Service: nothing is proxied, its
	// endpoints are for DNS.
	ClusterIP string `json:"clusterIP"`
	// Ingress are a LoadBalancer's addresses, as k3s's ServiceLB reports
	// them in status.loadBalancer.ingress: every ready node's, or with
	// externalTrafficPolicy Local those of ready nodes with an endpoint.
	Ingress []string `json:"ingress,omitempty"`
	// AffinityTimeout (seconds) keeps a client with its endpoint
	// (sessionAffinity ClientIP); 0: none.
	AffinityTimeout int32 `json:"affinityTimeoutSeconds,omitempty"`
	// InternalTrafficPolicy and ExternalTrafficPolicy are Local, or
	// Cluster when empty.
	InternalTrafficPolicy    string     `json:"internalTrafficPolicy,omitempty"`
	ExternalTrafficPolicy    string     `json:"externalTrafficPolicy,omitempty"`
	LoadBalancerSourceRanges []string   `json:"loadBalancerSourceRanges,omitempty"`
	Ports                    []PortView `json:"ports"`
	// ExternalName, for a Service of that type, is the name it aliases;
	// it has no ClusterIP.
	ExternalName string `json:"externalName,omitempty"`
}

// PortView is one port of a ServiceView.
type PortView struct {
	Name      string     `json:"name,omitempty"`
	Protocol  string     `json:"protocol"`
	Port      int32      `json:"port"`
	NodePort  int32      `json:"nodePort,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is a pod serving one service port: a ready one, or with
// publishNotReadyAddresses any running one. The pod is in the Service's
// namespace.
type Endpoint struct {
	IP   string `json:"ip"`
	Port int32  `json:"port"`
	Pod  string `json:"pod"`
	Node string `json:"node"`
	// Hostname is the pod's spec.hostname when its spec.subdomain names
	// this Service: the DNS name hostname.service.namespace.svc.<domain>.
	Hostname string `json:"hostname,omitempty"`
}

// Services computes what every node's proxy should render: for each Service
// with a ClusterIP (or headless), the pods its selector matches that are
// ready (or running, with publishNotReadyAddresses), each at the port
// targetPort names (a number, or a container port's name).
func Services(s *state.State, d *Desired) []ServiceView {
	var out []ServiceView
	for _, svc := range d.Services {
		if svc.Spec.Type == "ExternalName" {
			// A name for another name: nothing is proxied, DNS answers a CNAME.
			out = append(out, ServiceView{Namespace: svc.Metadata.Namespace, Name: svc.Metadata.Name, Type: svc.Spec.Type, ExternalName: svc.Spec.ExternalName})
			continue
		}
		key := serviceKey(svc)
		ip := s.ServiceIPs[key]
		if svc.Spec.Headless() {
			ip = "None"
		}
		if ip == "" {
			continue
		}
		v := ServiceView{Namespace: svc.Metadata.Namespace, Name: svc.Metadata.Name, Type: svc.Spec.Type, ClusterIP: ip,
			AffinityTimeout: svc.Spec.AffinityTimeout(), InternalTrafficPolicy: svc.Spec.InternalTrafficPolicy,
			ExternalTrafficPolicy: svc.Spec.ExternalTrafficPolicy, LoadBalancerSourceRanges: svc.Spec.LoadBalancerSourceRanges}
		var pods []*state.Pod
		if len(svc.Spec.Selector) > 0 {
			for p := range s.Pods.All() {
				if p.Namespace == svc.Metadata.Namespace && !p.Terminating && p.Status.IP != "" &&
					(p.Status.Ready || svc.Spec.PublishNotReadyAddresses && p.Status.Phase == state.PodRunning) &&
					selects(svc.Spec.Selector, p.Labels) {
					pods = append(pods, p)
				}
			}
		}
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		for _, sp := range svc.Spec.Ports {
			pv := PortView{Name: sp.Name, Protocol: sp.Protocol, Port: sp.Port, NodePort: s.NodePorts[state.NodePortKey(key, sp.Protocol, sp.Port)].NodePort}
			for _, p := range pods {
				if port, ok := targetPort(sp, &p.Spec); ok {
					e := Endpoint{IP: p.Status.IP, Port: port, Pod: p.Name, Node: p.NodeName}
					if p.Spec.Subdomain == svc.Metadata.Name {
						e.Hostname = p.Spec.Hostname // as the endpoints controller names it
					}
					pv.Endpoints = append(pv.Endpoints, e)
				}
			}
			v.Ports = append(v.Ports, pv)
		}
		if svc.Spec.Type == "LoadBalancer" {
			v.Ingress = ingress(s, pods, svc.Spec.ExternalTrafficPolicy == "Local")
		}
		out = append(out, v)
	}
	return out
}

// ingress lists the addresses of the ready nodes, or with local of those
// that run one of pods, in address order.
func ingress(s *state.State, pods []*state.Pod, local bool) []string {
	hosting := map[string]bool{}
	for _, p := range pods {
		hosting[p.NodeName] = true
	}
	var addrs []netip.Addr
	for _, n := range s.Nodes {
		if a, ok := nodeIP(n); ok && n.Ready && (!local || hosting[n.Name]) {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// nodeIP is the IPv4 address of the host:port a node registered with, if
// it is one others reach it at: not a host name, nor loopback (`berth up`
// registers at 127.0.0.1 unless --agent-advertise says otherwise, and a
// DNAT from 127/8 would need route_localnet).
func nodeIP(n *state.Node) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(n.Address)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil && a.Is4() && !a.IsLoopback()
}

// targetPort resolves a service port's target on one pod: absent means the
// service port itself; a name is looked up among the pod's container ports.
func targetPort(sp objects.ServicePort, spec *objects.PodSpec) (int32, bool) {
	if sp.TargetPort == nil {
		return sp.Port, true
	}
	if !sp.TargetPort.IsString {
		return sp.TargetPort.Int, true
	}
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == sp.TargetPort.Str && cp.Protocol == sp.Protocol {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

func (v ServiceView) String() string {
	return fmt.Sprintf("%s/%s %s", v.Namespace, v.Name, v.ClusterIP)
}
