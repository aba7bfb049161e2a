package reconcile

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/berth/berth/appliance/store"
	"github.com/berth/berth/schemas"
)

// DefaultServiceCIDR is Kubernetes' usual service range.
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")

// ServiceIPs gives every Service of the revision a ClusterIP (its
// spec.clusterIP when set, else the lowest free address of cidr past the
// network address and .1) and releases the IPs of Services that are gone.
func ServiceIPs(s *store.State, d *Desired, cidr netip.Prefix) []store.Command {
	var cmds []store.Command
	taken := map[netip.Addr]bool{}
	for _, ip := range s.ServiceIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			taken[a] = true
		}
	}
	wanted := map[string]bool{}
	for _, svc := range d.Services {
		key := svc.Metadata.Namespace + "/" + svc.Metadata.Name
		wanted[key] = true
		have := s.ServiceIPs[key]
		if svc.Spec.ClusterIP != "" && have != svc.Spec.ClusterIP {
			cmds = append(cmds, store.NewCommand(store.CmdSetServiceIP, store.ServiceIP{Key: key, IP: svc.Spec.ClusterIP}))
			continue
		}
		if have != "" {
			continue
		}
		ip := cidr.Addr().Next().Next()
		for taken[ip] && cidr.Contains(ip) {
			ip = ip.Next()
		}
		if !cidr.Contains(ip) {
			continue // the range is full; the Service stays without an IP
		}
		taken[ip] = true
		cmds = append(cmds, store.NewCommand(store.CmdSetServiceIP, store.ServiceIP{Key: key, IP: ip.String()}))
	}
	keys := make([]string, 0, len(s.ServiceIPs))
	for k := range s.ServiceIPs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !wanted[k] {
			cmds = append(cmds, store.NewCommand(store.CmdSetServiceIP, store.ServiceIP{Key: k}))
		}
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
func Services(s *store.State, d *Desired) []ServiceView {
	var out []ServiceView
	for _, svc := range d.Services {
		ip := s.ServiceIPs[svc.Metadata.Namespace+"/"+svc.Metadata.Name]
		if ip == "" {
			continue
		}
		v := ServiceView{Namespace: svc.Metadata.Namespace, Name: svc.Metadata.Name, Type: svc.Spec.Type, ClusterIP: ip}
		var pods []*store.Pod
		if len(svc.Spec.Selector) > 0 {
			for _, p := range s.Pods {
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
func targetPort(sp schemas.ServicePort, spec *schemas.PodSpec) (int32, bool) {
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
