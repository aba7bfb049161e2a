package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Schedule binds every unbound pod to a node, as kube-scheduler's default
// profile would in miniature. Filter: the node is ready and not cordoned, its
// taints (disk pressure) are tolerated, it carries the pod's nodeSelector labels and
// meets its required node and pod (anti-)affinity and its
// DoNotSchedule topology spread, and it has room for the pod's requests
// next to what is already bound there. Score: the preferred affinities'
// weights and ScheduleAnyway spreading, then fewest pods of the same
// Deployment (spreading replicas), then the lowest share of requested
// resources, then the name, so the choice is deterministic. Pods that fit
// nowhere stay pending with a reason.
func Schedule(s *state.State) []state.Command {
	used := map[string]*resources{}
	spread := map[string]int{} // node/namespace/deployment -> pods
	c := &cluster{nodes: s.Nodes, pods: map[string][]*state.Pod{}}
	var nodes []*state.Node
	for _, n := range s.Nodes {
		used[n.Name] = &resources{}
		if n.Ready && !n.Unschedulable {
			nodes = append(nodes, n)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	var pending []*state.Pod
	users := map[string][]string{} // claim -> the bound pods that use it
	for p := range s.Pods.All() {
		if p.NodeName != "" && !p.Finished() {
			for _, name := range p.Spec.Claims() {
				k := state.PodKey(p.Namespace, name)
				users[k] = append(users[k], p.Key())
			}
		}
		if p.NodeName == "" {
			if !p.Terminating {
				pending = append(pending, p)
			}
			continue
		}
		if p.Finished() {
			continue // a Job's pod that ran to its end holds nothing
		}
		if u := used[p.NodeName]; u != nil {
			u.add(requests(&p.Spec))
		}
		if !p.Terminating {
			c.place(p, p.NodeName)
		}
		spread[spreadKey(p.NodeName, p)]++
	}

	var cmds []state.Command
	unschedulable := func(p *state.Pod, msg string) {
		if p.Status.Reason != "Unschedulable" || p.Status.Message != msg {
			st := p.Status
			st.Phase, st.Reason, st.Message = state.PodPending, "Unschedulable", msg
			cmds = append(cmds, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: p.Key(), Status: st}))
		}
	}
	boundNow := map[string]string{} // claim -> the node this pass binds it to
	claimed := map[string]int64{}   // node -> what the claims bound this pass ask
	for _, p := range sortedPods(pending) {
		if ext := extended(&p.Spec); len(ext) > 0 {
			// No berth node advertises devices (no device plugins).
			unschedulable(p, fmt.Sprintf("0/%d nodes are available: no node offers %s", len(nodes), strings.Join(ext, ", ")))
			continue
		}
		pin, unbound, why := podClaims(s, p, users, boundNow)
		if why != "" {
			unschedulable(p, fmt.Sprintf("0/%d nodes are available: %s", len(nodes), why))
			continue
		}
		var need int64
		for _, c := range unbound {
			need += c.Bytes
		}
		req := requests(&p.Spec)
		var best *state.Node
		var bestScore, bestSpread int
		var bestShare float64
		unfit := map[string]int{}
		for _, n := range nodes {
			u := used[n.Name]
			affine, nodeScore := nodeAffinity(&p.Spec, n)
			podsOK, podWhy, podScore := c.podAffinity(p, n)
			spreadOK, spreadScore := c.spread(p, n, nodes)
			switch {
			case pin != "" && n.Name != pin:
				unfit["the node of its claims"]++
				continue
			case need > 0 && n.FreeBytes > 0 && claimed[n.Name]+need > n.FreeBytes:
				unfit["free space for its claims"]++
				continue
			case !tolerated(&p.Spec, n):
				unfit["an untolerated taint (disk pressure)"]++
				continue
			case !selects(p.Spec.NodeSelector, n.Labels) || !affine:
				unfit["node selector"]++
				continue
			case !podsOK:
				unfit[podWhy]++
				continue
			case !spreadOK:
				unfit["topology spread"]++
				continue
			case n.CPUMilli > 0 && u.cpu+req.cpu > n.CPUMilli:
				unfit["cpu"]++
				continue
			case n.MemoryBytes > 0 && u.mem+req.mem > n.MemoryBytes:
				unfit["memory"]++
				continue
			case n.EphemeralBytes > 0 && u.disk+req.disk > n.EphemeralBytes:
				unfit["ephemeral-storage"]++
				continue
			}
			score := nodeScore + podScore + spreadScore
			sp := spread[spreadKey(n.Name, p)]
			share := fraction(u.cpu+req.cpu, n.CPUMilli) + fraction(u.mem+req.mem, n.MemoryBytes)
			if best == nil || score > bestScore || score == bestScore && (sp < bestSpread || (sp == bestSpread && share < bestShare)) {
				best, bestScore, bestSpread, bestShare = n, score, sp, share
			}
		}
		if best == nil {
			msg := fmt.Sprintf("0/%d nodes are available", len(nodes))
			if unfit["the node of its claims"] > 0 {
				msg += fmt.Sprintf(", %d are not the node of its claims", unfit["the node of its claims"])
			}
			for _, why := range []string{"node selector", "cpu", "memory", "ephemeral-storage", "free space for its claims"} {
				if unfit[why] > 0 {
					msg += fmt.Sprintf(", %d lack %s", unfit[why], why)
				}
			}
			for _, why := range []string{"pod affinity", "pod anti-affinity", "topology spread", "an untolerated taint (disk pressure)"} {
				if unfit[why] > 0 {
					msg += fmt.Sprintf(", %d fail %s", unfit[why], why)
				}
			}
			unschedulable(p, msg)
			continue
		}
		for _, c := range unbound {
			b := *c
			b.NodeName = best.Name
			cmds = append(cmds, state.NewCommand(state.CmdPutClaim, b))
			boundNow[b.Key()] = best.Name
			claimed[best.Name] += b.Bytes
		}
		for _, name := range p.Spec.Claims() {
			k := state.PodKey(p.Namespace, name)
			users[k] = append(users[k], p.Key())
		}
		used[best.Name].add(req)
		spread[spreadKey(best.Name, p)]++
		c.place(p, best.Name)
		cmds = append(cmds, state.NewCommand(state.CmdBindPod, state.PodBinding{Key: p.Key(), NodeName: best.Name}))
	}
	return cmds
}

