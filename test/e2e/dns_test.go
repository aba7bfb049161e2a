package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/test/harness"
)

// dnsApp is two hello pods behind a Service with a ClusterIP (web) and a
// headless one (peers) whose readiness a test can fail (/unready).
func dnsApp(image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: hello
        image: %s
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
`, image)
}

// TestClusterDNS: from inside pods on either node, a Service's short name,
// name.namespace and FQDN resolve to its ClusterIP and a connection by
// name reaches a pod; a headless Service resolves to its ready pods and a
// pod that turns unready leaves the answer; SRV carries the named port; an
// unknown name of the cluster is NXDOMAIN and another name is forwarded to
// the node's resolver (one this test runs); an agent killed and started
// again answers from the state; a pod started after the Service has its
// variables.
func TestClusterDNS(t *testing.T) {
	tag, subnet := fmt.Sprintf("bdn%d", os.Getpid()%100000), "10.251.0"
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+subnet+".1\nsearch corp.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newTwoNodes(t, tag, subnet, "--resolv-conf", resolvConf)
	// On the nodes' network, which exists now.
	upstream := startResolver(t, c.hostIP, map[string]string{"external.test.": "192.0.2.7"})
	c.commit(t, "app.yaml", dnsApp(c.image), "web and peers")
	pods := c.readyPods(t, 2)
	svcs, _, err := c.admin.Services(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var clusterIP string
	for _, s := range svcs {
		if s.Name == "web" {
			clusterIP = s.ClusterIP
		}
	}
	podIPs := []string{pods[0].Status.IP, pods[1].Status.IP}
	slices.Sort(podIPs)

	// ask runs a request in pod p (through its hello server, from its
	// node's namespace) until the answer has want.
	ask := func(p int, what, path, want string) {
		t.Helper()
		pod := pods[p]
		harness.Eventually(t, fmt.Sprintf("%s from pod %s on %s", what, pod.Name, pod.NodeName), 30*time.Second, func() error {
			body, err := getFrom(c.ns[pod.NodeName], pod.Status.IP+":8080", path)
			if err != nil {
				return err
			}
			if !strings.Contains(body, want) {
				return fmt.Errorf("answer %q, want %q", body, want)
			}
			return nil
		})
	}
	for p := range pods {
		for _, name := range []string{"web", "web.default", "web.default.svc", "web.default.svc.cluster.local"} {
			ask(p, name, "/lookup?name="+name, clusterIP)
		}
		ask(p, "a connection to web:80", "/dial?addr=web:80", "web-")
		ask(p, "the headless peers", "/lookup?name=peers", strings.Join(podIPs, " "))
		ask(p, "SRV of web", "/srv?service=http&proto=tcp&name=web", "web.default.svc.cluster.local.:80")
		ask(p, "an unknown name of the cluster", "/lookup?name=nope.default.svc.cluster.local", "no such host")
		ask(p, "a name outside the cluster", "/lookup?name=external.test", "192.0.2.7")
	}
	if upstream.Load() == 0 {
		t.Error("the node's resolver was never asked")
	}

	// One pod turns unready: it leaves the headless answer. The time it
	// takes spans the readiness probe (1 s period), the status report, the
	// watch and the DNS update.
	unready := time.Now()
	if _, err := getFrom(c.ns[pods[0].NodeName], pods[0].Status.IP+":8080", "/unready"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, "peers without "+pods[0].Name, 30*time.Second, func() error {
		body, err := getFrom(c.ns[pods[1].NodeName], pods[1].Status.IP+":8080", "/lookup?name=peers")
		if err != nil {
			return err
		}
		if body != pods[1].Status.IP {
			return fmt.Errorf("peers is %q, want only %s", body, pods[1].Status.IP)
		}
		return nil
	})
	t.Logf("an unready pod left the headless answer %s after it failed its probe's endpoint", time.Since(unready).Round(10*time.Millisecond))

	// An agent killed and started again rebuilds its records from the
	// state: its pods keep resolving.
	n := pods[1].NodeName
	c.restart[n]()
	ask(1, "web after the agent's restart", "/lookup?name=web", clusterIP)

	// A pod started once the Service exists has its variables (as with
	// the kubelet, the first pods came up with it and may lack them).
	if err := c.admin.DeletePod(context.Background(), "default", pods[0].Name); err != nil {
		t.Fatal(err)
	}
	var fresh state.Pod
	harness.Eventually(t, "a pod in place of "+pods[0].Name, 2*time.Minute, func() error {
		all, _, err := c.admin.Pods(context.Background(), "", nil)
		if err != nil {
			return err
		}
		for _, p := range all {
			if p.Status.Ready && p.Name != pods[0].Name && p.Name != pods[1].Name {
				fresh = p
				return nil
			}
		}
		return fmt.Errorf("no new ready pod")
	})
	body, err := getFrom(c.ns[fresh.NodeName], fresh.Status.IP+":8080", "/env?name=WEB_SERVICE_HOST")
	if err != nil || body != clusterIP {
		t.Errorf("WEB_SERVICE_HOST in a new pod: %q %v, want %s", body, err, clusterIP)
	}
}

// startResolver answers A queries for names on ip:53 (UDP), as the host's
// resolver a node forwards to, and counts the queries.
func startResolver(t *testing.T, ip string, names map[string]string) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "53"))
	if err != nil {
		t.Fatalf("the test's resolver: %v", err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if a, ok := names[strings.ToLower(q.Name)]; ok && q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.ParseIP(a)})
		} else if !ok {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return &n
}
