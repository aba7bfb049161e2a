package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/test/harness"
)

// TestEventsInDescribe: on a real agent and containerd, a pod whose
// readiness probe fails and a pod whose image does not exist show Warning
// events at the end of `berth describe pod`, in kubectl's layout, next to
// the scheduler's and the agent's Normal ones; `berth get events` lists
// the Deployment's rollout steps.
func TestEventsInDescribe(t *testing.T) {
	n := env.NewNodeNet(t, fmt.Sprintf("bev%d", os.Getpid()%100000), "10.241.0")
	n.AddAgent("n1")
	n.ReadyNodes(1, time.Minute)
	unready := strings.Replace(n.Deployment("unready", 1), "path: /healthz", "path: /no-such-page", 1)
	missing := strings.Replace(n.Deployment("missing", 1), n.Image, n.Image+"-no-such-tag", 1)
	if unready == n.Deployment("unready", 1) || missing == n.Deployment("missing", 1) {
		t.Fatal("the workloads did not change: the harness's Deployment changed shape")
	}
	n.Commit(map[string]string{"unready.yaml": unready, "missing.yaml": missing})

	berth := func(args ...string) (string, error) {
		out, err := exec.Command(env.Bin, append(args, "--config", filepath.Join(n.Master.Data, "admin.conf"))...).CombinedOutput()
		return string(out), err
	}
	podOf := func(deployment string) (string, error) {
		pods, _, err := n.Admin.Pods(context.Background(), "", nil)
		if err != nil {
			return "", err
		}
		for _, p := range pods {
			if p.Deployment == deployment && p.NodeName != "" {
				return p.Namespace + "/" + p.Name, nil
			}
		}
		return "", fmt.Errorf("no pod of %s is bound yet", deployment)
	}
	// describe's Events section: the rows after the header and its rule,
	// squeezed to single spaces.
	events := func(deployment string, want ...string) func() error {
		return func() error {
			pod, err := podOf(deployment)
			if err != nil {
				return err
			}
			out, err := berth("describe", "pod", pod)
			if err != nil {
				return fmt.Errorf("describe pod %s: %v: %s", pod, err, out)
			}
			_, section, ok := strings.Cut(out, "\nEvents:\n")
			if !ok {
				return fmt.Errorf("describe pod %s has no Events section:\n%s", pod, out)
			}
			rows := strings.Join(strings.Fields(strings.ReplaceAll(section, "\n", " | ")), " ")
			if !strings.HasPrefix(rows, "Type Reason Age From Message | ---- ------ ---- ---- ------- |") {
				return fmt.Errorf("describe pod %s: Events not in kubectl's layout:\n%s", pod, section)
			}
			for _, w := range want {
				if !strings.Contains(rows, w) {
					return fmt.Errorf("describe pod %s: no %q in its events:\n%s", pod, w, section)
				}
			}
			return nil
		}
	}
	harness.Eventually(t, "a failed readiness probe in describe", 2*time.Minute, events("unready",
		"Normal Scheduled", "default-scheduler Successfully assigned apps/unready-",
		"Normal Started", "kubelet Started container hello",
		"Warning Unhealthy", "kubelet Readiness probe failed (container hello):"))
	harness.Eventually(t, "a failed pull in describe", 2*time.Minute, events("missing",
		"Normal Pulling", "Warning Failed", "kubelet Failed to pull image"))
	out, err := berth("get", "events", "-n", "apps")
	if err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "Normal ScalingReplicaSet deployment/unready Scaled up replica set unready-") {
		t.Errorf("get events -n apps: %v\n%s", err, out)
	}
}
