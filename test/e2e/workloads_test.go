package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/test/harness"
)

// TestNodeLoss: of three agents, one is killed with SIGKILL and its node cut
// off the network; its Deployment pods are ready on the other two within
// the default timeouts. Put back and restarted, it stops its old pods
// rather than run them next to their replacements.
func TestNodeLoss(t *testing.T) {
	n := env.NewNodeNet(t, fmt.Sprintf("b3n%d", os.Getpid()%100000), "10.253.0")
	var agents []*harness.Agent
	for _, name := range []string{"n1", "n2", "n3"} {
		agents = append(agents, n.AddAgent(name))
	}
	n.ReadyNodes(3, time.Minute)
	n.Commit(map[string]string{"web.yaml": n.Deployment("web", 3)})
	n.ReadyPods("web", 3, "", 3*time.Minute)
	victim := agents[2]
	if len(victim.Tasks()) == 0 {
		t.Fatalf("no container runs on %s", victim.Name)
	}

	took := n.LoseNode(victim, "web", 3, time.Minute)
	t.Logf("node loss to replacements ready: %s", took.Round(100*time.Millisecond))
	if took > 25*time.Second {
		t.Errorf("replacements ready %s after the kill; the goal is 20 s", took)
	}

	n.Restore(victim)
	n.ReadyNodes(3, time.Minute)
	harness.Eventually(t, "the old pods stopped on "+victim.Name, time.Minute, func() error {
		if tasks := victim.Tasks(); len(tasks) > 0 {
			return fmt.Errorf("%d containers run", len(tasks))
		}
		return nil
	})
	n.ReadyPods("web", 3, victim.Name, time.Second)
}

// batchApp is a Job whose first attempt fails: its container exits 1 the
// first time and restarts (OnFailure) in the same pod, whose emptyDir
// remembers the attempt; and a CronJob that runs every minute.
func batchApp() string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: second-try, namespace: default}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: try
          image: %[1]s
          command: [sh, -c, 'test -f /data/tried || { touch /data/tried; exit 1; }']
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "* * * * *"
  timeZone: UTC
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: tick
              image: %[1]s
              command: [sh, -c, 'echo tick']
`, env.Hello)
}

// TestJobAndCronJob: a Job whose first attempt fails completes; a CronJob
// runs once a minute, each run completing; berth get shows both.
func TestJobAndCronJob(t *testing.T) {
	c := env.NewCluster(t, map[string]string{"batch.yaml": batchApp()})
	ctx := context.Background()
	c.Eventually("the Job complete after a failed attempt", 2*time.Minute, func() error {
		jobs, err := c.Client.Jobs(ctx)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.Name == "second-try" {
				if j.Status.Condition != state.JobComplete {
					return fmt.Errorf("status %+v", j.Status)
				}
				return nil
			}
		}
		return fmt.Errorf("no run of second-try in %d jobs", len(jobs))
	})
	for _, p := range c.Pods() {
		if p.Deployment == "second-try" && (p.Status.Phase != state.PodSucceeded || p.Status.Restarts != 1) {
			t.Errorf("the Job's pod: phase %s, %d restarts; want Succeeded after 1", p.Status.Phase, p.Status.Restarts)
		}
	}

	var scheduled []time.Time
	c.Eventually("two completed runs of the CronJob", 3*time.Minute, func() error {
		jobs, err := c.Client.Jobs(ctx)
		if err != nil {
			return err
		}
		scheduled = scheduled[:0]
		for _, j := range jobs {
			if j.CronJob == "tick" && j.Status.Condition == state.JobComplete {
				scheduled = append(scheduled, j.ScheduledTime)
			}
		}
		if len(scheduled) < 2 {
			return fmt.Errorf("%d completed runs", len(scheduled))
		}
		return nil
	})
	slices.SortFunc(scheduled, time.Time.Compare)
	for i := 1; i < len(scheduled); i++ {
		if d := scheduled[i].Sub(scheduled[i-1]); d != time.Minute {
			t.Errorf("runs scheduled %s apart, want a minute: %v", d, scheduled)
		}
	}
	out, err := c.Berth("get", "jobs")
	if err != nil || !strings.Contains(out, "second-try") || !strings.Contains(out, "Complete") {
		t.Errorf("berth get jobs: %v\n%s", err, out)
	}
	if out, err = c.Berth("get", "cronjobs"); err != nil || !strings.Contains(out, "* * * * *") {
		t.Errorf("berth get cronjobs: %v\n%s", err, out)
	}
}

// TestDaemonSetOnLaterNode: a DaemonSet runs on the one node there is, and
// on a second that joins later.
func TestDaemonSetOnLaterNode(t *testing.T) {
	n := env.NewNodeNet(t, fmt.Sprintf("bds%d", os.Getpid()%100000), "10.253.1")
	n.AddAgent("n1")
	n.ReadyNodes(1, time.Minute)
	n.Commit(map[string]string{"ds.yaml": n.DaemonSet("logger")})
	readyOn := func(want ...string) func() error {
		return func() error {
			pods, _, err := n.Admin.Pods(context.Background(), "", nil)
			if err != nil {
				return err
			}
			var on []string
			for _, p := range pods {
				if p.OwnerKind == "DaemonSet" && p.Status.Ready {
					on = append(on, p.NodeName)
				}
			}
			slices.Sort(on)
			if !slices.Equal(on, want) {
				return fmt.Errorf("ready on %v", on)
			}
			return nil
		}
	}
	harness.Eventually(t, "the DaemonSet ready on n1", 3*time.Minute, readyOn("n1"))
	n.AddAgent("n2")
	harness.Eventually(t, "the DaemonSet ready on n1 and n2", 2*time.Minute, readyOn("n1", "n2"))
	if out, err := exec.Command(env.Bin, "get", "daemonsets", "--config", n.Master.Data+"/admin.conf").CombinedOutput(); err != nil ||
		!strings.Contains(strings.Join(strings.Fields(string(out)), " "), "apps logger 2 2 2 2 <none>") {
		t.Errorf("berth get daemonsets: %v\n%s", err, out)
	}
}
