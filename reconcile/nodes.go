package reconcile

import (
	"fmt"
	"sort"
	"time"

	"github.com/berth/berth/appliance/state"
)

// NodeTimeouts are the node lifecycle's clocks.
type NodeTimeouts struct {
	// Grace is how long a node may go without a heartbeat before it is
	// marked NotReady (Kubernetes: 40 s).
	Grace time.Duration
	// Eviction is how long a node stays NotReady before its pods are
	// deleted so the Deployments recreate them elsewhere (Kubernetes: 5 min).
	Eviction time.Duration
}

// DefaultNodeTimeouts are shorter than Kubernetes' because berth clusters
// are small and a lost node's pods should come back in under a minute.
var DefaultNodeTimeouts = NodeTimeouts{Grace: 20 * time.Second, Eviction: 30 * time.Second}

// Nodes marks nodes NotReady when their last heartbeat (kept in the leader's
// memory, as Nomad does) is older than the grace period, and deletes the
// pods of nodes NotReady for longer than the eviction timeout. A node the
// leader has not heard from since it took office counts from since: a beat
// from an earlier term of this master (or any older one) says nothing about
// the time it did not lead, when the node beat to another master.
func Nodes(s *state.State, heartbeats map[string]time.Time, since, now time.Time, t NodeTimeouts) []state.Command {
	var cmds []state.Command
	names := make([]string, 0, len(s.Nodes))
	for name := range s.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := s.Nodes[name]
		last := heartbeats[name]
		if last.Before(since) {
			last = since
		}
		if n.Ready && now.Sub(last) > t.Grace {
			cmds = append(cmds, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: name, Ready: false, Time: now,
				Reason: fmt.Sprintf("no heartbeat for %s", now.Sub(last).Round(time.Second))}))
			continue
		}
		if !n.Ready && now.Sub(n.Transition) > t.Eviction {
			for p := range s.Pods.OnNode(name) { // in key order
				cmds = append(cmds, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: p.Key()}))
			}
		}
	}
	return cmds
}
