package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/images"
	"github.com/berth/berth/test/harness"
)

// redisStatefulSet is one Redis (Debian's redis-server) whose data live on
// a local-path claim of its volumeClaimTemplate; version changes the pod
// template, for a rollout.
func redisStatefulSet(image, version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: redis}
spec:
  clusterIP: None
  selector: {app: redis}
  ports: [{name: redis, port: 6379}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis}
spec:
  serviceName: redis
  replicas: 1
  selector: {matchLabels: {app: redis}}
  template:
    metadata:
      labels: {app: redis}
      annotations: {version: %q}
    spec:
      terminationGracePeriodSeconds: 5
      securityContext: {runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534}
      containers:
      - name: redis
        image: %s
        command: [redis-server, --bind, 0.0.0.0, --protected-mode, "no", --dir, /data, --appendonly, "yes", --appendfsync, always]
        ports: [{name: redis, containerPort: 6379}]
        readinessProbe: {tcpSocket: {port: redis}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
`, version, image)
}

// TestStatefulSetKeepsItsData: a StatefulSet of the real redis-server on
// a local-path claim keeps a key it wrote across the deletion of its pod
// and a rollout of a new template; the pod comes back to its claim's node.
func TestStatefulSetKeepsItsData(t *testing.T) {
	built := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		img, err := images.Example(ctx, env.Registry.Ref("berth/redis:7"))
		if err == nil {
			_, err = env.Registry.Push(ctx, "berth/redis:7", img)
		}
		built <- err
	}()
	c := newTwoNodes(t, fmt.Sprintf("bst%d", os.Getpid()%100000), "10.249.0")
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	registry, _, _ := strings.Cut(c.image, "/")
	image := registry + "/berth/redis:7"

	c.commit(t, "redis.yaml", redisStatefulSet(image, "1"), "redis")
	first := c.readyPod(t, "redis-0", nil)
	redis(t, c, first, "SET", "order", "teapot")

	if err := c.admin.DeletePod(context.Background(), "default", "redis-0"); err != nil {
		t.Fatal(err)
	}
	again := c.readyPod(t, "redis-0", func(p state.Pod) bool { return p.Created.After(first.Created) })
	if again.NodeName != first.NodeName {
		t.Errorf("redis-0 came back on %s, its claim is on %s", again.NodeName, first.NodeName)
	}
	if got := redis(t, c, again, "GET", "order"); got != "teapot" {
		t.Fatalf("after the pod's deletion: %q", got)
	}

	c.commit(t, "redis.yaml", redisStatefulSet(image, "2"), "redis, a new template")
	rolled := c.readyPod(t, "redis-0", func(p state.Pod) bool { return p.Annotations["version"] == "2" })
	if got := redis(t, c, rolled, "GET", "order"); got != "teapot" {
		t.Fatalf("after the rollout: %q", got)
	}
}

// readyPod waits for the named pod of namespace default to be ready and
// to satisfy also (if set).
func (c *twoNodes) readyPod(t *testing.T, name string, also func(state.Pod) bool) state.Pod {
	t.Helper()
	var pod state.Pod
	harness.Eventually(t, name+" ready", 2*time.Minute, func() error {
		all, _, err := c.admin.Pods(context.Background(), "", nil)
		if err != nil {
			return err
		}
		for _, p := range all {
			if p.Namespace == "default" && p.Name == name && p.Status.Ready && !p.Terminating && (also == nil || also(p)) {
				pod = p
				return nil
			}
		}
		return fmt.Errorf("%s is not ready (yet)", name)
	})
	return pod
}

// redis sends one command to the pod's Redis from its node and returns the
// reply's value, retrying while Redis loads its data.
func redis(t *testing.T, c *twoNodes, p state.Pod, args ...string) string {
	t.Helper()
	var reply string
	harness.Eventually(t, fmt.Sprintf("redis %v on %s", args, p.Name), 30*time.Second, func() error {
		var err error
		reply, err = dialFrom(c.ns[p.NodeName], net.JoinHostPort(p.Status.IP, "6379"), func(conn net.Conn) (string, error) {
			cmd := fmt.Sprintf("*%d\r\n", len(args))
			for _, a := range args {
				cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
			}
			if _, err := conn.Write([]byte(cmd)); err != nil {
				return "", err
			}
			r := bufio.NewReader(conn)
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(line, "+"):
				return line[1:], nil
			case strings.HasPrefix(line, "$"):
				if line == "$-1" {
					return "", nil
				}
				v, err := r.ReadString('\n')
				return strings.TrimRight(v, "\r\n"), err
			}
			return "", fmt.Errorf("redis answered %q", line)
		})
		return err
	})
	return reply
}
