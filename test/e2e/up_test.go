// Package e2e holds berth's end-to-end tests: the berth binary, run as a
// user runs it, against a real containerd, CNI, nftables and git.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/test/harness"
)

var env harness.Env

func TestMain(m *testing.M) { os.Exit(harness.Main(m, &env)) }

const (
	replicas       = 3
	maxUnavailable = 1
	rolloutWait    = 2 * time.Minute
)

func helloApp(version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: %d}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: hello
          image: %s
          env:
            - name: VERSION
              value: %q
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: http
`, replicas, maxUnavailable, env.Hello, version)
}

// TestUpEndToEnd walks the product's spine with the berth binary: a commit
// becomes containers reachable through a ClusterIP; a change rolls out
// without dropping below replicas-maxUnavailable ready pods; git revert
// rolls back to the same rollout; a bad commit is rejected while the pods
// stay; an agent killed and restarted adopts its containers.
func TestUpEndToEnd(t *testing.T) {
	c := env.NewCluster(t, map[string]string{"app.yaml": helloApp("1")})

	// Up: three containers in containerd, all reached through the ClusterIP.
	c.Eventually("3 pods ready", rolloutWait, func() error { return readyVersion(c, "1", replicas) })
	if n := len(c.Tasks()); n != replicas {
		t.Fatalf("%d running containers in containerd, want %d", n, replicas)
	}
	ip := c.ClusterIP("shop", "web")
	c.Eventually("the ClusterIP reaches every pod", time.Minute, func() error { return servedBy(ip, "1", replicas) })
	firstHash := c.DeploymentPods("shop", "web")[0].TemplateHash

	// berth logs: the master relays the container's log from the agent.
	pod := c.DeploymentPods("shop", "web")[0].Name
	if out, err := c.Berth("logs", "shop/"+pod); err != nil || !strings.Contains(out, "hello: listening") || !strings.Contains(out, pod) {
		t.Errorf("berth logs shop/%s: %v\n%s", pod, err, out)
	}
	if out, err := c.Berth("logs", "shop/no-such-pod"); err == nil || !strings.Contains(out, "no pod shop/no-such-pod") {
		t.Errorf("berth logs of an unknown pod: %v\n%s", err, out)
	}

	// A change of the env var: a rolling update that keeps availability.
	watch := watchAvailability(c, "shop", "web")
	c.Write(map[string]string{"app.yaml": helloApp("2")})
	c.Commit("version 2")
	c.Eventually("rollout to version 2", rolloutWait, func() error { return readyVersion(c, "2", replicas) })
	c.Eventually("answers from version 2 only", time.Minute, func() error { return servedBy(ip, "2", replicas) })
	low := watch()
	t.Logf("rolling update: at least %d of %d pods ready throughout", low, replicas)
	if low < replicas-maxUnavailable {
		t.Fatalf("ready pods fell to %d during the rollout; want at least %d", low, replicas-maxUnavailable)
	}

	// git revert: back to version 1, with the first rollout's template hash.
	c.Git("revert", "--no-edit", "HEAD")
	c.Webhook()
	c.Eventually("rollback to version 1", rolloutWait, func() error { return readyVersion(c, "1", replicas) })
	c.Eventually("answers from version 1 only", time.Minute, func() error { return servedBy(ip, "1", replicas) })
	if h := c.DeploymentPods("shop", "web")[0].TemplateHash; h != firstHash {
		t.Errorf("after revert the template hash is %s, want the first rollout's %s", h, firstHash)
	}

	// An invalid commit is rejected with file:line:col; the pods stay.
	before := podNames(c.DeploymentPods("shop", "web"))
	c.Write(map[string]string{"app.yaml": strings.Replace(helloApp("1"), "replicas: 3", `replicas: "three"`, 1)})
	bad := c.Commit("a typo")
	c.Eventually("the bad commit is rejected, with file:line:col", time.Minute, func() error {
		out, err := c.Berth("get", "revisions")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		_, after, found := strings.Cut(out, bad[:10])
		if !found || !strings.Contains(strings.SplitN(after, "\n", 2)[0], "rejected") {
			return fmt.Errorf("no rejected revision %s in:\n%s", bad[:10], out)
		}
		if !strings.Contains(after, "app.yaml:12:13: error: spec.replicas") {
			return fmt.Errorf("revision %s does not say app.yaml:12:13: error: spec.replicas:\n%s", bad[:10], out)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // a wrong controller would act on the bad commit by now
	if after := podNames(c.DeploymentPods("shop", "web")); !slices.Equal(before, after) {
		t.Fatalf("pods changed after a rejected commit: %v -> %v", before, after)
	}
	if err := servedBy(ip, "1", replicas); err != nil {
		t.Fatal(err)
	}

	// The agent killed (with berth up around it) and started again: the
	// same containers run, none duplicated.
	running := c.Tasks()
	c.Kill()
	c.Start()
	c.Eventually("the agent reports the pods again", time.Minute, func() error { return readyVersion(c, "1", replicas) })
	time.Sleep(3 * time.Second) // time for a wrong agent to start duplicates
	if again := c.Tasks(); !maps.Equal(running, again) {
		t.Fatalf("containers after the agent's restart differ:\nbefore %v\nafter  %v", running, again)
	}
	if err := servedBy(ip, "1", replicas); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput: an image that cannot be pulled and a command that is not
// in the image each leave their pod in back-off with Kubernetes' reason,
// while the agent keeps serving the healthy pods; the API refuses a wrong
// token and a malformed body.
func TestBadInput(t *testing.T) {
	broken := func(name, image, command string) string {
		return fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers:
        - name: main
          image: %s
          command: [%q]
`, name, name, name, image, command)
	}
	c := env.NewCluster(t, map[string]string{
		"app.yaml":    helloApp("1"),
		"broken.yaml": broken("nopull", env.Registry.Host()+"/berth/no-such-image:1", "/hello") + broken("crash", env.Hello, "/no/such/binary"),
	})
	c.Eventually("the healthy pods are ready", rolloutWait, func() error { return readyVersion(c, "1", replicas) })
	ip := c.ClusterIP("shop", "web")

	reason := func(deployment string) (state.PodStatus, error) {
		pods := c.DeploymentPods("shop", deployment)
		if len(pods) != 1 {
			return state.PodStatus{}, fmt.Errorf("%d pods", len(pods))
		}
		return pods[0].Status, nil
	}
	c.Eventually("ImagePullBackOff", time.Minute, func() error {
		st, err := reason("nopull")
		if err == nil && st.Reason != "ImagePullBackOff" {
			err = fmt.Errorf("reason %q (%s)", st.Reason, st.Message)
		}
		return err
	})
	c.Eventually("CrashLoopBackOff", time.Minute, func() error {
		st, err := reason("crash")
		if err == nil && st.Reason != "CrashLoopBackOff" {
			err = fmt.Errorf("reason %q (%s)", st.Reason, st.Message)
		}
		return err
	})
	// Back-off, not a tight loop: the kubelet's 10 s doubling allows at
	// most 3 restarts in the first 20 s (at 0 s, 10 s, 30 s...).
	st, _ := reason("crash")
	time.Sleep(10 * time.Second)
	st2, _ := reason("crash")
	if st2.Restarts > st.Restarts+1 {
		t.Errorf("crashing container restarted %d times in 10 s; want back-off", st2.Restarts-st.Restarts)
	}
	if !strings.Contains(st2.Message, "no/such/binary") {
		t.Errorf("crash-loop message does not name the missing command: %q", st2.Message)
	}
	if err := servedBy(ip, "1", replicas); err != nil {
		t.Fatalf("healthy pods stopped serving next to broken ones: %v", err)
	}

	// The API: a wrong token is 401, a malformed body 400 with a message.
	var ae *api.Error
	_, err := api.NewClient(c.APIURL, "wrongg.0123456789abcdef", api.WithHTTPClient(c.HTTP)).Status(context.Background())
	if !errors.As(err, &ae) || ae.Code != http.StatusUnauthorized {
		t.Errorf("wrong token: %v, want 401", err)
	}
	req, _ := http.NewRequest(http.MethodPost, c.APIURL+"/v1/nodes", strings.NewReader(`{"name": 5`))
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed body: %s, want 400", resp.Status)
	}
}

