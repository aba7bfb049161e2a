package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// BenchmarkPodStatusUpdates measures pod status updates per second through
// the FSM's pure Apply, the cost every member pays for every agent report,
// on a state of 10,000 to 150,000 pods on 250 nodes, in batches of 100
// updates (one Raft entry each). Beside it, in the same run, the write path
// berth had before its pods moved to go-memdb: the batch copied the whole
// pod map, then decoded and set each update (copy-on-write per batch).
//
//	go test ./bench/ -run '^$' -bench PodStatusUpdates -benchtime 20x
func BenchmarkPodStatusUpdates(b *testing.B) {
	const batch = 100
	for _, pods := range []int{10_000, 50_000, 150_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			s := podState(b, pods, 250)
			updates := func(i int) []state.Command {
				cmds := make([]state.Command, batch)
				for j := range cmds {
					k := (i*batch + j) % pods
					cmds[j] = state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: podKey(k),
						Status: state.PodStatus{Phase: state.PodRunning, Ready: i%2 == 0, IP: "10.244.0.2"}})
				}
				return cmds
			}
			b.Run("memdb", func(b *testing.B) {
				start := time.Now()
				for i := range b.N {
					if err := state.Apply(s, updates(i)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "updates/s")
			})
			b.Run("map-copy", func(b *testing.B) {
				m := map[string]*state.Pod{}
				for p := range s.Pods.All() {
					m[p.Key()] = p
				}
				start := time.Now()
				for i := range b.N {
					next := maps.Clone(m)
					for _, c := range updates(i) {
						var u state.PodStatusUpdate
						if err := json.Unmarshal(c.Payload, &u); err != nil {
							b.Fatal(err)
						}
						p := *next[u.Key]
						p.Status = u.Status
						next[u.Key] = &p
					}
					m = next
				}
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "updates/s")
			})
		})
	}
}

func podKey(i int) string { return fmt.Sprintf("ns%d/pod-%d", i%50, i) }

// podState is a state of n pods bound round-robin to nodes nodes, built
// through Apply in large batches.
func podState(b *testing.B, n, nodes int) *state.State {
	b.Helper()
	s := &state.State{}
	var cmds []state.Command
	for i := range nodes {
		cmds = append(cmds, state.NewCommand(state.CmdRegisterNode, state.Node{Name: fmt.Sprintf("node-%d", i), Ready: true}))
	}
	if err := state.Apply(s, cmds); err != nil {
		b.Fatal(err)
	}
	cmds = cmds[:0]
	for i := range n {
		ns, _, _ := cutKey(podKey(i))
		p := state.Pod{Namespace: ns, Name: fmt.Sprintf("pod-%d", i), Deployment: "web", TemplateHash: "h1",
			Labels: map[string]string{"app": "web"}, Spec: objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "web:1"}}}}
		cmds = append(cmds, state.NewCommand(state.CmdCreatePod, p),
			state.NewCommand(state.CmdBindPod, state.PodBinding{Key: p.Key(), NodeName: fmt.Sprintf("node-%d", i%nodes)}))
		if len(cmds) >= 10_000 || i == n-1 {
			if err := state.Apply(s, cmds); err != nil {
				b.Fatal(err)
			}
			cmds = cmds[:0]
		}
	}
	return s
}

func cutKey(k string) (ns, name string, ok bool) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}
