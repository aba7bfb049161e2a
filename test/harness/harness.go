// Package harness runs berth as users do, for the end-to-end tests and the
// benchmarks: the berth binary built from this tree, a registry on loopback
// holding the hello image, and `berth up` clusters following git
// repositories the caller commits to.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/images"
)

// Env is what a package's tests share: the berth binary and a registry on
// loopback holding the hello image.
type Env struct {
	Bin      string
	Registry *images.Registry
	Hello    string // full reference of the hello image
	dir      string
}

// Main sets up an Env for a TestMain, runs the tests and cleans up. It
// fails the run, rather than skipping, when not root: these tests are the
// proof that the whole path works, and a run that cannot do them must not
// pass.
func Main(m *testing.M, env *Env) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "these tests run containers and program nftables; run them as root")
		return 1
	}
	if err := env.Setup(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		env.Close()
		return 1
	}
	defer env.Close()
	return m.Run()
}

// Setup builds berth and the hello image and starts the registry.
func (env *Env) Setup() error {
	var err error
	if env.dir, err = os.MkdirTemp("", "berth-harness-"); err != nil {
		return err
	}
	env.Bin = filepath.Join(env.dir, "berth")
	build := exec.Command("go", "build", "-o", env.Bin, "github.com/berth/berth/cmd/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building berth: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if env.Registry, err = images.NewRegistry(); err != nil {
		return err
	}
	img, err := images.BuildGoImage(ctx, "github.com/berth/berth/images/hello", images.WithBusybox())
	if err == nil {
		env.Hello, err = env.Registry.Push(ctx, "berth/hello:1", img)
	}
	if err != nil {
		return fmt.Errorf("hello image: %w", err)
	}
	return nil
}

// Close stops the registry and removes the binary.
func (env *Env) Close() {
	if env.Registry != nil {
		env.Registry.Close()
	}
	os.RemoveAll(env.dir)
}

// Cluster is one `berth up` process on a data dir of its own, following a
// git repository the test commits to.
type Cluster struct {
	t          testing.TB
	env        *Env
	Data, Repo string
	args       []string
	cmd        *exec.Cmd
	exited     chan struct{}
	Client     *api.Client
	APIURL     string
	// HTTP trusts the cluster's CA, for requests the Client has no method for.
	HTTP  *http.Client
	Token string
}

func freePort(t testing.TB) string { return FreeAddr(t, "127.0.0.1") }

// FreeAddr returns ip:port with a port free now, for a process started
// later to listen on. The port is below Linux's ephemeral range (32768 and
// up): a port the kernel hands out (listen on :0) may be taken as the
// source port of any outgoing connection before that process binds it.
func FreeAddr(t testing.TB, ip string) string {
	t.Helper()
	for range 200 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(20000+rand.IntN(12000))))
		if err == nil {
			defer ln.Close()
			return ln.Addr().String()
		}
	}
	t.Fatalf("no free port on %s below the ephemeral range", ip)
	return ""
}

// NewCluster creates the config repository with files and starts berth up
// on it. Cleanup runs `berth down`, so no pod outlives the test.
func (env *Env) NewCluster(t testing.TB, files map[string]string) *Cluster {
	t.Helper()
	root := t.TempDir()
	c := &Cluster{t: t, env: env, Data: filepath.Join(root, "data"), Repo: filepath.Join(root, "repo")}
	os.MkdirAll(c.Repo, 0o755)
	c.Git("init", "-q", "-b", "main")
	c.Write(files)
	c.Git("add", "-A")
	c.Git("commit", "-q", "-m", "first")
	listen := freePort(t)
	c.APIURL = "https://" + listen
	c.args = []string{"up", "--data", c.Data, "--repo", c.Repo, "--listen", listen, "--raft-addr", freePort(t),
		"--agent-listen", freePort(t), "--poll", "2s", "--insecure-registry", env.Registry.Host(),
		"--webhook-secret-file", webhookSecretFile(t, root)}
	c.Start()
	t.Cleanup(c.Down)
	return c
}

