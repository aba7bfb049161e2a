package proxy

import (
	"fmt"
	"testing"
	"time"
)

// benchServices is n services of one TCP port each, every one with three
// endpoints and a NodePort.
func benchServices(n int) []Service {
	svcs := make([]Service, n)
	for i := range svcs {
		svcs[i] = Service{
			Namespace: "bench", Name: fmt.Sprintf("svc-%d", i),
			ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
			Ports: []ServicePort{{Name: "http", Protocol: "TCP", Port: 80, NodePort: int32(30000 + i),
				Endpoints: []Endpoint{
					{IP: fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), Port: 8080},
					{IP: fmt.Sprintf("10.245.%d.%d", i/250, i%250+1), Port: 8080},
					{IP: fmt.Sprintf("10.246.%d.%d", i/250, i%250+1), Port: 8080},
				}}},
		}
	}
	return svcs
}

// BenchmarkSync is one full-table Sync of 1,000 services x 3 endpoints in a
// fresh namespace: the cost of every endpoint change on a node that size.
func BenchmarkSync(b *testing.B) { benchSync(b, benchServices(1000)) }

// BenchmarkSyncAffinityLocal is BenchmarkSync with every feature that adds
// rules: ClientIP affinity (a set per endpoint, read back before each
// Sync), both traffic policies Local with one local endpoint, and two
// LoadBalancer addresses.
func BenchmarkSyncAffinityLocal(b *testing.B) {
	svcs := benchServices(1000)
	for i := range svcs {
		s := &svcs[i]
		s.Affinity, s.InternalLocal, s.ExternalLocal = 3*time.Hour, true, true
		s.LoadBalancer = []string{"192.168.0.1", "192.168.0.2"}
		s.Ports[0].Port = int32(1000 + i) // one LoadBalancer port each
		s.Ports[0].Endpoints[0].Local = true
	}
	benchSync(b, svcs)
}

func benchSync(b *testing.B, svcs []Service) {
	requireRoot(b)
	ns := "bpx-" + randHex(3) + "-bench"
	newNS(b, ns)
	p, err := New(WithTableName("berth-bench"), WithNetNS(nsPath(ns)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if err := p.Sync(svcs); err != nil { // the first Sync creates, later ones replace
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := p.Sync(svcs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/sync")
}