// podClaims says where the pod's claims put it: on the node they are
// bound to (pin, "" for any), with the claims still to bind, or nowhere
// yet, and why.
func podClaims(s *state.State, p *state.Pod, users map[string][]string, boundNow map[string]string) (pin string, unbound []*state.Claim, why string) {
	for _, name := range p.Spec.Claims() {
		c := s.Claims[state.PodKey(p.Namespace, name)]
		switch {
		case c == nil:
			return "", nil, fmt.Sprintf("persistentvolumeclaim %q not found", name)
		case c.Released:
			return "", nil, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
		}
		if c.OncePod() {
			for _, u := range users[c.Key()] {
				if u != p.Key() {
					return "", nil, fmt.Sprintf("persistentvolumeclaim %q is ReadWriteOncePod and pod %s uses it", name, u)
				}
			}
		}
		node := c.NodeName
		if node == "" {
			node = boundNow[c.Key()]
		}
		switch {
		case node == "":
			if !slices.Contains(unbound, c) {
				unbound = append(unbound, c)
			}
			continue
		case pin != "" && node != pin:
			return "", nil, fmt.Sprintf("its claims are on two nodes, %s and %s", pin, node)
		}
		pin = node
		switch n := s.Nodes[node]; {
		case n == nil:
			why = "node %s, which is gone"
		case !n.Ready:
			why = "node %s, which is not ready"
		case n.Unschedulable:
			why = "node %s, which is cordoned"
		}
		if why != "" {
			return "", nil, fmt.Sprintf("persistentvolumeclaim %q has its data on "+why, name, node)
		}
	}
	return pin, unbound, ""
}

// spreadKey counts the pods of one owner on one node.
func spreadKey(node string, p *state.Pod) string {
	return node + "/" + p.Namespace + "/" + p.OwnerKind + "/" + p.Deployment
}

func fraction(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// requests sums a pod's CPU (millicores) and memory (bytes) requests. A
// container with limits but no requests requests its limits, as in
// Kubernetes. Quantities were validated by the schema; one that still fails
// to parse counts as zero.
// extended lists the extended resources (nvidia.com/gpu) the pod asks for,
// in requests or limits, sorted.
func extended(spec *objects.PodSpec) []string {
	names := map[string]bool{}
	for _, c := range spec.AllContainers() {
		for _, l := range []objects.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			for name, q := range l.Extended {
				if v, err := q.Milli(); err != nil || v > 0 {
					names[name] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// resources are millicores, and bytes of memory and of disk.
type resources struct{ cpu, mem, disk int64 }

func (r *resources) add(o resources) { r.cpu, r.mem, r.disk = r.cpu+o.cpu, r.mem+o.mem, r.disk+o.disk }

// requests is what the pod needs of a node, as Kubernetes counts it: the
// sum of its containers' requests, or the largest init container's if more
// (init containers run one at a time, before the others).
func requests(spec *objects.PodSpec) resources { return podSum(spec, request) }

// limits is what the pod may use, summed the same way; a container
// without a limit adds nothing (as kubectl describe node sums them).
func limits(spec *objects.PodSpec) resources { return podSum(spec, limit) }

// PodResources are a pod's requests and limits as the scheduler counts
// them: CPU in millicores, memory and ephemeral storage in bytes.
func PodResources(spec *objects.PodSpec) (reqCPU, reqMem, limCPU, limMem int64) {
	r, l := requests(spec), limits(spec)
	return r.cpu, r.mem, l.cpu, l.mem
}

func podSum(spec *objects.PodSpec, one func(*objects.Container) resources) resources {
	var sum resources
	for _, c := range spec.Containers {
		sum.add(one(&c))
	}
	for _, c := range spec.InitContainers {
		r := one(&c)
		sum = resources{max(sum.cpu, r.cpu), max(sum.mem, r.mem), max(sum.disk, r.disk)}
	}
	return sum
}

// request is one container's request; an unset one is its limit, as the
// API server defaults it.
func request(c *objects.Container) resources {
	return quantities(c.Resources.Requests, c.Resources.Limits)
}

func limit(c *objects.Container) resources {
	return quantities(c.Resources.Limits, objects.ResourceList{})
}

// quantities are r's, each unset one its fallback's.
func quantities(r, fallback objects.ResourceList) resources {
	q := func(v, or objects.Quantity, scale func(objects.Quantity) (int64, error)) int64 {
		if v == "" {
			v = or
		}
		n, _ := scale(v) // the loader checked the grammar; "" is 0
		return n
	}
	return resources{q(r.CPU, fallback.CPU, objects.Quantity.Milli), q(r.Memory, fallback.Memory, objects.Quantity.Value), q(r.EphemeralStorage, fallback.EphemeralStorage, objects.Quantity.Value)}
}