func (c *Cluster) Start() {
	c.t.Helper()
	log, err := os.OpenFile(filepath.Join(filepath.Dir(c.Data), "berth.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	c.cmd = exec.Command(c.env.Bin, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.exited) }()
	c.Eventually("the API answers", time.Minute, func() error {
		select {
		case <-c.exited:
			c.t.Fatalf("berth up exited: %s\n%s", c.cmd.ProcessState, c.logTail())
		default:
		}
		conf, err := os.ReadFile(filepath.Join(c.Data, "admin.conf"))
		if err != nil {
			return err
		}
		var cc struct{ Server, Token, CA string }
		if err := yaml.Unmarshal(conf, &cc); err != nil {
			return err
		}
		tc, err := pki.ClientTLS([]byte(cc.CA), nil, nil, pki.OrgMasters)
		if err != nil {
			return err
		}
		c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: time.Minute}
		c.Client, c.Token = api.NewClient(cc.Server, cc.Token, api.WithHTTPClient(c.HTTP)), cc.Token
		_, err = c.Client.Status(context.Background())
		return err
	})
}

// ContainerdSocket is the private containerd's socket.
func (c *Cluster) ContainerdSocket() string {
	c.t.Helper()
	sock := filepath.Join(c.Data, "node", "containerd", "containerd.sock")
	if len(sock) > 100 {
		c.t.Fatalf("containerd socket path %s is too long for the harness", sock)
	}
	return sock
}

// PID is the berth up process's.
func (c *Cluster) PID() int { return c.cmd.Process.Pid }

// Kill ends berth up with SIGKILL: no clean-up of any kind runs.
func (c *Cluster) Kill() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *Cluster) Down() {
	if out, err := exec.Command(c.env.Bin, "down", "--data", c.Data).CombinedOutput(); err != nil {
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

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(c.Data), "berth.log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// Berth runs the CLI against this cluster.
func (c *Cluster) Berth(args ...string) (string, error) {
	out, err := exec.Command(c.env.Bin, append(args, "--config", filepath.Join(c.Data, "admin.conf"))...).CombinedOutput()
	return string(out), err
}

func (c *Cluster) Git(args ...string) string {
	c.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = c.Repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (c *Cluster) Write(files map[string]string) {
	c.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.Repo, name), []byte(content), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Commit commits everything and pokes the webhook, as a Git host would on
// push; the poll would find it too, only later.
func (c *Cluster) Commit(msg string) string {
	c.t.Helper()
	c.Git("add", "-A")
	c.Git("commit", "-q", "-m", msg)
	c.Webhook()
	return c.Git("rev-parse", "HEAD")
}

func (c *Cluster) Webhook() {
	if resp, err := c.HTTP.Do(webhookRequest(context.Background(), c.APIURL)); err == nil {
		resp.Body.Close()
	}
}

// webhookSecret signs the harness's webhook calls, as a Git host would.
const webhookSecret = "e2e-webhook-secret"

// webhookSecretFile writes the secret into dir for --webhook-secret-file.
func webhookSecretFile(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(path, []byte(webhookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// webhookRequest is a signed push notification to the master at base.
func webhookRequest(ctx context.Context, base string) *http.Request {
	body := []byte(`{"ref": "refs/heads/main"}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(apiserver.BerthSignatureHeader, api.Signature([]byte(webhookSecret), body))
	return req
}

// Eventually retries f until it succeeds or the wait is over.
func (c *Cluster) Eventually(what string, wait time.Duration, f func() error) {
	c.t.Helper()
	Eventually(c.t, what, wait, f)
}

// Eventually retries f every 100 ms until it succeeds, failing t with f's
// last error when the wait is over.
func Eventually(t testing.TB, what string, wait time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) Pods() []state.Pod {
	c.t.Helper()
	pods, _, err := c.Client.Pods(context.Background(), "", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return pods
}

// DeploymentPods are the pods of one Deployment that are not terminating.
func (c *Cluster) DeploymentPods(namespace, name string) []state.Pod {
	var out []state.Pod
	for _, p := range c.Pods() {
		if p.Namespace == namespace && p.Deployment == name && !p.Terminating {
			out = append(out, p)
		}
	}
	return out
}

func (c *Cluster) ClusterIP(namespace, name string) string {
	c.t.Helper()
	svcs, _, err := c.Client.Services(context.Background(), nil)
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

// Tasks lists the running containers of the cluster's containerd by ID,
// with their process IDs.
func (c *Cluster) Tasks() map[string]uint32 {
	c.t.Helper()
	return tasks(c.t, c.ContainerdSocket())
}

// tasks lists the running containers of the containerd at socket.
func tasks(t testing.TB, socket string) map[string]uint32 {
	t.Helper()
	cl, err := containerd.New(socket, containerd.WithDefaultNamespace("berth"), containerd.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	list, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
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

// Ask sends one request to url and returns the answer's body.
func Ask(url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return strings.TrimSpace(b.String()), nil
}
