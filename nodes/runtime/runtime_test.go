package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/images"
	"github.com/berth/berth/nodes/action"
	"github.com/berth/berth/schemas/objects"
)

func TestHelloPod(t *testing.T) {
	need(t)
	t.Parallel()
	pod := testPod("hello-1", Container{
		Spec: objects.Container{Name: "web", Image: env.hello},
		Env:  []string{"VERSION=v1"},
	})
	stopAtEnd(t, pod.PodRef)
	start := time.Now()
	st := ensure(t, pod)
	t.Logf("pod running in %s: ip %s", time.Since(start).Round(time.Millisecond), st.IP)
	if st.IP == "" || st.Containers[0].State != StateRunning || st.Containers[0].PID == 0 {
		t.Fatalf("status %+v", st)
	}

	// From the host, over the bridge, to the pod's own address.
	url := "http://" + net.JoinHostPort(st.IP, "8080") + "/"
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "hello-1 v1\n" {
		t.Errorf("GET / = %q, want pod name and VERSION", body)
	}

	// Exec, as exec probes use it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code, err := env.rt.Exec(ctx, pod.PodRef, "web", []string{"sh", "-c", "exit 3"}); err != nil || code != 3 {
		t.Errorf("exec exit 3 = %d, %v", code, err)
	}
	if _, err := env.rt.Exec(ctx, pod.PodRef, "web", []string{"/no/such/binary"}); err == nil {
		t.Error("exec of a missing binary succeeded")
	} else {
		t.Logf("exec missing binary: %v", err)
	}
	if code, out := exec1(t, pod.PodRef, "web", "cat", "/etc/hostname", "/etc/hosts"); code != 0 || !strings.Contains(out, st.IP+"\thello-1") {
		t.Errorf("hostname/hosts: %d %q", code, out)
	}

	// Logs: the server's start line, and follow returns when ctx ends.
	var logs bytes.Buffer
	if err := env.rt.Logs(ctx, pod.PodRef, "web", false, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "hello: listening") {
		t.Errorf("logs = %q", logs.String())
	}
	fctx, fcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer fcancel()
	if err := env.rt.Logs(fctx, pod.PodRef, "web", true, io.Discard); err != nil {
		t.Errorf("follow: %v", err)
	}
	if err := env.rt.Logs(ctx, pod.PodRef, "nope", false, io.Discard); err == nil {
		t.Error("logs of a missing container succeeded")
	}

	// hello exits 0 on SIGTERM, long before the grace period ends.
	start = time.Now()
	if err := env.rt.StopPod(ctx, pod.PodRef, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StopPod took %s for a process that exits on SIGTERM", d)
	}
	if _, ok, _ := env.rt.Status(ctx, pod.PodRef); ok {
		t.Error("pod still there after StopPod")
	}
	if _, err := os.Stat(env.net.NetNSPath(netnsName(podKey(pod.PodRef)))); !os.IsNotExist(err) {
		t.Errorf("netns left after StopPod: %v", err)
	}
	if err := env.rt.StopPod(ctx, pod.PodRef, time.Second); err != nil {
		t.Errorf("second StopPod: %v", err)
	}
}

