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
	// marked NotReady (Kubernetes: 50 s).
	Grace time.Duration
	// Eviction is how long a node stays NotReady before its pods are
	// deleted so the Deployments recreate them elsewhere (Kubernetes: the
	// 300 s not-ready toleration).
	Eviction time.Duration
}

// DefaultNodeTimeouts put a lost node's Deployment pods back on the other
// nodes within 20 s (docs/workloads.md says what they trade): four missed
// heartbeats of the agent's 2 s period mark a node NotReady, as
// Kubernetes waits four of its kubelet's 10 s updates, and 4 s more let a
// node that blipped come back before its pods are replaced.
var DefaultNodeTimeouts = NodeTimeouts{Grace: 8 * time.Second, Eviction: 4 * time.Second}

// Nodes marks nodes NotReady when their last heartbeat (kept in the leader's
// memory, as Nomad does) is older than the grace period, and deletes the
// pods of nodes NotReady for longer than the eviction timeout, except
// DaemonSets' and those pinned there by a claim. A node the
// leader has not heard from since it took office counts from since: a beat
// from an earlier term of this master (or any older one) says nothing about
// the time it did not lead, when the node beat to another master.
//
// While no node is ready nothing is evicted, as Kubernetes stops evicting
// in a fully disrupted zone: the pods would have nowhere to go, and the
// likelier fault is the masters' own network.
func Nodes(s *state.State, heartbeats map[string]time.Time, since, now time.Time, t NodeTimeouts) []state.Command {
	var cmds []state.Command
	names := make([]string, 0, len(s.Nodes))
	for name := range s.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	anyReady := false
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
		anyReady = anyReady || n.Ready
	}
	for _, name := range names {
		n := s.Nodes[name]
		if n.Ready || now.Sub(n.Transition) <= t.Eviction || !anyReady {
			continue
		}
		for p := range s.Pods.OnNode(name) { // in key order
			switch claim := pinnedBy(s, p); {
			case p.OwnerKind == KindDaemonSet: // they belong to the node, and wait for it
			case claim != "":
				// Its data are there: it waits for the node, and says so.
				msg := fmt.Sprintf("node %s is not ready; the pod waits for it, since the data of its claim %s are there", name, claim)
				if p.Status.Reason != "NodeLost" || p.Status.Message != msg {
					st := p.Status
					st.Ready, st.Reason, st.Message = false, "NodeLost", msg
					cmds = append(cmds, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: p.Key(), Status: st}))
				}
			default:
				cmds = append(cmds, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: p.Key()}))
			}
		}
	}
	return cmds
}

// pinnedBy names a claim of the pod whose data are on the pod's node.
func pinnedBy(s *state.State, p *state.Pod) string {
	for _, name := range p.Spec.Claims() {
		if c := s.Claims[state.PodKey(p.Namespace, name)]; c != nil && c.NodeName == p.NodeName {
			return name
		}
	}
	return ""
}
