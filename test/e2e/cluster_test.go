package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/store"
	"github.com/berth/berth/images"
)

// env is what every test of the package shares: the berth binary and a
// registry on loopback holding the hello image.
var env struct {
	bin      string
	registry *images.Registry
	hello    string // full reference of the hello image
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		// Not a skip: these tests are the proof that the whole path works,
		// and a run that cannot do them must not pass.
		fmt.Fprintln(os.Stderr, "e2e: these tests run containers and program nftables; run them as root")
		return 1
	}
	dir, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.bin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", env.bin, "github.com/berth/berth/cmd/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building berth: %v\n%s", err, out)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if env.registry, err = images.NewRegistry(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer env.registry.Close()
	img, err := images.BuildGoImage(ctx, "github.com/berth/berth/images/hello", images.WithBusybox())
	if err == nil {
		env.hello, err = env.registry.Push(ctx, "berth/hello:1", img)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: hello image:", err)
		return 1
	}
	return m.Run()
}

// cluster is one `berth up` process on a data dir of its own, following a
// git repository the test commits to.
type cluster struct {
	t          *testing.T
	data, repo string
	args       []string
	cmd        *exec.Cmd
	exited     chan struct{}
	client     *api.Client
	apiURL     string
	token      string
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newCluster creates the config repository with files and starts berth up
// on it. Cleanup runs `berth down`, so no pod outlives the test.
func newCluster(t *testing.T, files map[string]string) *cluster {
	t.Helper()
	root := t.TempDir()
	c := &cluster{t: t, data: filepath.Join(root, "data"), repo: filepath.Join(root, "repo")}
	os.MkdirAll(c.repo, 0o755)
	c.git("init", "-q", "-b", "main")
	c.write(files)
	c.git("add", "-A")
	c.git("commit", "-q", "-m", "first")
	listen := freePort(t)
	c.apiURL = "http://" + listen
	c.args = []string{"up", "--data", c.data, "--repo", c.repo, "--listen", listen, "--raft-addr", freePort(t),
		"--agent-listen", freePort(t), "--poll", "2s", "--insecure-registry", env.registry.Host()}
	c.start()
	t.Cleanup(c.down)
	return c
}

func (c *cluster) start() {
	c.t.Helper()
	log, err := os.OpenFile(filepath.Join(filepath.Dir(c.data), "berth.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	c.cmd = exec.Command(env.bin, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.exited) }()
	c.eventually("the API answers", time.Minute, func() error {
		select {
		case <-c.exited:
			c.t.Fatalf("berth up exited: %s\n%s", c.cmd.ProcessState, c.logTail())
		default:
		}
		conf, err := os.ReadFile(filepath.Join(c.data, "admin.conf"))
		if err != nil {
			return err
		}
		var cc struct{ Server, Token string }
		if err := yaml.Unmarshal(conf, &cc); err != nil {
			return err
		}
		c.client, c.token = api.NewClient(cc.Server, cc.Token), cc.Token
		_, err = c.client.Status(context.Background())
		return err
	})
}

// kill ends berth up with SIGKILL: no clean-up of any kind runs.
func (c *cluster) kill() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *cluster) down() {
	if out, err := exec.Command(env.bin, "down", "--data", c.data).CombinedOutput(); err != nil {
		c.t.Errorf("berth down: %v\n%s", err, out)
	}
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		c.cmd.Process.Kill()
		c.t.Errorf("berth up did not exit after berth down")
	}
	if c.t.Failed() {
		c.t.Logf("berth up's log, last lines:\n%s", c.logTail())
	}
}

func (c *cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(c.data), "berth.log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// berth runs the CLI against this cluster.
func (c *cluster) berth(args ...string) (string, error) {
	out, err := exec.Command(env.bin, append(args, "--config", filepath.Join(c.data, "admin.conf"))...).CombinedOutput()
	return string(out), err
}

func (c *cluster) git(args ...string) string {
	c.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = c.repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (c *cluster) write(files map[string]string) {
	c.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.repo, name), []byte(content), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// commit commits everything and pokes the webhook, as a Git host would on
// push; the poll would find it too, only later.
func (c *cluster) commit(msg string) string {
	c.t.Helper()
	c.git("add", "-A")
	c.git("commit", "-q", "-m", msg)
	c.webhook()
	return c.git("rev-parse", "HEAD")
}

func (c *cluster) webhook() {
	resp, err := http.Post(c.apiURL+"/v1/webhook", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
	}
}

// eventually retries f until it succeeds or the wait is over.
func (c *cluster) eventually(what string, wait time.Duration, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s: %v", what, wait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *cluster) pods() []store.Pod {
	c.t.Helper()
	pods, _, err := c.client.Pods(context.Background(), "", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return pods
}

// deploymentPods are the pods of one Deployment that are not terminating.
func (c *cluster) deploymentPods(namespace, name string) []store.Pod {
	var out []store.Pod
	for _, p := range c.pods() {
		if p.Namespace == namespace && p.Deployment == name && !p.Terminating {
			out = append(out, p)
		}
	}
	return out
}

func (c *cluster) clusterIP(namespace, name string) string {
	c.t.Helper()
	svcs, _, err := c.client.Services(context.Background(), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range svcs {
		if s.Namespace == namespace && s.Name == name {
			return s.ClusterIP
		}
	}
	c.t.Fatalf("no service %s/%s", namespace, name)
	return ""
}

// tasks lists the running containers of the cluster's containerd by ID,
// with their process IDs.
func (c *cluster) tasks() map[string]uint32 {
	c.t.Helper()
	sock := filepath.Join(c.data, "node", "containerd", "containerd.sock")
	if len(sock) > 100 {
		c.t.Fatalf("containerd socket path %s is too long for this test", sock)
	}
	cl, err := containerd.New(sock, containerd.WithDefaultNamespace("berth"), containerd.WithTimeout(5*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	list, err := cl.Containers(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, ct := range list {
		task, err := ct.Task(ctx, nil)
		if err != nil {
			continue // the pod sandbox record has no task
		}
		st, err := task.Status(ctx)
		if err == nil && st.Status == containerd.Running {
			out[ct.ID()] = task.Pid()
		}
	}
	return out
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// ask sends one request to url and returns the answer's body.
func ask(url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return strings.TrimSpace(b.String()), nil
}