func TestContainersShareNetwork(t *testing.T) {
	need(t)
	t.Parallel()
	pod := testPod("shared-1",
		Container{Spec: objects.Container{Name: "web", Image: env.hello}, Env: []string{"VERSION=v2"}},
		Container{Spec: objects.Container{Name: "sidecar", Image: env.busybox, Command: []string{"sleep", "3600"}}},
	)
	stopAtEnd(t, pod.PodRef)
	st := ensure(t, pod)
	for _, c := range st.Containers {
		if c.State != StateRunning {
			t.Fatalf("container %s: %+v", c.Name, c)
		}
	}
	var out string
	for range 100 {
		var code int
		if code, out = exec1(t, pod.PodRef, "sidecar", "wget", "-qO-", "http://127.0.0.1:8080/"); code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out != "shared-1 v2" {
		t.Errorf("sidecar got %q from localhost:8080", out)
	}
}

func TestPullErrors(t *testing.T) {
	need(t)
	t.Parallel()
	// A port nothing listens on: a registry that is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name, image, want string
	}{
		{"unknown-image", env.registry.Ref("nope:v1"), "not found"},
		{"registry-down", down + "/hello:v1", "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("pull-"+tc.name, Container{Spec: objects.Container{Name: "c", Image: tc.image}})
			stopAtEnd(t, pod.PodRef)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			st, err := env.rt.EnsurePod(ctx, pod)
			var ce *ContainerError
			if !errors.As(err, &ce) || ce.Reason != ReasonErrImagePull {
				t.Fatalf("err = %v, want a ContainerError ErrImagePull", err)
			}
			c := st.Containers[0]
			t.Logf("after %s: %s: %s", time.Since(start).Round(time.Millisecond), c.Reason, c.Message)
			if c.State != StateWaiting || c.Reason != ReasonErrImagePull || !strings.Contains(c.Message, tc.want) {
				t.Errorf("status %+v, want waiting ErrImagePull mentioning %q", c, tc.want)
			}
			// Retried at once it backs off instead of pulling again.
			st, err = env.rt.EnsurePod(ctx, pod)
			if err != nil || st.Containers[0].Reason != ReasonImagePullBackOff {
				t.Errorf("second EnsurePod: %v, %+v", err, st.Containers[0])
			}
			if ls, ok, _ := env.rt.Status(ctx, pod.PodRef); !ok || ls.Container("c") == nil || ls.Container("c").Reason != ReasonImagePullBackOff {
				t.Errorf("Status: %+v", ls)
			}
		})
	}
}

func TestCommandNotFound(t *testing.T) {
	need(t)
	t.Parallel()
	pod := testPod("nocmd-1", Container{Spec: objects.Container{Name: "c", Image: env.busybox, Command: []string{"/no/such/binary"}}})
	stopAtEnd(t, pod.PodRef)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := env.rt.EnsurePod(ctx, pod)
	var ce *ContainerError
	if !errors.As(err, &ce) || ce.Reason != ReasonStartError {
		t.Fatalf("err = %v, want a StartError", err)
	}
	c := st.Containers[0]
	t.Logf("status: %s %s exit %d: %s", c.State, c.Reason, c.ExitCode, c.Message)
	if c.State != StateExited || c.ExitCode != 128 || !strings.Contains(c.Message, "/no/such/binary") {
		t.Errorf("status %+v", c)
	}
	// The failure is recorded on the container: a fresh look sees it too.
	if ls, _, _ := env.rt.Status(ctx, pod.PodRef); ls.Container("c") == nil || ls.Container("c").Reason != ReasonStartError {
		t.Errorf("Status: %+v", ls)
	}
	// First restart is immediate (and fails again); then it backs off.
	st, _ = env.rt.EnsurePod(ctx, pod)
	if c := st.Containers[0]; c.Restarts != 1 || c.Reason != ReasonStartError {
		t.Errorf("after first restart: %+v", c)
	}
	st, err = env.rt.EnsurePod(ctx, pod)
	if c := st.Containers[0]; err != nil || c.State != StateWaiting || c.Reason != ReasonCrashLoopBackOff || c.LastReason != ReasonStartError {
		t.Errorf("backing off: %v %+v", err, c)
	}
}

