package proxy

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Test topology, all in throwaway network namespaces so the host is never
// touched:
//
//	node ns: lo, br0 172.31.0.1/24 (an empty bridge: the uplink and default route), vethN 10.200.N.1/24
//	podN ns: eth0 10.200.N.2/24, default via 10.200.N.1, a TCP server on
//	         :8080 and a UDP server on :5353 that answer "podN <peer-ip>"
const (
	nodeIP  = "172.31.0.1"
	tcpPort = 8080
	udpPort = 5353
)

type pod struct {
	name, ns string
	ip       string // the pod's address
	hostIP   string // the node's end of the veth
}

type topo struct {
	node string // netns name
	pods []pod
}

func (tp *topo) nodePath() string { return nsPath(tp.node) }

func nsPath(name string) string { return filepath.Join("/var/run/netns", name) }

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables tables")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNS adds a named namespace and deletes it when the test ends, pass or
// fail.
func newNS(t testing.TB, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v %s", name, err, out)
		}
	})
}

// inNS runs fn on an OS thread that has joined the namespace at path.
// Sockets fn creates stay in that namespace whichever thread later uses
// them. The thread is never unlocked, so the runtime discards it afterwards
// instead of reusing it elsewhere.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// newTopo builds the node and n pods, with servers running in the pods.
func newTopo(t testing.TB, n int) *topo {
	t.Helper()
	id := randHex(3)
	tp := &topo{node: "bpx-" + id + "-node"}
	newNS(t, tp.node)
	ipn := func(args ...string) { run(t, append([]string{"ip", "-n", tp.node}, args...)...) }
	ipn("link", "set", "lo", "up")
	ipn("link", "add", "br0", "type", "bridge")
	ipn("addr", "add", nodeIP+"/24", "dev", "br0")
	ipn("link", "set", "br0", "up")
	// A route covering the ClusterIPs: connect() needs one before the
	// output hook gets a chance to DNAT, as on any real node.
	ipn("route", "add", "default", "dev", "br0")
	// Forwarding for traffic from pods (prerouting path, hairpin).
	run(t, "ip", "netns", "exec", tp.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	for i := 1; i <= n; i++ {
		p := pod{
			name:   fmt.Sprintf("pod%d", i),
			ns:     fmt.Sprintf("bpx-%s-pod%d", id, i),
			ip:     fmt.Sprintf("10.200.%d.2", i),
			hostIP: fmt.Sprintf("10.200.%d.1", i),
		}
		newNS(t, p.ns)
		veth := fmt.Sprintf("veth%d", i)
		ipn("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns)
		ipn("addr", "add", p.hostIP+"/24", "dev", veth)
		ipn("link", "set", veth, "up")
		ipp := func(args ...string) { run(t, append([]string{"ip", "-n", p.ns}, args...)...) }
		ipp("link", "set", "lo", "up")
		ipp("addr", "add", p.ip+"/24", "dev", "eth0")
		ipp("link", "set", "eth0", "up")
		ipp("route", "add", "default", "via", p.hostIP)
		startServers(t, p)
		tp.pods = append(tp.pods, p)
	}
	return tp
}

// startServers runs a TCP and a UDP server inside the pod that answer with
// the pod's name and the peer address they see (to check masquerading).
func startServers(t testing.TB, p pod) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := inNS(nsPath(p.ns), func() error {
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", tcpPort)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", udpPort))
		return err
	})
	if err != nil {
		t.Fatalf("%s: listen: %v", p.name, err)
	}
	// Closing the sockets lets the kernel free the namespace after
	// `ip netns del`; registered after newNS, so it runs before it.
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peer := c.RemoteAddr().(*net.TCPAddr).IP
			fmt.Fprintf(c, "%s %s\n", p.name, peer)
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			_, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(fmt.Appendf(nil, "%s %s\n", p.name, addr.(*net.UDPAddr).IP), addr)
		}
	}()
}

// answer is one server reply: which pod, and the client address it saw.
type answer struct{ pod, peer string }

// ask makes one connection (or one UDP exchange) from the namespace at
// path to addr and returns the reply.
func ask(path, network, addr string) (answer, error) {
	var a answer
	err := inNS(path, func() error {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if network == "udp4" {
			if _, err := c.Write([]byte("hi")); err != nil {
				return err
			}
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("bad answer %q", line)
		}
		a = answer{f[0], f[1]}
		return nil
	})
	return a, err
}

// askMany connects n times and counts answers per pod, and the peer
// addresses seen.
func askMany(t testing.TB, path, network, addr string, n int) (pods map[string]int, peers map[string]bool) {
	t.Helper()
	pods, peers = map[string]int{}, map[string]bool{}
	for range n {
		a, err := ask(path, network, addr)
		if err != nil {
			t.Fatalf("%s %s: %v", network, addr, err)
		}
		pods[a.pod]++
		peers[a.peer] = true
	}
	return pods, peers
}

// listTable is `nft list table ip name` inside the namespace ("" if absent).
func listTable(t testing.TB, ns, name string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "ip", name).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file") {
			return ""
		}
		t.Fatalf("nft list table: %v\n%s", err, out)
	}
	return string(out)
}

// genID reads the nftables ruleset generation of the namespace. Every
// committed transaction bumps it by exactly one, so it counts Flushes.
func genID(t testing.TB, path string) uint32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		t.Fatalf("getgen: %v", err)
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32()
			}
		}
	}
	t.Fatal("getgen: no NFTA_GEN_ID")
	return 0
}

func isRefused(err error) bool { return errors.Is(err, unix.ECONNREFUSED) }
