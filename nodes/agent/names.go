package agent

import (
	"fmt"
	"strings"

	"github.com/berth/berth/nodes/dns"
	"github.com/berth/berth/reconcile"
)

// DNSRecords turns the Services as the masters serve them into the node's
// DNS records: each with a ClusterIP by its name; a headless one by its
// endpoints, each once, with its own numbers for the named ports.
func DNSRecords(views []reconcile.ServiceView) []dns.Service {
	out := make([]dns.Service, 0, len(views))
	for _, v := range views {
		s := dns.Service{Namespace: v.Namespace, Name: v.Name, ClusterIP: v.ClusterIP, ExternalName: v.ExternalName}
		byIP := map[string]int{}
		for _, p := range v.Ports {
			s.Ports = append(s.Ports, dns.Port{Name: p.Name, Protocol: p.Protocol, Port: p.Port})
			if v.ClusterIP != "None" {
				continue
			}
			for _, e := range p.Endpoints {
				i, ok := byIP[e.IP]
				if !ok {
					i = len(s.Endpoints)
					byIP[e.IP] = i
					s.Endpoints = append(s.Endpoints, dns.Endpoint{IP: e.IP, Hostname: e.Hostname})
				}
				if p.Name != "" {
					s.Endpoints[i].Ports = append(s.Endpoints[i].Ports, dns.Port{Name: p.Name, Protocol: p.Protocol, Port: e.Port})
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// serviceEnv is what the kubelet gives a pod for each Service of its
// namespace that has a ClusterIP (enableServiceLinks): NAME_SERVICE_HOST,
// NAME_SERVICE_PORT, NAME_SERVICE_PORT_<PORT NAME>, and the Docker link
// variables NAME_PORT and NAME_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR].
func serviceEnv(views []reconcile.ServiceView, namespace string) []string {
	var env []string
	for _, v := range views {
		if v.Namespace != namespace || v.ClusterIP == "None" || v.ExternalName != "" || len(v.Ports) == 0 {
			continue
		}
		name := linkName(v.Name)
		first := v.Ports[0]
		env = append(env, name+"_SERVICE_HOST="+v.ClusterIP, fmt.Sprintf("%s_SERVICE_PORT=%d", name, first.Port))
		for _, p := range v.Ports {
			if p.Name != "" {
				env = append(env, fmt.Sprintf("%s_SERVICE_PORT_%s=%d", name, linkName(p.Name), p.Port))
			}
		}
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", name, strings.ToLower(first.Protocol), v.ClusterIP, first.Port))
		for _, p := range v.Ports {
			proto := strings.ToLower(p.Protocol)
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(proto))
			env = append(env, fmt.Sprintf("%s=%s://%s:%d", prefix, proto, v.ClusterIP, p.Port),
				prefix+"_PROTO="+proto, fmt.Sprintf("%s_PORT=%d", prefix, p.Port), prefix+"_ADDR="+v.ClusterIP)
		}
	}
	return env
}

// linkName is a Service or port name as a variable name: upper case, '-'
// as '_'.
func linkName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
