package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/berth/berth/reconcile"
)

// EXTERNAL-IP is a LoadBalancer's ingress, <pending> without a ready node,
// and <none> for the other types, as kubectl prints it.
func TestGetServicesExternalIP(t *testing.T) {
	var out bytes.Buffer
	err := printItems(&out, "services", "", []apiService{
		{Namespace: "shop", Name: "lb", Type: "LoadBalancer", ClusterIP: "10.96.0.5", Ingress: []string{"10.0.0.2", "10.0.0.3"},
			Ports: []reconcile.PortView{{Protocol: "TCP", Port: 80, NodePort: 30080}}},
		{Namespace: "shop", Name: "waiting", Type: "LoadBalancer", ClusterIP: "10.96.0.6", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 81}}},
		{Namespace: "shop", Name: "db", Type: "ClusterIP", ClusterIP: "None", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 5432,
			Endpoints: []reconcile.Endpoint{{IP: "10.244.0.5", Port: 5432, Pod: "db-0", Node: "n1"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"NAMESPACE NAME TYPE CLUSTER-IP EXTERNAL-IP PORTS ENDPOINTS",
		"shop lb LoadBalancer 10.96.0.5 10.0.0.2,10.0.0.3 80:30080/TCP 0",
		"shop waiting LoadBalancer 10.96.0.6 <pending> 81/TCP 0",
		"shop db ClusterIP None <none> 5432/TCP 1",
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant columns\n%s", out.String(), strings.Join(want, "\n"))
	}
}
