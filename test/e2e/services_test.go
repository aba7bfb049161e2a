package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/test/harness"
)

// servicesApp is two replicas of the hello image (one on each node, as
// the scheduler spreads them) behind a Service of each kind.
func servicesApp(image string) string {
	svc := func(name, spec string) string {
		return fmt.Sprintf("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: svc}\nspec:\n  selector: {app: web}\n%s", name, spec)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: svc}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: svc}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: hello
          image: %s
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
`, image) +
		svc("lb", "  type: LoadBalancer\n  ports: [{port: 80, targetPort: http}]\n") +
		svc("np", "  type: NodePort\n  ports: [{port: 80, targetPort: http}]\n") +
		svc("local", "  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{port: 80, targetPort: http}]\n") +
		svc("sticky", "  sessionAffinity: ClientIP\n  ports: [{port: 80, targetPort: http}]\n") +
		svc("db", "  clusterIP: None\n  ports: [{port: 8080}]\n")
}

// TestServices: on two nodes, from this namespace as a client outside the
// cluster, a LoadBalancer answers on each node's address at its port; a
// NodePort Service that names no nodePort gets one, which answers; with
// externalTrafficPolicy Local a node's node port reaches that node's pod
// only, which sees the client's own address. Each node keeps its own
// connections to a ClientIP-affine Service on one pod. A headless
// Service lists its pods and has no rule in any node's table.
func TestServices(t *testing.T) {
	c := newTwoNodes(t, fmt.Sprintf("bsv%d", os.Getpid()%100000), "10.253.0")
	c.commit(t, "app.yaml", servicesApp(c.image), "a Service of each kind")
	podOn := map[string]string{} // node -> its pod
	for _, p := range c.readyPods(t, 2) {
		podOn[p.NodeName] = p.Name
	}
	ctx := context.Background()

	views := map[string]reconcile.ServiceView{}
	harness.Eventually(t, "node ports and the LoadBalancer's addresses", time.Minute, func() error {
		svcs, _, err := c.admin.Services(ctx, nil)
		if err != nil {
			return err
		}
		for _, v := range svcs {
			views[v.Name] = v
		}
		if want := []string{c.ip["n1"], c.ip["n2"]}; !slices.Equal(views["lb"].Ingress, want) {
			return fmt.Errorf("LoadBalancer ingress %v, want %v", views["lb"].Ingress, want)
		}
		for _, name := range []string{"lb", "np", "local"} {
			if np := views[name].Ports[0].NodePort; np < 30000 || np > 32767 {
				return fmt.Errorf("%s: node port %d", name, np)
			}
		}
		return nil
	})

	reaches := func(ns, addr string) { t.Helper(); reachesBoth(t, ns, addr) }
	for _, n := range c.nodes {
		reaches("", c.ip[n]+":80")
		reaches("", fmt.Sprintf("%s:%d", c.ip[n], views["np"].Ports[0].NodePort))
	}

	for _, n := range c.nodes {
		addr := fmt.Sprintf("%s:%d", c.ip[n], views["local"].Ports[0].NodePort)
		want := podOn[n] + " " + c.hostIP
		harness.Eventually(t, "externalTrafficPolicy Local on "+n, time.Minute, func() error {
			for range 20 {
				body, err := getFrom("", addr, "/client")
				if err != nil {
					return err
				}
				if body != want {
					return fmt.Errorf("answer %q, want %q: the node's own pod, seeing this client", body, want)
				}
			}
			return nil
		})
	}

	for _, n := range c.nodes {
		addr := views["sticky"].ClusterIP + ":80"
		harness.Eventually(t, "session affinity from "+n, time.Minute, func() error {
			seen := map[string]int{}
			for range 20 {
				body, err := getFrom(c.ns[n], addr, "/")
				if err != nil {
					return err
				}
				pod, _, _ := strings.Cut(body, " ")
				seen[pod]++
			}
			if len(seen) != 1 {
				return fmt.Errorf("one client reached %v", seen)
			}
			return nil
		})
	}

	db := views["db"]
	if db.ClusterIP != "None" || len(db.Ports[0].Endpoints) != 2 {
		t.Fatalf("headless view %+v", db)
	}
	for _, ep := range db.Ports[0].Endpoints {
		if podOn[ep.Node] != ep.Pod {
			t.Errorf("headless endpoint %+v: pod %s is on %s", ep, ep.Pod, ep.Node)
		}
	}
	for _, n := range c.nodes {
		out, err := exec.Command("ip", "netns", "exec", c.ns[n], "nft", "list", "table", "ip", "berth").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "svc/sticky/") || strings.Contains(string(out), "svc/db/") {
			t.Errorf("%s: the table has sticky's rules and none of the headless db's? %v\n%s", n, err, out)
		}
	}

	out, err := exec.Command(env.Bin, "get", "services", "--config", filepath.Join(c.master.Data, "admin.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("berth get services: %v\n%s", err, out)
	}
	t.Logf("berth get services:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[1] == "lb" && f[4] != c.ip["n1"]+","+c.ip["n2"] {
			t.Errorf("EXTERNAL-IP of lb: %q", f[4])
		}
	}
}
