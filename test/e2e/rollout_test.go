package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/test/harness"
)

// rolloutApp is Deployment default/web of two replicas of image, whose
// rollout must progress within 20 s.
func rolloutApp(image, version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  progressDeadlineSeconds: 20
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: %s
        env: [{name: VERSION, value: %q}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
`, image, version)
}

// TestRolloutStatus: `berth rollout status` on real containerd exits 0
// once a rollout is done and `get revisions` then shows how long the
// revision took to converge; a rollout of an image that does not exist
// makes it exit 1 at the progress deadline, `status` shows it stuck and
// `rollout history` both commits.
func TestRolloutStatus(t *testing.T) {
	c := newTwoNodes(t, fmt.Sprintf("bro%d", os.Getpid()%100000), "10.242.0")
	conf := filepath.Join(c.master.Data, "admin.conf")
	berth := func(args ...string) (string, int) {
		out, err := exec.Command(env.Bin, append(args, "--config", conf)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	// applied waits until the master runs the repository's head.
	applied := func() string {
		head := c.repo.git("rev-parse", "HEAD")
		harness.Eventually(t, "head applied", time.Minute, func() error {
			st, err := c.admin.Status(context.Background())
			if err == nil && st.Commit != head {
				err = fmt.Errorf("commit %s runs", st.Commit)
			}
			return err
		})
		return head
	}

	c.commit(t, "web.yaml", rolloutApp(c.image, "1"), "web 1")
	good := applied()
	out, code := berth("rollout", "status", "deployment/web", "--timeout", "2m")
	if code != 0 || !strings.Contains(out, `deployment "web" successfully rolled out`) {
		t.Fatalf("good rollout: exit %d\n%s", code, out)
	}
	converged := regexp.MustCompile(regexp.QuoteMeta(good[:10]) + `\s+applied\s+\d+\s+\S+\s+[0-9.]+m?s\s+[0-9.]+m?s\s`)
	harness.Eventually(t, "a convergence time", 30*time.Second, func() error {
		if out, _ := berth("get", "revisions"); !converged.MatchString(out) {
			return fmt.Errorf("no convergence time:\n%s", out)
		}
		return nil
	})

	registry, _, _ := strings.Cut(c.image, "/")
	c.commit(t, "web.yaml", rolloutApp(registry+"/berth/does-not-exist:1", "2"), "web 2, an image that is not there")
	applied()
	start := time.Now()
	out, code = berth("rollout", "status", "deployment/web", "--timeout", "2m")
	if code != 1 || !strings.Contains(out, `deployment "web" exceeded its progress deadline`) {
		t.Fatalf("stuck rollout: exit %d after %s\n%s", code, time.Since(start), out)
	}
	out, _ = berth("status")
	if !regexp.MustCompile(`rollout: +deployment default/web: \d/2 ready, \d/2 updated, ProgressDeadlineExceeded`).MatchString(out) {
		t.Errorf("status:\n%s", out)
	}
	out, _ = berth("get", "revisions")
	if !strings.Contains(out, "never (deadline)") {
		t.Errorf("get revisions:\n%s", out)
	}
	out, code = berth("rollout", "history", "deployment/web")
	if code != 0 || !regexp.MustCompile(`(?m)^1\s+`+good[:10]+`\s+created\s+superseded\s+[0-9.]+m?s\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2\s+\S+\s+changed\s+applied\s+never \(deadline\)`).MatchString(out) {
		t.Errorf("rollout history: exit %d\n%s", code, out)
	}
}