func TestRestartPolicyAndLogs(t *testing.T) {
	need(t)
	t.Parallel()
	crash := Container{Spec: objects.Container{Name: "c", Image: env.busybox, Command: []string{"sh", "-c", "echo run; exit 2"}}}
	pod := testPod("crash-1", crash)
	stopAtEnd(t, pod.PodRef)
	ensure(t, pod)
	exited := func(s PodStatus) bool { c := s.Container("c"); return c != nil && c.ExitCode == 2 }
	waitFor(t, pod.PodRef, "exit", exited)
	for restarts := 1; restarts <= 3; restarts++ {
		st := ensure(t, pod)
		c := st.Containers[0]
		if c.Reason == ReasonCrashLoopBackOff {
			if c.NextRestart.IsZero() || time.Until(c.NextRestart) > 2*time.Second {
				t.Fatalf("back-off %+v", c)
			}
			time.Sleep(time.Until(c.NextRestart))
			st = ensure(t, pod)
			c = st.Containers[0]
		}
		if c.Restarts != restarts {
			t.Fatalf("restarts = %d, want %d (%+v)", c.Restarts, restarts, c)
		}
		waitFor(t, pod.PodRef, "exit", func(s PodStatus) bool { c := s.Container("c"); return c.Restarts == restarts && c.ExitCode == 2 })
	}
	var logs bytes.Buffer
	if err := env.rt.Logs(context.Background(), pod.PodRef, "c", false, &logs); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "run\n"); n != 4 {
		t.Errorf("logs have %d runs, want 4: %q", n, logs.String())
	}

	// Never: an exit is final. OnFailure: a clean exit is final.
	never := testPod("crash-never", crash)
	never.RestartPolicy = RestartNever
	stopAtEnd(t, never.PodRef)
	ensure(t, never)
	waitFor(t, never.PodRef, "exit", exited)
	if c := ensure(t, never).Containers[0]; c.State != StateExited || c.Reason != ReasonError || c.Restarts != 0 {
		t.Errorf("Never: %+v", c)
	}
	ok := testPod("done-1", Container{Spec: objects.Container{Name: "c", Image: env.busybox, Command: []string{"true"}}})
	ok.RestartPolicy = RestartOnFailure
	stopAtEnd(t, ok.PodRef)
	ensure(t, ok)
	waitFor(t, ok.PodRef, "exit", func(s PodStatus) bool { c := s.Container("c"); return c != nil && c.State == StateExited })
	if c := ensure(t, ok).Containers[0]; c.State != StateExited || c.Reason != ReasonCompleted || c.Restarts != 0 {
		t.Errorf("OnFailure after exit 0: %+v", c)
	}
}

func TestStopPodGrace(t *testing.T) {
	need(t)
	t.Parallel()
	pod := testPod("stubborn-1", Container{Spec: objects.Container{Name: "c", Image: env.busybox,
		Command: []string{"sh", "-c", `trap "echo got TERM" TERM; echo ready; while true; do sleep 0.1; done`}}})
	stopAtEnd(t, pod.PodRef)
	ensure(t, pod)
	var logs bytes.Buffer
	for !strings.Contains(logs.String(), "ready") {
		logs.Reset()
		env.rt.Logs(context.Background(), pod.PodRef, "c", false, &logs)
		time.Sleep(20 * time.Millisecond)
	}
	key := podKey(pod.PodRef)
	const grace = 1500 * time.Millisecond
	start := time.Now()
	if err := env.rt.StopPod(context.Background(), pod.PodRef, grace); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("StopPod with grace %s took %s", grace, took.Round(time.Millisecond))
	if took < grace || took > grace+5*time.Second {
		t.Errorf("StopPod took %s with grace %s", took, grace)
	}
	if n := countContainers(t, key); n != 0 {
		t.Errorf("%d containerd containers left", n)
	}
	if _, err := os.Stat(filepath.Join(env.rt.dataDir, "pods", key)); !os.IsNotExist(err) {
		t.Errorf("pod dir left: %v", err)
	}
}

