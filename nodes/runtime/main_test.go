package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/images"
	"github.com/berth/berth/nodes/network"
)

// The tests run real containers: a containerd of their own (under a temp
// dir on the root filesystem, where overlayfs works), images built from
// images/hello and the host's busybox-static served by an in-process
// registry on loopback, and a CNI bridge of their own in the host's network
// namespace. TestMain sets this up once and tears it down even when tests
// fail.
var env struct {
	skip     string
	dir      string
	daemon   *Daemon
	registry *images.Registry
	net      *network.Network
	rt       *Runtime
	hello    string // image refs in the registry
	busybox  string
}

const (
	testCIDR   = "10.244.250.0/24"
	testBackof = 200 * time.Millisecond
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if reason := setup(); reason != "" {
		env.skip = reason
	}
	defer teardown()
	return m.Run()
}

// runInfo is written into each run's dir so that a later run can clean up
// after one that crashed (a panic or a test timeout skips teardown).
type runInfo struct {
	Namespace   string
	Bridge      string
	NetworkName string
}

const (
	runDirPattern = "berth-runtime-test-"
	// lockPath serializes runs of this package: concurrent runs would
	// share the pod CIDR.
	lockPath = "/run/lock/berth-runtime-test.lock"
)

func setup() (skip string) {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " not installed"
		}
	}
	if _, err := os.Stat(filepath.Join(network.DefaultPluginDir, "bridge")); err != nil {
		return "no CNI plugins"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) string {
		// A broken environment must fail the run loudly, not skip it.
		fmt.Fprintln(os.Stderr, "runtime test setup:", err)
		teardown()
		os.Exit(2)
		return ""
	}
	if err := lockRuns(); err != nil {
		return fail(err)
	}
	// Holding the lock, every other run dir belongs to a run that died.
	stale, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPattern+"*"))
	for _, dir := range stale {
		fmt.Fprintln(os.Stderr, "runtime test setup: cleaning up after a crashed run in", dir)
		cleanupRun(ctx, dir, nil, nil)
	}

	var err error
	if env.dir, err = os.MkdirTemp("", runDirPattern); err != nil {
		return fail(err)
	}
	info := runInfo{
		// A namespace of its own per run: runc keeps container state in
		// /run/containerd/runc/<namespace>, shared by every containerd.
		Namespace:   fmt.Sprintf("berth-test-%d", os.Getpid()),
		Bridge:      fmt.Sprintf("btr%d", os.Getpid()%100000),
		NetworkName: "berth-rt-test",
	}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(env.dir, "run.json"), b, 0o644); err != nil {
		return fail(err)
	}

	start := time.Now()
	if env.daemon, err = StartContainerd(ctx, filepath.Join(env.dir, "containerd")); err != nil {
		return fail(err)
	}
	daemonUp := time.Since(start)

	if env.registry, err = images.NewRegistry(); err != nil {
		return fail(err)
	}
	hello, err := images.BuildGoImage(ctx, "github.com/berth/berth/images/hello", images.WithBusybox())
	if err != nil {
		return fail(err)
	}
	if env.hello, err = env.registry.Push(ctx, "hello:v1", hello); err != nil {
		return fail(err)
	}
	bb, err := images.Busybox(ctx)
	if err != nil {
		return fail(err)
	}
	if env.busybox, err = env.registry.Push(ctx, "busybox:v1", bb); err != nil {
		return fail(err)
	}

	if env.net, err = testNetwork(env.dir, info); err != nil {
		return fail(err)
	}
	level := slog.LevelError // expected failures log warnings
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	snapshotter := SnapshotterFor(env.daemon.Dir())
	env.rt, err = New(ctx, env.daemon.Address(), filepath.Join(env.dir, "runtime"), env.net,
		WithNamespace(info.Namespace),
		WithSnapshotter(snapshotter),
		WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))),
		WithBackoff(testBackof, 2*time.Second))
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "runtime test setup: containerd up in %s, images pushed in %s (dir %s, snapshotter %s)\n",
		daemonUp.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), env.dir, snapshotter)
	return ""
}

