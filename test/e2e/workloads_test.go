package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

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