func TestAdoptionAfterRestart(t *testing.T) {
	need(t)
	t.Parallel()
	pod := testPod("adopt-1", Container{Spec: objects.Container{Name: "web", Image: env.hello}, Env: []string{"VERSION=v3"}})
	stopAtEnd(t, pod.PodRef)
	first := ensure(t, pod)

	// A second Runtime on the same containerd and data dir: the agent after
	// a restart.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt2, err := New(ctx, env.daemon.Address(), env.rt.dataDir, env.net, WithNamespace(env.rt.Namespace()), WithBackoff(testBackof, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	pods, err := rt2.ListPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *PodStatus
	for i := range pods {
		if pods[i].PodRef == pod.PodRef {
			found = &pods[i]
		}
	}
	if found == nil {
		t.Fatalf("ListPods after restart does not have %s: %+v", pod.PodRef, pods)
	}
	if found.IP != first.IP || len(found.Containers) != 1 || found.Containers[0].ID != first.Containers[0].ID ||
		found.Containers[0].State != StateRunning {
		t.Errorf("adopted %+v, created %+v", *found, first)
	}
	again, err := rt2.EnsurePod(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if again.IP != first.IP || again.Containers[0].PID != first.Containers[0].PID || again.Containers[0].Restarts != 0 {
		t.Errorf("EnsurePod after restart changed the pod: %+v, was %+v", again, first)
	}
	if n := countContainers(t, podKey(pod.PodRef)); n != 2 { // sandbox + web
		t.Errorf("%d containerd containers for the pod, want 2", n)
	}
}

func TestSecurityResourcesMounts(t *testing.T) {
	need(t)
	t.Parallel()
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "key"), []byte("value"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid, gid, yes, no := int64(1000), int64(2000), true, false
	pod := testPod("secure-1", Container{
		Spec: objects.Container{
			Name: "c", Image: env.busybox, Command: []string{"sleep", "3600"}, WorkingDir: "/tmp",
			Resources: objects.ResourceRequirements{Limits: objects.ResourceList{CPU: "500m", Memory: "64Mi"}},
			SecurityContext: &objects.SecurityContext{
				RunAsUser: &uid, RunAsGroup: &gid, ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
				SeccompProfile: &objects.SeccompProfile{Type: "RuntimeDefault"},
				Capabilities:   &objects.Capabilities{Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE"}},
			},
		},
		Mounts:             []Mount{{HostPath: cfgDir, ContainerPath: "/config", ReadOnly: true}},
		Env:                []string{"FROM_CONFIGMAP=hello", "GREETING=$(FROM_CONFIGMAP)-at-$(MY_IP)"},
		PodIPEnv:           []string{"MY_IP"},
		SupplementalGroups: []int64{3000},
	})
	pod.Sysctls = map[string]string{"net.ipv4.tcp_keepalive_time": "123"}
	pod.FQDN, pod.HostAliases = "secure-1.peers.test.svc.cluster.local", []string{"10.1.2.3\tdb.corp.test\tdb"}
	stopAtEnd(t, pod.PodRef)
	podIP := ensure(t, pod).IP
	if podIP == "" {
		t.Fatal("the pod has no IP")
	}
	for _, tc := range []struct {
		cmd  string
		code int
		out  string
	}{
		{"id -u; id -g; id -G", 0, "1000\n2000\n2000 3000"},
		// allowPrivilegeEscalation: false is no_new_privs; RuntimeDefault
		// is containerd's seccomp filter.
		{"grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status", 0, "NoNewPrivs:\t1\nSeccomp:\t2"},
		{"pwd", 0, "/tmp"},
		{"echo $FROM_CONFIGMAP", 0, "hello"},
		// The downward API's status.podIP, known once the network is up.
		{"echo $MY_IP", 0, podIP},
		// $(VAR) references expand, as the kubelet expands them.
		{"echo $GREETING", 0, "hello-at-" + podIP},
		// The pod's names, and its hostAliases.
		{"grep -E 'secure-1|db' /etc/hosts", 0, podIP + "\tsecure-1.peers.test.svc.cluster.local\tsecure-1\n10.1.2.3\tdb.corp.test\tdb"},
		// A sysctl of the pod, in its network namespace.
		{"cat /proc/sys/net/ipv4/tcp_keepalive_time", 0, "123"},
		{"cat /config/key", 0, "value"},
		{"cat /sys/fs/cgroup/memory/memory.limit_in_bytes", 0, "67108864"},
		{"cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares", 0, "50000\n512"},
		// As in Kubernetes, a non-root user gets no effective capabilities;
		// the bounding set shows what was added and dropped.
		{"grep CapBnd /proc/self/status", 0, "CapBnd:\t0000000000000400"},
		{"touch /x 2>/dev/null", 1, ""},
		{"touch /config/x 2>/dev/null", 1, ""},
	} {
		code, out := exec1(t, pod.PodRef, "c", "sh", "-c", tc.cmd)
		if code != tc.code || out != tc.out {
			t.Errorf("%s: %d %q, want %d %q", tc.cmd, code, out, tc.code, tc.out)
		}
	}

	// Privileged: the agent's own capabilities and the host's devices.
	priv := testPod("privileged-1", Container{Spec: objects.Container{Name: "c", Image: env.busybox, Command: []string{"sleep", "3600"},
		SecurityContext: &objects.SecurityContext{Privileged: &yes}}})
	stopAtEnd(t, priv.PodRef)
	ensure(t, priv)
	status, _ := os.ReadFile("/proc/self/status")
	var hostCaps string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "CapEff:") {
			hostCaps = line
		}
	}
	if _, out := exec1(t, priv.PodRef, "c", "grep", "CapEff", "/proc/self/status"); out != hostCaps {
		t.Errorf("privileged caps %q, host %q", out, hostCaps)
	}
	// /dev/kmsg is on every host and in no unprivileged container.
	if _, err := os.Stat("/dev/kmsg"); err == nil {
		if code, _ := exec1(t, priv.PodRef, "c", "ls", "/dev/kmsg"); code != 0 {
			t.Error("privileged container does not see the host's /dev/kmsg")
		}
		if code, _ := exec1(t, pod.PodRef, "c", "ls", "/dev/kmsg"); code == 0 {
			t.Error("unprivileged container sees the host's /dev/kmsg")
		}
	}

	// runAsNonRoot with an image that runs as root is refused before
	// anything runs.
	root := testPod("nonroot-1", Container{Spec: objects.Container{Name: "c", Image: env.busybox, Command: []string{"true"},
		SecurityContext: &objects.SecurityContext{RunAsNonRoot: &yes}}})
	stopAtEnd(t, root.PodRef)
	st, err := env.rt.EnsurePod(context.Background(), root)
	var ce *ContainerError
	if !errors.As(err, &ce) || ce.Reason != ReasonCreateConfigError || st.Containers[0].Reason != ReasonCreateConfigError {
		t.Errorf("runAsNonRoot as root: %v %+v", err, st.Containers)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i, w := range want {
		if got := Backoff(i); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i, got, w)
		}
	}
	if got := Backoff(1000); got != DefaultBackoffMax {
		t.Errorf("Backoff(1000) = %s", got)
	}
}

