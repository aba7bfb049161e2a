package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/test/harness"
)

// twoNodes is a master in this network namespace and two workers, n1 and
// n2, each `berth agent` in a network namespace of its own on one layer-2
// network with it, both ready.
type twoNodes struct {
	image string // the hello image, through a relay on that network
	// restart kills a node's agent (SIGKILL) and starts it again.
	restart map[string]func()
	repo    *configRepo
	master  *harness.Master
	admin   *api.Client
	hostIP  string            // this namespace's address there
	nodes   []string          // n1, n2
	ns, ip  map[string]string // by node: network namespace, address
}

// newTwoNodes builds it on subnet (three octets, a /24), naming links and
// namespaces after tag.
// Agents get agentArgs besides the usual ones.
func newTwoNodes(t *testing.T, tag, subnet string, agentArgs ...string) *twoNodes {
	c := &twoNodes{hostIP: subnet + ".1", nodes: []string{"n1", "n2"}, ns: map[string]string{}, ip: map[string]string{}, restart: map[string]func(){}}
	bridge := tag + "br"
	run(t, "ip", "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	run(t, "ip", "addr", "add", c.hostIP+"/24", "dev", bridge)
	run(t, "ip", "link", "set", bridge, "up")

	// The registry listens on the host's loopback, which the namespaces
	// do not share: relay it on the bridge.
	registry := relay(t, c.hostIP, env.Registry.Host())
	c.image = registry + strings.TrimPrefix(env.Hello, env.Registry.Host())

	c.repo = newConfigRepo(t)
	c.master = env.NewMaster(t, "m", harness.MasterOptions{Listen: loopback(t, c.hostIP), RaftListen: loopback(t, "127.0.0.1"),
		Extra: []string{"--repo", c.repo.dir, "--poll", "1s"}})
	c.master.Start("--bootstrap")
	c.admin = c.master.Client(c.master.AdminToken())

	for i, name := range c.nodes {
		ns, ip := tag+name, fmt.Sprintf("%s.%d", subnet, i+2)
		c.ns[name], c.ip[name] = ns, ip
		run(t, "ip", "link", "set", netnsWithVeth(t, ns, ip), "master", bridge, "up")
		// A default route, as machines have: the node's own traffic to a
		// ClusterIP is routed before the proxy's DNAT sees it.
		run(t, "ip", "-n", ns, "route", "add", "default", "via", c.hostIP)
		c.restart[name] = startAgent(t, ns, name, ip, c.master, registry, agentArgs...)
	}
	// Both nodes ready first, so that the scheduler spreads the pods.
	harness.Eventually(t, "two ready nodes", time.Minute, func() error {
		st, err := c.admin.Status(context.Background())
		if err == nil && st.ReadyNodes != 2 {
			err = fmt.Errorf("%d ready nodes", st.ReadyNodes)
		}
		return err
	})
	return c
}

// commit writes file into the config repository and commits it.
func (c *twoNodes) commit(t *testing.T, file, content, msg string) {
	if err := os.WriteFile(filepath.Join(c.repo.dir, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	c.repo.git("add", ".")
	c.repo.git("commit", "-q", "-m", msg)
}

// readyPods waits for n ready pods, one or more on each node, and returns
// them.
func (c *twoNodes) readyPods(t *testing.T, n int) []state.Pod {
	var pods []state.Pod
	harness.Eventually(t, fmt.Sprintf("%d ready pods on both nodes", n), 3*time.Minute, func() error {
		all, _, err := c.admin.Pods(context.Background(), "", nil)
		if err != nil {
			return err
		}
		on := map[string]bool{}
		pods = pods[:0]
		for _, p := range all {
			if p.Status.Ready && p.Status.IP != "" {
				on[p.NodeName] = true
				pods = append(pods, p)
			}
		}
		if len(pods) != n || len(on) != 2 {
			return fmt.Errorf("%d ready pods on %d nodes", len(pods), len(on))
		}
		return nil
	})
	return pods
}

// TestTwoNodes: two workers run one pod each. Each node routes the other's
// pod CIDR to it, so both pods answer from either node and from inside
// either pod, directly and through the Service's ClusterIP.
func TestTwoNodes(t *testing.T) {
	c := newTwoNodes(t, fmt.Sprintf("b2n%d", os.Getpid()%100000), "10.252.0")
	c.commit(t, "app.yaml", twoNodeApp(c.image), "two replicas")
	pods := c.readyPods(t, 2)
	svcs, _, err := c.admin.Services(context.Background(), nil)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("services: %+v %v", svcs, err)
	}
	// From each node, and from inside each pod: both pods answer, directly
	// and through the ClusterIP.
	from := map[string]string{} // what -> network namespace
	for _, name := range c.nodes {
		from["node "+name] = c.ns[name]
	}
	// A pod's namespace is the one that holds its IP address, with the
	// other end of its eth0 in its node's: other clusters on the machine
	// (tests running beside this one) give their pods the same addresses.
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		addrs, _ := exec.Command("ip", "-n", e.Name(), "-4", "-o", "addr", "show").Output()
		link, _ := exec.Command("ip", "-n", e.Name(), "-o", "link", "show", "eth0").Output()
		for _, p := range pods {
			if strings.Contains(string(addrs), " "+p.Status.IP+"/") && strings.Contains(string(link), " link-netns "+c.ns[p.NodeName]) {
				from["pod "+p.Name] = e.Name()
			}
		}
	}
	if len(from) != 4 {
		t.Fatalf("network namespaces of the nodes and pods: %v", from)
	}
	for what, ns := range from {
		for _, p := range pods {
			harness.Eventually(t, fmt.Sprintf("pod %s on %s answering %s", p.Name, p.NodeName, what), time.Minute, func() error {
				body, err := askFrom(ns, p.Status.IP+":8080")
				if err != nil {
					return err
				}
				if pod, _, _ := strings.Cut(body, " "); pod != p.Name {
					return fmt.Errorf("answer %q", body)
				}
				return nil
			})
		}
		reachesBoth(t, ns, svcs[0].ClusterIP+":80")
	}
}

// run, netnsWithVeth and relay are the harness's.
func run(t *testing.T, args ...string) { t.Helper(); harness.Run(t, args...) }

func netnsWithVeth(t *testing.T, ns, ip string) string {
	t.Helper()
	return harness.NetnsWithVeth(t, ns, ip)
}

// twoNodeApp is the hello app of TestUpEndToEnd with two replicas of
// image.
func twoNodeApp(image string) string {
	return strings.NewReplacer(fmt.Sprintf("replicas: %d", replicas), "replicas: 2", env.Hello, image).Replace(helloApp("1"))
}

// startAgent runs `berth agent` for node name inside network namespace ns,
// advertising ip; at cleanup it stops it and `berth down` removes its pods,
// routes and nftables tables there. It returns what kills the agent
// (SIGKILL) and starts it again on the same data.
func startAgent(t *testing.T, ns, name, ip string, m *harness.Master, registry string, extra ...string) (restart func()) {
	t.Helper()
	data := filepath.Join(t.TempDir(), name)
	logf, err := os.Create(data + ".log")
	if err != nil {
		t.Fatal(err)
	}
	// nsenter, not `ip netns exec`: that also mounts a /sys of its own,
	// without the cgroup file system runc needs.
	args := append([]string{"--net=/run/netns/" + ns, env.Bin, "agent", "--server", m.URL, "--token", m.JoinToken("join-agent"),
		"--ca-hash", m.CAHash(), "--data", filepath.Join(data, "node"), "--node-name", name,
		"--agent-listen", ip + ":10250", "--insecure-registry", registry}, extra...)
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command("nsenter", args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	start()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if out, err := exec.Command("nsenter", "--net=/run/netns/"+ns, env.Bin, "down", "--data", data).CombinedOutput(); err != nil {
			t.Errorf("berth down for %s: %v\n%s", name, err, out)
		}
		if t.Failed() {
			b, _ := os.ReadFile(data + ".log")
			t.Logf("agent %s, end of its log:\n%s", name, b[max(0, len(b)-4000):])
		}
	})
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
		start()
	}
}