func testNetwork(dir string, info runInfo) (*network.Network, error) {
	return network.New(network.Config{
		PodCIDR:     testCIDR,
		BridgeName:  info.Bridge,
		NetworkName: info.NetworkName,
		DataDir:     filepath.Join(dir, "cni"),
	})
}

func lockRuns() error {
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	// Held until the process exits, which releases it even on a crash.
	return unix.Flock(int(f.Fd()), unix.LOCK_EX)
}

func teardown() {
	if env.dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if env.registry != nil {
		env.registry.Close()
	}
	cleanupRun(ctx, env.dir, env.daemon, env.rt)
	env.dir = ""
}

// cleanupRun removes everything a run made: its pods (containers, netns,
// NAT rules, leases), its masquerade table, its containerd and leftover shims, its bridge, its
// dir. For a crashed run it first restarts that run's containerd, so that
// the runtime stops its containers the normal way.
func cleanupRun(ctx context.Context, dir string, d *Daemon, rt *Runtime) {
	var info runInfo
	if b, err := os.ReadFile(filepath.Join(dir, "run.json")); err == nil {
		json.Unmarshal(b, &info)
	}
	if d == nil && info.Namespace != "" {
		killStaleDaemon(filepath.Join(dir, "containerd"))
		var err error
		if d, err = StartContainerd(ctx, filepath.Join(dir, "containerd")); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	if rt == nil && d != nil && info.Namespace != "" {
		if n, err := testNetwork(dir, info); err == nil {
			rt, _ = New(ctx, d.Address(), filepath.Join(dir, "runtime"), n, WithNamespace(info.Namespace),
				WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		}
	}
	if rt != nil {
		pods, err := rt.ListPods(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cleanup: list pods:", err)
		}
		for _, p := range pods {
			if err := rt.StopPod(ctx, p.PodRef, 0); err != nil {
				fmt.Fprintln(os.Stderr, "cleanup:", err)
			}
		}
		rt.Close()
	}
	if d != nil {
		d.Stop()
		killShims(d.Address())
	}
	if info.NetworkName != "" {
		// The pod network's masquerade table.
		if n, err := testNetwork(dir, info); err == nil {
			n.Close()
		}
	}
	if info.Bridge != "" {
		exec.Command("ip", "link", "del", info.Bridge).Run()
	}
	os.RemoveAll(dir)
}

// killStaleDaemon kills the containerd a crashed run left running, making
// sure by its command line that the pid is still that containerd.
func killStaleDaemon(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
		p.Wait()
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// killShims kills shims our containerd started that are still alive (a
// container that would not die), found by the socket in their command
// line.
func killShims(address string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("containerd-shim")) || !bytes.Contains(b, []byte(address)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if proc, err := os.FindProcess(pid); err == nil {
			proc.Kill()
		}
	}
}

func need(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

func testPod(name string, containers ...Container) Pod {
	return Pod{PodRef: PodRef{Namespace: "test", Name: name, UID: name + "-uid"}, Containers: containers}
}

// ensure runs EnsurePod and fails the test on an error.
func ensure(t *testing.T, pod Pod) PodStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := env.rt.EnsurePod(ctx, pod)
	if err != nil {
		t.Fatalf("EnsurePod %s: %v", pod.PodRef, err)
	}
	return st
}

// stopAtEnd removes the pod when the test ends, whatever happened.
func stopAtEnd(t *testing.T, ref PodRef) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := env.rt.StopPod(ctx, ref, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// waitFor polls the pod's status until cond holds.
func waitFor(t *testing.T, ref PodRef, what string, cond func(PodStatus) bool) PodStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var st PodStatus
	for time.Now().Before(deadline) {
		var ok bool
		var err error
		st, ok, err = env.rt.Status(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if ok && cond(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod %s: timed out waiting for %s; last status %+v", ref, what, st)
	return st
}

func exec1(t *testing.T, ref PodRef, container string, cmd ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	code, err := env.rt.ExecStreams(ctx, ref, container, cmd, Streams{Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return code, strings.TrimSpace(out.String())
}

func countContainers(t *testing.T, key string) int {
	t.Helper()
	list, err := env.rt.Client().Containers(context.Background(), fmt.Sprintf(`labels.%q==%q`, labelPodKey, key))
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}