// TestDaemonRestart restarts containerd under a running pod, as a package
// upgrade does: the pod keeps running and the runtime keeps seeing it. It
// is not parallel, so no other test runs while containerd is down.
func TestDaemonRestart(t *testing.T) {
	need(t)
	pod := testPod("survivor-1", Container{Spec: objects.Container{Name: "web", Image: env.hello}, Env: []string{"VERSION=v4"}})
	stopAtEnd(t, pod.PodRef)
	before := ensure(t, pod)

	if err := env.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := StartContainerd(ctx, env.daemon.Dir())
	if err != nil {
		t.Fatal(err)
	}
	env.daemon = d

	// The runtime's client reconnects by itself.
	after := waitFor(t, pod.PodRef, "running after the restart", func(s PodStatus) bool {
		c := s.Container("web")
		return c != nil && c.State == StateRunning
	})
	if after.Containers[0].PID != before.Containers[0].PID || after.IP != before.IP {
		t.Errorf("after containerd restart %+v, before %+v", after, before)
	}
	again := ensure(t, pod)
	if again.Containers[0].PID != before.Containers[0].PID {
		t.Errorf("EnsurePod after containerd restart replaced the container: %+v", again)
	}
}

// Init containers run in order, each to completion, before the others
// start; a failing one is retried under the back-off and holds the others
// back, and with restartPolicy Never its failure is final.
func TestInitContainers(t *testing.T) {
	need(t)
	t.Parallel()
	work := t.TempDir()
	mount := []Mount{{HostPath: work, ContainerPath: "/work"}}
	step := func(name, script string) Container {
		return Container{Spec: objects.Container{Name: name, Image: env.busybox, Command: []string{"sh", "-c", script}}, Mounts: mount}
	}
	pod := testPod("init-1", step("app", "cat /work/order; sleep 3600"))
	pod.InitContainers = []Container{step("first", "sleep 1; echo first >> /work/order"), step("second", "echo second >> /work/order")}
	stopAtEnd(t, pod.PodRef)
	st := ensure(t, pod)
	if len(st.InitContainers) != 1 || st.InitContainers[0].Name != "first" || len(st.Containers) != 0 {
		t.Fatalf("first sync: init %+v, containers %+v", st.InitContainers, st.Containers)
	}
	for deadline := time.Now().Add(30 * time.Second); st.Container("app") == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the app never started: %+v", st)
		}
		st = ensure(t, pod)
	}
	waitFor(t, pod.PodRef, "the app running", func(s PodStatus) bool { c := s.Container("app"); return c != nil && c.State == StateRunning })
	if code, out := exec1(t, pod.PodRef, "app", "cat", "/work/order"); code != 0 || out != "first\nsecond" {
		t.Fatalf("the init containers ran as %q (%d), want first then second", out, code)
	}
	// Once initialized, later syncs leave the init containers alone.
	if st := ensure(t, pod); len(st.InitContainers) != 0 || st.Container("app").State != StateRunning {
		t.Fatalf("after initializing: %+v", st)
	}
	if out, _ := os.ReadFile(filepath.Join(work, "order")); string(out) != "first\nsecond\n" {
		t.Fatalf("an init container ran again: %q", out)
	}

	failing := testPod("init-fail", step("app", "sleep 3600"))
	failing.InitContainers = []Container{step("setup", "exit 3")}
	stopAtEnd(t, failing.PodRef)
	ensure(t, failing)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := ensure(t, failing)
		if st.Container("app") != nil {
			t.Fatalf("the app started after a failed init container: %+v", st.Containers)
		}
		if c := st.Container("setup"); c != nil && c.Restarts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed init container was not retried: %+v", st.InitContainers)
		}
	}

	never := testPod("init-never", step("app", "sleep 3600"))
	never.RestartPolicy = RestartNever
	never.InitContainers = []Container{step("setup", "exit 3")}
	stopAtEnd(t, never.PodRef)
	ensure(t, never)
	waitFor(t, never.PodRef, "the init container's exit", func(s PodStatus) bool { c := s.Container("setup"); return c != nil && c.ExitCode == 3 })
	if st := ensure(t, never); st.Container("setup").State != StateExited || st.Container("setup").Restarts != 0 || st.Container("app") != nil {
		t.Fatalf("a failed init container under Never: %+v", st)
	}
}

