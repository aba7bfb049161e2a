package network

import (
	"context"
	"encoding/json"
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

	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"
)

// The test changes the host's network (a bridge, NAT rules, namespaces), so
// it needs root and the CNI plugins; it uses names and a CIDR of its own
// and removes them even when it fails.
func newTestNetwork(t *testing.T, cidr string) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(filepath.Join(DefaultPluginDir, "bridge")); err != nil {
		t.Skip("no CNI plugins in " + DefaultPluginDir)
	}
	lockTests(t)
	bridge := fmt.Sprintf("btn%d", os.Getpid()%100000)
	n, err := New(Config{PodCIDR: cidr, BridgeName: bridge, NetworkName: "berth-test", DataDir: t.TempDir(), PortMap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", bridge).Run()
		n.Close()
	})
	return n
}

// lockTests serializes runs of this package's tests on the host: two
// would share the pod CIDR. The lock goes with the process.
func lockTests(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/run/lock/berth-network-test.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cachedConf is the conflist libcni cached for the pod at ADD.
func cachedConf(t *testing.T, n *Network, podID string) string {
	t.Helper()
	conf, _, err := n.cni.GetNetworkListCachedConfig(n.list, n.rtConf(podID, "", nil))
	if err != nil || conf == nil {
		t.Fatalf("no cached config for %s: %v", podID, err)
	}
	return string(conf)
}

func TestPodNetwork(t *testing.T) {
	n := newTestNetwork(t, "10.244.251.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, subnet, _ := net.ParseCIDR("10.244.251.0/24")

	names := []string{fmt.Sprintf("berth-nt-a-%d", os.Getpid()), fmt.Sprintf("berth-nt-b-%d", os.Getpid())}
	ips := make([]string, len(names))
	for i, name := range names {
		t.Cleanup(func() {
			n.Teardown(context.Background(), name, n.NetNSPath(name))
			n.DeleteNetNS(name)
		})
		path, err := n.CreateNetNS(name)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := n.CreateNetNS(name); err != nil || again != path {
			t.Fatalf("CreateNetNS again = %q, %v", again, err)
		}
		ip, err := n.Setup(ctx, name, path)
		if err != nil {
			t.Fatal(err)
		}
		if !subnet.Contains(net.ParseIP(ip)) || ip == n.Gateway().String() {
			t.Fatalf("pod IP %s is not a pod address of %s", ip, subnet)
		}
		if again, err := n.Setup(ctx, name, path); err != nil || again != ip {
			t.Fatalf("Setup again = %q, %v; want %s", again, err, ip)
		}
		if got := n.IP(name); got != ip {
			t.Errorf("IP(%s) = %q, want %s", name, got, ip)
		}
		if conf := cachedConf(t, n, name); strings.Contains(conf, "portmap") {
			t.Errorf("pod %s without hostPorts ran portmap:\n%s", name, conf)
		}
		ips[i] = ip
		if out := run(t, "ip", "-n", name, "-4", "addr", "show", "eth0"); !strings.Contains(out, ip+"/24") {
			t.Errorf("eth0 in %s:\n%s", name, out)
		}
		if out := run(t, "ip", "-n", name, "route"); !strings.Contains(out, "default via "+n.Gateway().String()) {
			t.Errorf("routes in %s:\n%s", name, out)
		}
		if out := run(t, "ip", "-n", name, "link", "show", "lo"); !strings.Contains(out, "UP") {
			t.Errorf("lo in %s is down:\n%s", name, out)
		}
	}
	if ips[0] == ips[1] {
		t.Fatalf("both pods got %s", ips[0])
	}

	// Host to pod over the bridge, and pod to pod.
	run(t, "busybox", "ping", "-c", "1", "-W", "2", ips[0])
	run(t, "ip", "netns", "exec", names[0], "busybox", "ping", "-c", "1", "-W", "2", ips[1])

	// Teardown releases the lease and can be repeated, before and after
	// the namespace is gone.
	lease := filepath.Join(n.Config().StateDir, "berth-test", ips[0])
	if _, err := os.Stat(lease); err != nil {
		t.Fatalf("no host-local lease: %v", err)
	}
	for range 2 {
		if err := n.Teardown(ctx, names[0], n.NetNSPath(names[0])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Errorf("lease %s still there after Teardown: %v", lease, err)
	}
	if got := n.IP(names[0]); got != "" {
		t.Errorf("IP after Teardown = %q", got)
	}
	for range 2 {
		if err := n.DeleteNetNS(names[0]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(n.NetNSPath(names[0])); !os.IsNotExist(err) {
		t.Errorf("netns file left: %v", err)
	}
	// The second pod loses its namespace first (as after a crash) and is
	// torn down afterwards: its lease is still released.
	if err := n.DeleteNetNS(names[1]); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, names[1], n.NetNSPath(names[1])); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(n.Config().StateDir, "berth-test", ips[1])); !os.IsNotExist(err) {
		t.Errorf("lease of %s still there: %v", ips[1], err)
	}
	if out := run(t, "iptables", "-t", "nat", "-S"); strings.Contains(out, "berth-nt-") {
		t.Errorf("NAT rules left after Teardown:\n%s", out)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{PodCIDR: "10.0.0.0"},
		{PodCIDR: "fd00::/64"},
		{PodCIDR: "10.0.0.0/31"},
		{PodCIDR: "10.0.0.0/24", BridgeName: "a-very-long-bridge-name"},
		{PodCIDR: "10.0.0.0/24", ClusterCIDR: "10.1.0.0/16"},
		{PodCIDR: "10.0.0.0/24", ClusterCIDR: "10.0.0.0/25"},
		{PodCIDR: "10.0.0.0/24", ClusterCIDR: "fd00::/8"},
	} {
		cfg.DataDir = t.TempDir()
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	n, err := New(Config{PodCIDR: "10.1.2.0/24", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if n.Gateway().String() != "10.1.2.1" || n.Config().BridgeName != DefaultBridge {
		t.Errorf("gateway %s bridge %s", n.Gateway(), n.Config().BridgeName)
	}
	if !strings.Contains(string(n.ConfList()), `"host-local"`) {
		t.Errorf("conflist: %s", n.ConfList())
	}
	if _, err := n.CreateNetNS("../x"); err == nil {
		t.Error("CreateNetNS accepted a path")
	}
}

func TestHostPort(t *testing.T) {
	n := newTestNetwork(t, "10.244.252.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("berth-nt-hp-%d", os.Getpid())
	t.Cleanup(func() {
		n.Teardown(context.Background(), name, n.NetNSPath(name))
		n.DeleteNetNS(name)
	})
	path, err := n.CreateNetNS(name)
	if err != nil {
		t.Fatal(err)
	}
	hostPort := int32(20000 + os.Getpid()%10000)
	if _, err := n.Setup(ctx, name, path, PortMapping{HostPort: hostPort, ContainerPort: 8080, Protocol: "tcp"}); err != nil {
		t.Fatal(err)
	}
	if conf := cachedConf(t, n, name); !strings.Contains(conf, `"portmap"`) {
		t.Errorf("pod with a hostPort did not run portmap:\n%s", conf)
	}
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hi from the pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", name, "busybox", "httpd", "-f", "-p", "8080", "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	url := fmt.Sprintf("http://%s:%d/index.html", n.Gateway(), hostPort)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "hi from the pod\n" {
				t.Errorf("GET %s = %q", url, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s through the hostPort: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := n.Teardown(ctx, name, path); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "iptables", "-t", "nat", "-S"); strings.Contains(out, name) {
		t.Errorf("NAT rules of %s left after Teardown:\n%s", name, out)
	}
}

// listenIn opens a TCP listener inside the network namespace at path and
// returns it with the address of each connection's peer, as the listener
// saw it.
func listenIn(t *testing.T, path string) (net.Listener, <-chan string) {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the namespace and is never unlocked: it dies
		// with this goroutine. The socket stays in the namespace.
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, err}
			return
		}
		ln, err := net.Listen("tcp4", ":0")
		done <- result{ln, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listen in %s: %v", path, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	peers := make(chan string, 4)
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	return r.ln, peers
}

// connectFrom connects from the namespace ns to addr:port and returns the
// peer address the listener saw.
func connectFrom(t *testing.T, ns, addr string, port int, peers <-chan string) string {
	t.Helper()
	run(t, "ip", "netns", "exec", ns, "busybox", "nc", "-w", "2", addr, fmt.Sprint(port))
	select {
	case p := <-peers:
		return p
	case <-time.After(5 * time.Second):
		t.Fatalf("no connection from %s to %s:%d", ns, addr, port)
		return ""
	}
}

// TestMasquerade: pods reach addresses outside the cluster CIDR with the
// node's address (one nftables rule, not a rule per pod), and other pods
// with their own. Close removes the rule.
func TestMasquerade(t *testing.T) {
	n := newTestNetwork(t, "10.244.253.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// "outside": a namespace behind a veth pair, on a TEST-NET-2 address
	// that is neither the node's nor the cluster's.
	outside := fmt.Sprintf("berth-nt-out-%d", os.Getpid())
	hostEnd, outEnd := fmt.Sprintf("bto%d", os.Getpid()%100000), "eth0"
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostEnd).Run()
		n.DeleteNetNS(outside)
	})
	outPath, err := n.CreateNetNS(outside)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "link", "add", hostEnd, "type", "veth", "peer", "name", outEnd, "netns", outside)
	run(t, "ip", "addr", "add", "198.51.100.1/30", "dev", hostEnd)
	run(t, "ip", "link", "set", hostEnd, "up")
	run(t, "ip", "-n", outside, "addr", "add", "198.51.100.2/30", "dev", outEnd)
	run(t, "ip", "-n", outside, "link", "set", outEnd, "up")
	run(t, "ip", "-n", outside, "link", "set", "lo", "up")

	names := []string{fmt.Sprintf("berth-nt-m1-%d", os.Getpid()), fmt.Sprintf("berth-nt-m2-%d", os.Getpid())}
	paths := make([]string, len(names))
	ips := make([]string, len(names))
	for i, name := range names {
		t.Cleanup(func() {
			n.Teardown(context.Background(), name, n.NetNSPath(name))
			n.DeleteNetNS(name)
		})
		if paths[i], err = n.CreateNetNS(name); err != nil {
			t.Fatal(err)
		}
		if ips[i], err = n.Setup(ctx, name, paths[i]); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, "nft", "list", "table", "ip", n.Config().MasqTable)
	if !strings.Contains(out, "ip saddr 10.244.253.0/24") || !strings.Contains(out, "masquerade") {
		t.Errorf("masquerade table:\n%s", out)
	}
	if out := run(t, "iptables", "-t", "nat", "-S"); strings.Contains(out, "berth-nt-") {
		t.Errorf("per-pod NAT rules:\n%s", out)
	}

	ln, peers := listenIn(t, outPath)
	port := ln.Addr().(*net.TCPAddr).Port
	if got := connectFrom(t, names[0], "198.51.100.2", port, peers); got != "198.51.100.1" {
		t.Errorf("outside saw the pod as %s, want the node's 198.51.100.1", got)
	}
	ln, peers = listenIn(t, paths[1])
	port = ln.Addr().(*net.TCPAddr).Port
	if got := connectFrom(t, names[0], ips[1], port, peers); got != ips[0] {
		t.Errorf("pod %s saw pod %s as %s", ips[1], ips[0], got)
	}

	for range 2 {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("nft", "list", "table", "ip", n.Config().MasqTable).CombinedOutput(); err == nil {
		t.Errorf("masquerade table left after Close:\n%s", out)
	}
}

// TestLegacyMasqTeardown: pods attached by an earlier berth, whose bridge
// plugin had a masquerade chain per pod, lose those iptables rules when
// torn down by this one, with and without their namespace.
func TestLegacyMasqTeardown(t *testing.T) {
	n := newTestNetwork(t, "10.244.254.0/24")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, ipnet, _ := net.ParseCIDR("10.244.254.0/24")
	cfg := n.Config()
	cfg.NoMasquerade = true // the old agent wrote no nftables rule
	old := conflist(cfg, ipnet, true)
	old["plugins"].([]any)[0].(map[string]any)["ipMasq"] = true
	b, _ := json.Marshal(old)
	oldList, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	current := n.list

	names := []string{fmt.Sprintf("berth-nt-l1-%d", os.Getpid()), fmt.Sprintf("berth-nt-l2-%d", os.Getpid())}
	for _, name := range names {
		t.Cleanup(func() {
			n.Teardown(context.Background(), name, n.NetNSPath(name))
			n.DeleteNetNS(name)
		})
		path, err := n.CreateNetNS(name)
		if err != nil {
			t.Fatal(err)
		}
		n.list = oldList
		_, err = n.Setup(ctx, name, path)
		n.list = current
		if err != nil {
			t.Fatal(err)
		}
	}
	if out := run(t, "iptables", "-t", "nat", "-S"); strings.Count(out, "berth-nt-l") < 2 {
		t.Fatalf("the old conflist made no per-pod rules:\n%s", out)
	}
	// One is torn down with its namespace, one after losing it.
	if err := n.Teardown(ctx, names[0], n.NetNSPath(names[0])); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteNetNS(names[1]); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, names[1], n.NetNSPath(names[1])); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "iptables", "-t", "nat", "-S"); strings.Contains(out, "berth-nt-l") {
		t.Errorf("per-pod NAT rules left after Teardown:\n%s", out)
	}
}