// reachesBoth asks addr from network namespace ns ("" for this one)
// until two pods have answered.
func reachesBoth(t *testing.T, ns, addr string) {
	t.Helper()
	harness.Eventually(t, fmt.Sprintf("%s reaching both pods from %q", addr, ns), time.Minute, func() error {
		seen := map[string]bool{}
		for range 40 {
			body, err := getFrom(ns, addr, "/")
			if err != nil {
				return err
			}
			pod, _, _ := strings.Cut(body, " ")
			if seen[pod] = true; len(seen) == 2 {
				return nil
			}
		}
		return fmt.Errorf("40 requests reached only %v", seen)
	})
}

// askFrom GETs http://addr/ from inside network namespace ns and returns
// the body.
func askFrom(ns, addr string) (string, error) { return getFrom(ns, addr, "/") }

// getFrom GETs http://addr+path from inside network namespace ns, or this
// one when ns is "", and returns the body.
func getFrom(ns, addr, path string) (string, error) {
	body, err := dialFrom(ns, addr, func(conn net.Conn) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err := req.Write(conn); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), err
	})
	if err != nil {
		return "", fmt.Errorf("GET http://%s%s in %q: %w", addr, path, ns, err)
	}
	return body, nil
}

// dialFrom connects to addr (TCP) from inside network namespace ns, or
// this one when ns is "", and returns what talk makes of the connection.
func dialFrom(ns, addr string, talk func(net.Conn) (string, error)) (string, error) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The socket is made in the namespace of the thread that makes
		// it; the thread is never unlocked, so it ends with the goroutine.
		runtime.LockOSThread()
		out, err := func() (string, error) {
			if ns != "" {
				f, err := os.Open("/run/netns/" + ns)
				if err != nil {
					return "", err
				}
				defer f.Close()
				if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
					return "", err
				}
			}
			conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			return talk(conn)
		}()
		done <- result{out, err}
	}()
	r := <-done
	return r.out, r.err
}

func relay(t *testing.T, ip, target string) string { t.Helper(); return harness.Relay(t, ip, target) }