// Lifecycle hooks in real containers: postStart runs once the process has
// started (a failing one kills the container, which restarts), and preStop
// runs before SIGTERM, whoever stops the container.
func TestLifecycleHooks(t *testing.T) {
	need(t)
	t.Parallel()
	work := t.TempDir()
	hook := func(script string) *objects.Handler {
		return &objects.Handler{Exec: &objects.ExecAction{Command: []string{"sh", "-c", script}}}
	}
	app := Container{Spec: objects.Container{Name: "app", Image: env.busybox,
		Command:   []string{"sh", "-c", `trap "echo term >> /work/order; exit 0" TERM; while true; do sleep 0.1; done`},
		Lifecycle: &objects.Lifecycle{PostStart: hook("echo started > /work/started"), PreStop: hook("echo prestop >> /work/order")}},
		Mounts: []Mount{{HostPath: work, ContainerPath: "/work"}}}
	pod := testPod("hooks-1", app)
	pod.GracePeriod = 10 * time.Second
	stopAtEnd(t, pod.PodRef)
	if st := ensure(t, pod); st.Container("app").State != StateRunning {
		t.Fatalf("after postStart: %+v", st.Containers)
	}
	if b, err := os.ReadFile(filepath.Join(work, "started")); err != nil || string(b) != "started\n" {
		t.Fatalf("postStart did not run before EnsurePod returned: %q %v", b, err)
	}
	if err := env.rt.StopPod(context.Background(), pod.PodRef, pod.GracePeriod); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "order")); string(b) != "prestop\nterm\n" {
		t.Fatalf("stopping ran %q, want the preStop hook, then SIGTERM", b)
	}

	failing := testPod("hooks-fail", Container{Spec: objects.Container{Name: "app", Image: env.busybox, Command: []string{"sleep", "3600"},
		Lifecycle: &objects.Lifecycle{PostStart: hook("exit 7")}}})
	stopAtEnd(t, failing.PodRef)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := env.rt.EnsurePod(ctx, failing)
	if c := st.Container("app"); err == nil || c.Reason != ReasonPostStartHookError || !strings.Contains(c.Message, "exited with 7") {
		t.Fatalf("a failing postStart: %v %+v", err, c)
	}
	waitFor(t, failing.PodRef, "the killed container", func(s PodStatus) bool { c := s.Container("app"); return c != nil && c.State != StateRunning })
}

