package reconcile

import (
	"slices"
	"strconv"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// The node constraints beyond room and nodeSelector, as kube-scheduler's
// plugins of the same names have them: TaintToleration, NodeAffinity,
// InterPodAffinity and PodTopologySpread. Each filter says why a node does
// not fit; each score ranks the nodes that do.

// taintDiskPressure is the taint Kubernetes puts on a node under disk
// pressure; berth's nodes carry no other kind a pod could tolerate.
const taintDiskPressure = "node.kubernetes.io/disk-pressure"

// tolerated reports whether the pod may go to node as far as its taints
// go: each NoSchedule taint needs a toleration.
func tolerated(spec *objects.PodSpec, n *state.Node) bool {
	if !n.DiskPressure {
		return true
	}
	return slices.ContainsFunc(spec.Tolerations, func(t objects.Toleration) bool {
		keyOK := t.Key == taintDiskPressure || (t.Key == "" && t.Operator == "Exists")
		return keyOK && (t.Effect == "" || t.Effect == "NoSchedule") && (t.Operator == "Exists" || t.Value == "")
	})
}

// nodeAffinity reports whether the node meets the pod's required node
// affinity (any one term), and the weight of the preferred terms it meets.
func nodeAffinity(spec *objects.PodSpec, n *state.Node) (ok bool, score int) {
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return true, 0
	}
	na := a.NodeAffinity
	if r := na.Required; r != nil && !slices.ContainsFunc(r.NodeSelectorTerms, func(t objects.NodeSelectorTerm) bool { return termMatches(t, n) }) {
		return false, 0
	}
	for _, p := range na.Preferred {
		if termMatches(p.Preference, n) {
			score += int(p.Weight)
		}
	}
	return true, score
}

// termMatches: every expression on the node's labels, every field on its
// name. A term with neither matches no node, as in Kubernetes.
func termMatches(t objects.NodeSelectorTerm, n *state.Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for _, e := range t.MatchExpressions {
		v, has := n.Labels[e.Key]
		if !requirement(e, v, has) {
			return false
		}
	}
	for _, f := range t.MatchFields {
		if !requirement(f, n.Name, true) {
			return false
		}
	}
	return true
}

func requirement(e objects.NodeSelectorRequirement, v string, has bool) bool {
	switch e.Operator {
	case "In":
		return has && slices.Contains(e.Values, v)
	case "NotIn":
		return !has || !slices.Contains(e.Values, v)
	case "Exists":
		return has
	case "DoesNotExist":
		return !has
	case "Gt", "Lt":
		if !has || len(e.Values) != 1 {
			return false
		}
		a, err1 := strconv.ParseInt(v, 10, 64)
		b, err2 := strconv.ParseInt(e.Values[0], 10, 64)
		return err1 == nil && err2 == nil && (e.Operator == "Gt" && a > b || e.Operator == "Lt" && a < b)
	}
	return false
}

// cluster is what pod affinity and spreading look at: the nodes, by name,
// and the live pods on each, those placed in this pass included.
type cluster struct {
	nodes map[string]*state.Node
	pods  map[string][]*state.Pod
}

func (c *cluster) place(p *state.Pod, node string) { c.pods[node] = append(c.pods[node], p) }

// matching counts, by topology value of key, the pods the term selects
// for pod p (the term's namespaces, or p's).
func (c *cluster) matching(p *state.Pod, sel *objects.LabelSelector, namespaces []string, key string) map[string]int {
	counts := map[string]int{}
	for node, pods := range c.pods {
		n := c.nodes[node]
		if n == nil {
			continue
		}
		domain, ok := n.Labels[key]
		if !ok {
			continue
		}
		for _, q := range pods {
			if q != p && inNamespaces(q, p, namespaces) && sel != nil && sel.Matches(q.Labels) {
				counts[domain]++
			}
		}
	}
	return counts
}

func inNamespaces(q, p *state.Pod, namespaces []string) bool {
	if len(namespaces) == 0 {
		return q.Namespace == p.Namespace
	}
	return slices.Contains(namespaces, q.Namespace)
}

// podAffinity filters on the required terms (affinity: a selected pod in
// the node's domain, or none anywhere and the pod selects itself, so the
// first of a group can land; anti-affinity: no selected pod there) and
// scores the preferred ones.
func (c *cluster) podAffinity(p *state.Pod, n *state.Node) (ok bool, why string, score int) {
	a := p.Spec.Affinity
	if a == nil {
		return true, "", 0
	}
	if pa := a.PodAffinity; pa != nil {
		for _, t := range pa.Required {
			counts := c.matching(p, t.LabelSelector, t.Namespaces, t.TopologyKey)
			domain, has := n.Labels[t.TopologyKey]
			first := len(counts) == 0 && t.LabelSelector != nil && t.LabelSelector.Matches(p.Labels)
			if !first && (!has || counts[domain] == 0) {
				return false, "pod affinity", 0
			}
		}
		for _, w := range pa.Preferred {
			t := w.PodAffinityTerm
			if d, has := n.Labels[t.TopologyKey]; has && c.matching(p, t.LabelSelector, t.Namespaces, t.TopologyKey)[d] > 0 {
				score += int(w.Weight)
			}
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		for _, t := range pa.Required {
			if d, has := n.Labels[t.TopologyKey]; has && c.matching(p, t.LabelSelector, t.Namespaces, t.TopologyKey)[d] > 0 {
				return false, "pod anti-affinity", 0
			}
		}
		for _, w := range pa.Preferred {
			t := w.PodAffinityTerm
			if d, has := n.Labels[t.TopologyKey]; has && c.matching(p, t.LabelSelector, t.Namespaces, t.TopologyKey)[d] > 0 {
				score -= int(w.Weight)
			}
		}
	}
	return true, "", score
}

// spread applies topologySpreadConstraints over the candidate nodes'
// domains: a DoNotSchedule constraint filters out a node where one more
// pod would exceed maxSkew over the least loaded domain; a ScheduleAnyway
// one scores such a node down.
func (c *cluster) spread(p *state.Pod, n *state.Node, candidates []*state.Node) (ok bool, score int) {
	for _, t := range p.Spec.TopologySpreadConstraints {
		domain, has := n.Labels[t.TopologyKey]
		if !has {
			if t.WhenUnsatisfiable == "DoNotSchedule" {
				return false, 0
			}
			continue
		}
		counts := c.matching(p, t.LabelSelector, nil, t.TopologyKey)
		least := -1
		for _, m := range candidates {
			if d, ok := m.Labels[t.TopologyKey]; ok && (least < 0 || counts[d] < least) {
				least = counts[d]
			}
		}
		if counts[domain]+1-max(least, 0) > int(t.MaxSkew) {
			if t.WhenUnsatisfiable == "DoNotSchedule" {
				return false, 0
			}
			score -= counts[domain] + 1 - least
		}
	}
	return true, score
}
