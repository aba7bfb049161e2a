package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/berth/berth/test/harness"
)

// BenchmarkNodeLoss times, per iteration, from SIGKILL of an agent (its
// node cut off the network at once) to its Deployment's three pods ready
// on the other two of three nodes. "before" runs the timeouts berth had
// before issue 14 (5 s heartbeats, 20 s grace, 30 s eviction), "now" the
// defaults. The lost node is put back and its agent restarted between
// iterations, untimed. Run it with -benchtime 10x.
func BenchmarkNodeLoss(b *testing.B) {
	env := rolloutEnv(b)
	for i, c := range []struct {
		name         string
		master, node []string
	}{
		{"before", []string{"--node-grace", "20s", "--node-eviction", "30s"}, []string{"--heartbeat-interval", "5s"}},
		{"now", nil, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := env.NewNodeNet(b, fmt.Sprintf("bnl%d%d", i, os.Getpid()%10000), fmt.Sprintf("10.254.%d", i), c.master...)
			var agents []*harness.Agent
			for _, name := range []string{"n1", "n2", "n3"} {
				agents = append(agents, n.AddAgent(name, c.node...))
			}
			n.ReadyNodes(3, time.Minute)
			n.Commit(map[string]string{"web.yaml": n.Deployment("web", 3)})
			n.ReadyPods("web", 3, "", 3*time.Minute)
			var took []time.Duration
			for b.Loop() {
				b.StopTimer()
				victim := busiest(b, n, agents)
				b.StartTimer()
				took = append(took, n.LoseNode(victim, "web", 3, 3*time.Minute))
				b.StopTimer()
				n.Restore(victim)
				n.ReadyNodes(3, time.Minute)
				harness.Eventually(b, "the old pods stopped", time.Minute, func() error {
					if k := len(victim.Tasks()); k > 0 {
						return fmt.Errorf("%d containers run on %s", k, victim.Name)
					}
					return nil
				})
				b.StartTimer()
			}
			b.ReportMetric(float64(percentile(took, 50).Milliseconds()), "p50-ms")
			b.ReportMetric(float64(percentile(took, 100).Milliseconds()), "max-ms")
		})
	}
}

// busiest is the agent whose node runs the most pods: losing it costs the
// most.
func busiest(b *testing.B, n *harness.NodeNet, agents []*harness.Agent) *harness.Agent {
	pods, _, err := n.Admin.Pods(b.Context(), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range pods {
		count[p.NodeName]++
	}
	best := agents[0]
	for _, a := range agents[1:] {
		if count[a.Name] > count[best.Name] {
			best = a
		}
	}
	return best
}