// A gRPC probe against a real container's grpc.health.v1 service: it
// passes while the server is SERVING and fails a container that is not.
func TestGRPCProbeOnAContainer(t *testing.T) {
	need(t)
	t.Parallel()
	probe := &objects.Handler{GRPC: &objects.GRPCAction{Port: 9090}}
	for status, healthy := range map[string]bool{"SERVING": true, "NOT_SERVING": false} {
		pod := testPod("grpc-"+strings.ToLower(strings.ReplaceAll(status, "_", "-")), Container{
			Spec: objects.Container{Name: "c", Image: env.hello},
			Env:  []string{"GRPC_HEALTH_PORT=9090", "GRPC_HEALTH_STATUS=" + status}})
		stopAtEnd(t, pod.PodRef)
		ip := ensure(t, pod).IP
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = action.Run(ctx, probe, action.Target{IP: ip})
			cancel()
			if err == nil || strings.Contains(err.Error(), "NOT_SERVING") {
				break // the server answered
			}
		}
		if healthy != (err == nil) {
			t.Errorf("%s: probe %v", status, err)
		}
	}
}

// An image in a registry that requires authentication is pulled with the
// pod's pull secret credentials for that registry, and refused without
// them or with another registry's.
func TestPullWithCredentials(t *testing.T) {
	need(t)
	t.Parallel()
	reg, err := images.NewRegistry(images.WithBasicAuth("puller", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	img, err := images.Busybox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reg.Push(context.Background(), "team/private:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		auth []objects.RegistryAuth
		ok   bool
	}{
		{"none", nil, false},
		{"other-registry", []objects.RegistryAuth{{Registry: "registry.example.com", Username: "puller", Password: "s3cret"}}, false},
		{"wrong-password", []objects.RegistryAuth{{Registry: reg.Host(), Username: "puller", Password: "nope"}}, false},
		{"right", []objects.RegistryAuth{{Registry: "other.example.com", Username: "x", Password: "y"}, {Registry: "http://" + reg.Host() + "/team", Username: "puller", Password: "s3cret"}}, true},
	} {
		pod := testPod("pull-auth-"+tc.name, Container{Spec: objects.Container{Name: "c", Image: ref, Command: []string{"sleep", "3600"}}})
		pod.RegistryAuth = tc.auth
		stopAtEnd(t, pod.PodRef)
		st, err := env.rt.EnsurePod(ctx, pod)
		if c := st.Container("c"); tc.ok != (err == nil) || tc.ok != (c.Reason != ReasonErrImagePull) {
			t.Errorf("%s: %v, %+v", tc.name, err, c)
		}
		if !tc.ok && !strings.Contains(fmt.Sprint(err), "401") && !strings.Contains(fmt.Sprint(err), "unauthorized") {
			t.Errorf("%s: the refusal does not say why: %v", tc.name, err)
		}
	}
}
