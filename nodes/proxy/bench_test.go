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
					{fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), 8080},
					{fmt.Sprintf("10.245.%d.%d", i/250, i%250+1), 8080},
					{fmt.Sprintf("10.246.%d.%d", i/250, i%250+1), 8080},
				}}},
		}
	}
	return svcs
}

// BenchmarkSync is one full-table Sync of 1,000 services x 3 endpoints in a
// fresh namespace: the cost of every endpoint change on a node that size.
func BenchmarkSync(b *testing.B) {
	requireRoot(b)
	ns := "bpx-" + randHex(3) + "-bench"
	newNS(b, ns)
	p, err := New(WithTableName("berth-bench"), WithNetNS(nsPath(ns)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	svcs := benchServices(1000)
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
