package reconcile

import (
	"fmt"
	"net/netip"
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
		key := svc.Metadata.Namespace + "/" + svc.Metadata.Name
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
		key, pin := svc.Metadata.Namespace+"/"+svc.Metadata.Name, svc.Spec.ClusterIP
		a, err := netip.ParseAddr(pin)
		if err != nil || pins[a] != key || s.ServiceIPs[key] == pin {
			continue // none, invalid or pinned twice (the loader says so), or assigned
		}
		held[a] = true
		set(key, pin)
	}
	next := cidr.Addr().Next().Next()
	for _, svc := range d.Services {
		key := svc.Metadata.Namespace + "/" + svc.Metadata.Name
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

// ServiceView is a Service as a node's proxy renders it: its ClusterIP and,
// per port, the ready endpoints.
type ServiceView struct {
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	ClusterIP string     `json:"clusterIP"`
	Ports     []PortView `json:"ports"`
}

// PortView is one port of a ServiceView.
type PortView struct {
	Name      string     `json:"name,omitempty"`
	Protocol  string     `json:"protocol"`
	Port      int32      `json:"port"`
	NodePort  int32      `json:"nodePort,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is a ready pod's address for one service port.
type Endpoint struct {
	IP   string `json:"ip"`
	Port int32  `json:"port"`
}

// Services computes what every node's proxy should render: for each Service
// with a ClusterIP, the ready, running pods its selector matches, each at
// the port targetPort names (a number, or a container port's name).
func Services(s *state.State, d *Desired) []ServiceView {
	var out []ServiceView
	for _, svc := range d.Services {
		ip := s.ServiceIPs[svc.Metadata.Namespace+"/"+svc.Metadata.Name]
		if ip == "" {
			continue
		}
		v := ServiceView{Namespace: svc.Metadata.Namespace, Name: svc.Metadata.Name, Type: svc.Spec.Type, ClusterIP: ip}
		var pods []*state.Pod
		if len(svc.Spec.Selector) > 0 {
			for p := range s.Pods.All() {
				if p.Namespace == svc.Metadata.Namespace && !p.Terminating && p.Status.Ready && p.Status.IP != "" && selects(svc.Spec.Selector, p.Labels) {
					pods = append(pods, p)
				}
			}
		}
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		for _, sp := range svc.Spec.Ports {
			pv := PortView{Name: sp.Name, Protocol: sp.Protocol, Port: sp.Port, NodePort: sp.NodePort}
			for _, p := range pods {
				if port, ok := targetPort(sp, &p.Spec); ok {
					pv.Endpoints = append(pv.Endpoints, Endpoint{IP: p.Status.IP, Port: port})
				}
			}
			v.Ports = append(v.Ports, pv)
		}
		out = append(out, v)
	}
	return out
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
