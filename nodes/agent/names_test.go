package agent

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berth/berth/nodes/dns"
	"github.com/berth/berth/reconcile"
)

// A Service's variables are the kubelet's, names and values alike (the
// Kubernetes documentation's redis-primary example).
func TestServiceEnv(t *testing.T) {
	views := []reconcile.ServiceView{
		{Namespace: "shop", Name: "redis-primary", ClusterIP: "10.0.0.11", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 6379}}},
		{Namespace: "shop", Name: "web", ClusterIP: "10.0.0.12", Ports: []reconcile.PortView{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "dns-udp", Protocol: "UDP", Port: 53}}},
		{Namespace: "shop", Name: "peers", ClusterIP: "None", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 7000}}},
		{Namespace: "other", Name: "db", ClusterIP: "10.0.0.13", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 5432}}},
	}
	want := []string{
		"REDIS_PRIMARY_SERVICE_HOST=10.0.0.11", "REDIS_PRIMARY_SERVICE_PORT=6379",
		"REDIS_PRIMARY_PORT=tcp://10.0.0.11:6379", "REDIS_PRIMARY_PORT_6379_TCP=tcp://10.0.0.11:6379",
		"REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp", "REDIS_PRIMARY_PORT_6379_TCP_PORT=6379", "REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.0.0.11",
		"WEB_SERVICE_HOST=10.0.0.12", "WEB_SERVICE_PORT=80", "WEB_SERVICE_PORT_HTTP=80", "WEB_SERVICE_PORT_DNS_UDP=53",
		"WEB_PORT=tcp://10.0.0.12:80", "WEB_PORT_80_TCP=tcp://10.0.0.12:80", "WEB_PORT_80_TCP_PROTO=tcp", "WEB_PORT_80_TCP_PORT=80", "WEB_PORT_80_TCP_ADDR=10.0.0.12",
		"WEB_PORT_53_UDP=udp://10.0.0.12:53", "WEB_PORT_53_UDP_PROTO=udp", "WEB_PORT_53_UDP_PORT=53", "WEB_PORT_53_UDP_ADDR=10.0.0.12",
	}
	if got := serviceEnv(views, "shop"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A headless Service's endpoints become its records, each address once
// with its own numbers for the named ports; a Service with a ClusterIP is
// answered by that address alone.
func TestDNSRecords(t *testing.T) {
	views := []reconcile.ServiceView{
		{Namespace: "db", Name: "peers", ClusterIP: "None", Ports: []reconcile.PortView{
			{Name: "client", Protocol: "TCP", Port: 6379, Endpoints: []reconcile.Endpoint{{IP: "10.244.0.5", Port: 6379, Hostname: "redis-0"}, {IP: "10.244.1.7", Port: 6379}}},
			{Name: "gossip", Protocol: "TCP", Port: 16379, Endpoints: []reconcile.Endpoint{{IP: "10.244.0.5", Port: 16379, Hostname: "redis-0"}}},
		}},
		{Namespace: "db", Name: "web", ClusterIP: "10.96.0.9", Ports: []reconcile.PortView{{Name: "http", Protocol: "TCP", Port: 80,
			Endpoints: []reconcile.Endpoint{{IP: "10.244.0.8", Port: 8080}}}}},
	}
	want := []dns.Service{
		{Namespace: "db", Name: "peers", ClusterIP: "None",
			Ports: []dns.Port{{Name: "client", Protocol: "TCP", Port: 6379}, {Name: "gossip", Protocol: "TCP", Port: 16379}},
			Endpoints: []dns.Endpoint{
				{IP: "10.244.0.5", Hostname: "redis-0", Ports: []dns.Port{{Name: "client", Protocol: "TCP", Port: 6379}, {Name: "gossip", Protocol: "TCP", Port: 16379}}},
				{IP: "10.244.1.7", Ports: []dns.Port{{Name: "client", Protocol: "TCP", Port: 6379}}},
			}},
		{Namespace: "db", Name: "web", ClusterIP: "10.96.0.9", Ports: []dns.Port{{Name: "http", Protocol: "TCP", Port: 80}}},
	}
	if got := DNSRecords(views); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
