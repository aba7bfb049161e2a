package reconcile

import (
	"maps"
	"slices"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// KindDaemonSet is the OwnerKind of a DaemonSet's pods.
const KindDaemonSet = "DaemonSet"

// DaemonSets keeps one pod of each DaemonSet on every ready node its
// nodeSelector matches, nodes that join later included, as Kubernetes'
// DaemonSet controller does. Pods are bound to their node when created
// (cordons and disk pressure do not keep them off, as the tolerations
// Kubernetes gives them). A node that is not ready keeps its pods: they
// are not evicted with a lost node's. A node the selector no longer
// matches, or that is gone, loses them. A new template rolls out node by
// node: under RollingUpdate, at most maxUnavailable nodes without an
// available pod, or with maxSurge the new pod starts next to the old one
// on at most maxSurge nodes at a time; under OnDelete only pods deleted
// by hand are replaced.
func DaemonSets(s *state.State, d *Desired, now time.Time) []state.Command {
	var cmds []state.Command
	wanted := map[string]bool{}
	planned := map[string]bool{}
	for _, ds := range d.DaemonSets {
		wanted[state.PodKey(ds.Metadata.Namespace, ds.Metadata.Name)] = true
		cmds = append(cmds, daemonSet(s, ds, planned, now)...)
	}
	for p := range s.Pods.All() {
		if p.OwnerKind == KindDaemonSet && !wanted[state.PodKey(p.Namespace, p.Deployment)] {
			cmds = append(cmds, stop(s, p)...)
		}
	}
	return cmds
}

// Selects says whether a nodeSelector matches a node's labels.
func Selects(selector, labels map[string]string) bool { return selects(selector, labels) }

func daemonSet(s *state.State, ds *objects.DaemonSet, planned map[string]bool, now time.Time) []state.Command {
	var cmds []state.Command
	hash := TemplateHash(ds.Spec.Template)
	byNode := map[string][]*state.Pod{}
	for p := range s.Pods.OfOwner(KindDaemonSet, ds.Metadata.Namespace, ds.Metadata.Name) {
		if !p.Terminating {
			byNode[p.NodeName] = append(byNode[p.NodeName], p)
		}
	}
	minReady := time.Duration(ds.Spec.MinReadySeconds) * time.Second
	available := func(p *state.Pod) bool {
		return p.Status.Ready && !p.Status.ReadySince.IsZero() && now.Sub(p.Status.ReadySince) >= minReady
	}
	var eligible []string
	for _, name := range slices.Sorted(maps.Keys(s.Nodes)) {
		n := s.Nodes[name]
		if selects(ds.Spec.Template.Spec.NodeSelector, n.Labels) {
			if n.Ready {
				eligible = append(eligible, name)
			}
			continue
		}
		for _, p := range byNode[name] {
			cmds = append(cmds, stop(s, p)...) // the selector no longer matches
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byNode)) {
		if s.Nodes[name] == nil {
			for _, p := range byNode[name] {
				cmds = append(cmds, stop(s, p)...)
			}
		}
	}
	t := podTemplate{Kind: KindDaemonSet, Prefix: ds.Metadata.Name, Hash: hash, Labels: map[string]string{}, Spec: ds.Spec.Template.Spec}
	if m := ds.Spec.Template.Metadata; m != nil {
		maps.Copy(t.Labels, m.Labels)
		t.Annotations = m.Annotations
	}
	t.Labels["controller-revision-hash"] = hash
	place := func(node string) {
		t.Node = node
		cmds = append(cmds, create(s, ds.Metadata, t, 1, planned, now)...)
	}

	surge, unavailable := 0, 0
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		surge, unavailable = resolve(ru.MaxSurge, len(eligible), true), resolve(ru.MaxUnavailable, len(eligible), false)
		if surge == 0 && unavailable == 0 {
			unavailable = 1
		}
	}
	// What each eligible node has: the current pod, the old ones.
	type nodePods struct {
		name         string
		current, old []*state.Pod
	}
	var nodes []nodePods
	down, surging := 0, 0 // nodes without an available pod; nodes running both
	for _, name := range eligible {
		np := nodePods{name: name}
		for _, p := range byNode[name] {
			if p.TemplateHash == hash {
				np.current = append(np.current, p)
			} else {
				np.old = append(np.old, p)
			}
		}
		if len(np.current) > 1 { // one pod per node
			cmds = append(cmds, shrink(s, np.current, len(np.current)-1)...)
			np.current = np.current[:1]
		}
		if !slices.ContainsFunc(append(np.current, np.old...), available) {
			down++
		}
		if len(np.current) > 0 && len(np.old) > 0 {
			surging++
		}
		nodes = append(nodes, np)
	}
	for _, np := range nodes {
		switch {
		case len(np.current) == 0 && len(np.old) == 0:
			place(np.name)
		case len(np.old) == 0 || ds.Spec.UpdateStrategy.RollingUpdate == nil:
		case len(np.current) > 0:
			// Surged: the old pods go once the new one is available.
			if available(np.current[0]) {
				for _, p := range np.old {
					cmds = append(cmds, stop(s, p)...)
				}
			}
		case !slices.ContainsFunc(np.old, available):
			// Nothing available here: replacing costs nothing.
			for _, p := range np.old {
				cmds = append(cmds, stop(s, p)...)
			}
			place(np.name)
		case surging < surge:
			surging++
			place(np.name)
		case surge == 0 && down < unavailable:
			down++
			for _, p := range np.old {
				cmds = append(cmds, stop(s, p)...)
			}
			place(np.name)
		}
	}
	return cmds
}
