package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
)

// Run runs a command the test needs, and fails the test if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// NetnsWithVeth makes network namespace ns with loopback up, joined to
// this one by a veth pair whose end in ns has ip/24; it returns the name
// of the end here, which the caller addresses or puts on a bridge.
func NetnsWithVeth(t testing.TB, ns, ip string) string {
	t.Helper()
	host, inside := ns+"h", ns+"n"
	Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	Run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", inside)
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	Run(t, "ip", "link", "set", inside, "netns", ns)
	Run(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", inside)
	Run(t, "ip", "-n", ns, "link", "set", inside, "up")
	Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return host
}

// Relay forwards TCP connections to ip:0 on to target, and returns the
// address it listens on.
func Relay(t testing.TB, ip, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// NodeNet is a cluster of one master and agents in network namespaces of
// their own, on one bridge (a layer-2 network) with the master, which
// follows a git repository the caller commits to.
type NodeNet struct {
	t           testing.TB
	env         *Env
	tag, subnet string
	bridge      string
	MasterIP    string
	registry    string // a relay to the registry that the namespaces reach
	Image       string // the hello image, through it
	Master      *Master
	Admin       *api.Client
	Repo        string
	agents      int
}

// NewNodeNet starts the master on subnet (the first three octets, such as
// "10.253.0") with extra flags, and a bridge for the agents.
func (env *Env) NewNodeNet(t testing.TB, tag, subnet string, extra ...string) *NodeNet {
	n := &NodeNet{t: t, env: env, tag: tag, subnet: subnet, bridge: tag + "br", MasterIP: subnet + ".1", Repo: t.TempDir()}
	Run(t, "ip", "link", "add", n.bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", n.bridge).Run() })
	Run(t, "ip", "addr", "add", n.MasterIP+"/24", "dev", n.bridge)
	Run(t, "ip", "link", "set", n.bridge, "up")
	// The registry listens on the host's loopback, which the namespaces
	// do not share.
	n.registry = Relay(t, n.MasterIP, env.Registry.Host())
	n.Image = n.registry + strings.TrimPrefix(env.Hello, env.Registry.Host())
	n.git("init", "-q", "-b", "main")
	n.Commit(map[string]string{"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n"})
	n.Master = env.NewMaster(t, "m", MasterOptions{Listen: FreeAddr(t, n.MasterIP), RaftListen: FreeAddr(t, "127.0.0.1"),
		Extra: append([]string{"--repo", n.Repo, "--poll", "1s"}, extra...)})
	n.Master.Start("--bootstrap")
	n.Admin = n.Master.Client(n.Master.AdminToken())
	return n
}

func (n *NodeNet) git(args ...string) {
	n.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = n.Repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// Commit writes files into the repository and commits them.
func (n *NodeNet) Commit(files map[string]string) {
	n.t.Helper()
	n.CommitMessage("update", files)
}

// CommitMessage is Commit with a commit message of the caller's.
func (n *NodeNet) CommitMessage(msg string, files map[string]string) {
	n.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.Repo, name), []byte(content), 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
	n.git("add", "-A")
	n.git("commit", "-q", "-m", msg)
}

// Agent is one `berth agent` process in a network namespace of its own.
type Agent struct {
	t            testing.TB
	Name, NS, IP string
	Data         string // as berth down takes it; the agent's is Data/node
	host         string // the veth end on the bridge
	args         []string
	cmd          *exec.Cmd
	exited       chan struct{}
}

// AddAgent starts an agent named name in a namespace of its own, with
// extra flags.
func (n *NodeNet) AddAgent(name string, extra ...string) *Agent {
	n.t.Helper()
	n.agents++
	a := &Agent{t: n.t, Name: name, NS: n.tag + name, IP: fmt.Sprintf("%s.%d", n.subnet, n.agents+1), Data: filepath.Join(n.t.TempDir(), name)}
	a.host = NetnsWithVeth(n.t, a.NS, a.IP)
	Run(n.t, "ip", "link", "set", a.host, "master", n.bridge, "up")
	// A default route, as machines have: the node's own traffic to a
	// ClusterIP is routed before the proxy's DNAT sees it.
	Run(n.t, "ip", "-n", a.NS, "route", "add", "default", "via", n.MasterIP)
	// nsenter, not `ip netns exec`: that also mounts a /sys of its own,
	// without the cgroup file system runc needs.
	a.args = append([]string{"--net=/run/netns/" + a.NS, n.env.Bin, "agent", "--server", n.Master.URL, "--token", n.Master.JoinToken("join-agent"),
		"--ca-hash", n.Master.CAHash(), "--data", filepath.Join(a.Data, "node"), "--node-name", name,
		"--agent-listen", a.IP + ":10250", "--insecure-registry", n.registry}, extra...)
	a.Start()
	n.t.Cleanup(func() {
		a.Kill()
		if out, err := exec.Command("nsenter", "--net=/run/netns/"+a.NS, n.env.Bin, "down", "--data", a.Data).CombinedOutput(); err != nil {
			n.t.Errorf("berth down for %s: %v\n%s", name, err, out)
		}
		if n.t.Failed() {
			b, _ := os.ReadFile(a.Data + ".log")
			n.t.Logf("agent %s, end of its log:\n%s", name, b[max(0, len(b)-4000):])
		}
	})
	return a
}

// Start runs the agent (again, on the same data dir).
func (a *Agent) Start() {
	a.t.Helper()
	logf, err := os.OpenFile(a.Data+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	a.cmd = exec.Command("nsenter", a.args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.exited = make(chan struct{})
	go func() { a.cmd.Wait(); logf.Close(); close(a.exited) }()
}

// Kill ends the agent with SIGKILL; its pods run on.
func (a *Agent) Kill() {
	if a.cmd == nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
}

// Cut takes the node off the network (true) or puts it back (false).
func (a *Agent) Cut(cut bool) {
	a.t.Helper()
	state := "up"
	if cut {
		state = "down"
	}
	Run(a.t, "ip", "link", "set", a.host, state)
}

// Tasks lists the running containers of the agent's containerd.
func (a *Agent) Tasks() map[string]uint32 {
	a.t.Helper()
	return tasks(a.t, filepath.Join(a.Data, "node", "containerd", "containerd.sock"))
}

// ReadyNodes waits until the cluster has n ready nodes.
func (n *NodeNet) ReadyNodes(count int, wait time.Duration) {
	n.t.Helper()
	Eventually(n.t, fmt.Sprintf("%d ready nodes", count), wait, func() error {
		st, err := n.Admin.Status(context.Background())
		if err == nil && st.ReadyNodes != count {
			err = fmt.Errorf("%d ready nodes", st.ReadyNodes)
		}
		return err
	})
}

// Deployment is a Deployment of the hello image in namespace apps, ready
// once it answers /healthz.
func (n *NodeNet) Deployment(name string, replicas int) string {
	return n.workload("Deployment", name, fmt.Sprintf("\n  replicas: %d", replicas))
}

// workload is a kind of hello pods in namespace apps, ready on /healthz,
// with spec fields before its selector.
func (n *NodeNet) workload(kind, name, spec string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: %[1]s
metadata: {name: %[2]s, namespace: apps}
spec:%[4]s
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: hello
          image: %[3]s
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
`, kind, name, n.Image, spec)
}

// ReadyPods waits until replicas pods of Deployment apps/name are ready on
// nodes other than avoid, and no other pod of it is left.
func (n *NodeNet) ReadyPods(name string, replicas int, avoid string, wait time.Duration) {
	n.t.Helper()
	Eventually(n.t, fmt.Sprintf("%d ready pods of %s off %q", replicas, name, avoid), wait, func() error {
		pods, _, err := n.Admin.Pods(context.Background(), "", nil)
		if err != nil {
			return err
		}
		ready, other := 0, 0
		for _, p := range pods {
			switch {
			case p.Namespace != "apps" || p.OwnerKind != "" || p.Deployment != name:
			case p.Status.Ready && p.NodeName != avoid && !p.Terminating:
				ready++
			default:
				other++
			}
		}
		if ready != replicas || other != 0 {
			return fmt.Errorf("%d ready, %d others", ready, other)
		}
		return nil
	})
}

// LoseNode kills a's agent with SIGKILL and cuts its node off the network,
// and returns how long it took until replicas pods of Deployment apps/name
// were ready on the other nodes.
func (n *NodeNet) LoseNode(a *Agent, name string, replicas int, wait time.Duration) time.Duration {
	n.t.Helper()
	a.Kill()
	a.Cut(true)
	start := time.Now()
	n.ReadyPods(name, replicas, a.Name, wait)
	return time.Since(start)
}

// Restore puts a's node back on the network and starts its agent again.
func (n *NodeNet) Restore(a *Agent) {
	n.t.Helper()
	a.Cut(false)
	a.Start()
}

// DaemonSet is a DaemonSet of the hello image in namespace apps.
func (n *NodeNet) DaemonSet(name string) string { return n.workload("DaemonSet", name, "") }