// readyVersion checks that the Deployment shop/web has n pods, all ready
// and all of the template with VERSION=version.
func readyVersion(c *harness.Cluster, version string, n int) error {
	pods := c.DeploymentPods("shop", "web")
	var ready int
	for _, p := range pods {
		v := p.Spec.Containers[0].Env[0].Value
		if v != version {
			return fmt.Errorf("pod %s has version %s", p.Name, v)
		}
		if p.Status.Ready {
			ready++
		}
	}
	if len(pods) != n || ready != n {
		return fmt.Errorf("%d pods, %d ready; want %d ready", len(pods), ready, n)
	}
	for _, p := range c.Pods() {
		if p.Deployment == "web" && p.Terminating {
			return fmt.Errorf("pod %s is still terminating", p.Name)
		}
	}
	return nil
}

// servedBy sends requests to the Service until n distinct pods answered,
// and fails on any answer from another version.
func servedBy(ip, version string, n int) error {
	seen := map[string]bool{}
	for range 60 {
		body, err := harness.Ask("http://" + ip + "/")
		if err != nil {
			return err
		}
		pod, v, _ := strings.Cut(body, " ")
		if v != version {
			return fmt.Errorf("answer %q, want version %s", body, version)
		}
		if seen[pod] = true; len(seen) == n {
			return nil
		}
	}
	return fmt.Errorf("60 requests reached %d pods (%v), want %d", len(seen), slices.Sorted(maps.Keys(seen)), n)
}

// watchAvailability samples the Deployment's ready, non-terminating pods
// from the masters' state until the returned func is called, which gives
// the lowest count seen.
func watchAvailability(c *harness.Cluster, namespace, name string) func() int {
	var (
		mu  sync.Mutex
		low = 1 << 30
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var index uint64
		for ctx.Err() == nil {
			pods, idx, err := c.Client.Pods(ctx, "", &api.Watch{Index: index, Wait: 5 * time.Second})
			if err != nil {
				continue
			}
			index = idx
			ready := 0
			for _, p := range pods {
				if p.Namespace == namespace && p.Deployment == name && p.Status.Ready && !p.Terminating {
					ready++
				}
			}
			mu.Lock()
			low = min(low, ready)
			mu.Unlock()
		}
	}()
	return func() int {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return low
	}
}

func podNames(pods []state.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}
