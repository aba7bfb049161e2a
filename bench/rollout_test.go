package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/test/harness"
)

// rolloutReplicas is the Deployment's size in BenchmarkCommitToRunning.
const rolloutReplicas = 10

// The harness (berth binary, registry, image) is set up by the first
// benchmark that needs it, so the validate benchmarks and unit tests of
// this package need neither root nor containerd.
var rollout struct {
	once sync.Once
	env  harness.Env
	err  error
}

func rolloutEnv(b *testing.B) *harness.Env {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("BenchmarkCommitToRunning runs containers: run it as root")
	}
	rollout.once.Do(func() { rollout.err = rollout.env.Setup() })
	if rollout.err != nil {
		b.Fatal(rollout.err)
	}
	return &rollout.env
}

func rolloutApp(image string, version int) string {
	// maxSurge 100%: the new version's pods all start at once, as the
	// containers of the ctr floor do; the old ones stop once they are ready.
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: bench, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: bench}}
  strategy: {rollingUpdate: {maxSurge: 100%%, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: hello
          image: %s
          env: [{name: VERSION, value: "%d"}]
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`, rolloutReplicas, image, version)
}

// BenchmarkCommitToRunning times, per commit that changes a 10-replica
// Deployment, from `git commit` (and the push webhook a Git host sends) to
// all 10 new pods Running, as `berth get pods` shows them; each iteration
// is one commit, so run it with -benchtime 20x. In the same run, on the
// same containerd and image, it times `ctr run -d` starting 10 containers
// at once: the floor a node agent cannot beat. It also reports the RSS of
// `berth up` (master and agent in one process) with the pods running.
func BenchmarkCommitToRunning(b *testing.B) {
	env := rolloutEnv(b)
	c := env.NewCluster(b, map[string]string{"app.yaml": rolloutApp(env.Hello, 0)})
	waitPods(b, c, func(pods []state.Pod) error { return runningVersion(pods, 0) })

	var commits []time.Duration
	version := 0
	for b.Loop() {
		version++
		c.Write(map[string]string{"app.yaml": rolloutApp(env.Hello, version)})
		start := time.Now()
		c.Commit(fmt.Sprintf("version %d", version))
		waitPods(b, c, func(pods []state.Pod) error { return runningVersion(pods, version) })
		commits = append(commits, time.Since(start))
		// Let the old pods go before the next commit, so that each commit
		// starts from the same 10 running pods.
		waitPods(b, c, func(pods []state.Pod) error { return onlyVersion(pods, version) })
	}
	rss := rssMB(b, c.PID())
	floor := ctrFloor(b, c.ContainerdSocket(), env.Hello, len(commits))

	p50, p99 := percentile(commits, 50), percentile(commits, 99)
	f50 := percentile(floor, 50)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(f50), "ctr-p50-ms")
	b.ReportMetric(ms(percentile(floor, 99)), "ctr-p99-ms")
	b.ReportMetric(float64(p50)/float64(f50), "p50/ctr")
	b.ReportMetric(rss, "berth-up-rss-MB")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile is the nearest-rank percentile.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}

func version(p state.Pod) string {
	for _, e := range p.Spec.Containers[0].Env {
		if e.Name == "VERSION" {
			return e.Value
		}
	}
	return ""
}

// waitPods watches the pods with blocking queries, so the time a change
// is seen is the time it was committed, not the next poll's.
func waitPods(b *testing.B, c *harness.Cluster, done func([]state.Pod) error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var index uint64
	var err error
	for {
		pods, idx, werr := c.Client.Pods(ctx, "", &api.Watch{Index: index, Wait: 10 * time.Second})
		if werr != nil {
			b.Fatalf("watching pods: %v (last: %v)", werr, err)
		}
		if err = done(pods); err == nil {
			return
		}
		index = idx
	}
}

// runningVersion checks that 10 pods of the version run.
func runningVersion(pods []state.Pod, v int) error {
	n := 0
	for _, p := range pods {
		if version(p) == strconv.Itoa(v) && p.Status.Phase == state.PodRunning && !p.Terminating {
			n++
		}
	}
	if n != rolloutReplicas {
		return fmt.Errorf("%d of %d pods of version %d running", n, rolloutReplicas, v)
	}
	return nil
}

// onlyVersion checks that no pod of another version is left.
func onlyVersion(pods []state.Pod, v int) error {
	for _, p := range pods {
		if version(p) != strconv.Itoa(v) {
			return fmt.Errorf("pod %s of version %s is still there", p.Name, version(p))
		}
	}
	return nil
}

// rssMB reads a process's resident set size.
func rssMB(b *testing.B, pid int) float64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// ctrFloor times `ctr run -d` of 10 containers of the image at once, in a
// containerd namespace of its own on the cluster's containerd, rounds
// times, and returns each round's time until all ten have started.
func ctrFloor(b *testing.B, sock, image string, rounds int) []time.Duration {
	b.Helper()
	const ns = "berth-bench-floor"
	ctr := func(args ...string) error {
		out, err := exec.Command("ctr", append([]string{"-a", sock, "-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr %v: %v: %s", args, err, out)
		}
		return nil
	}
	// The pull is not timed: the berth pods found the image pulled too.
	if err := ctr("images", "pull", "--plain-http", image); err != nil {
		b.Fatal(err)
	}
	var out []time.Duration
	for r := range rounds {
		ids := make([]string, rolloutReplicas)
		errs := make([]error, rolloutReplicas)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range ids {
			ids[i] = fmt.Sprintf("floor-%d-%d", r, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = ctr("run", "-d", "--env", "VERSION="+strconv.Itoa(r), image, ids[i])
			}()
		}
		wg.Wait()
		out = append(out, time.Since(start))
		for i, id := range ids {
			if errs[i] != nil {
				b.Fatal(errs[i])
			}
			ctr("task", "kill", "-s", "SIGKILL", id)
		}
		for _, id := range ids {
			for try := 0; try < 50 && ctr("task", "rm", id) != nil; try++ {
				time.Sleep(100 * time.Millisecond)
			}
			if err := ctr("containers", "rm", id); err != nil {
				b.Fatal(err)
			}
		}
	}
	return out
}
