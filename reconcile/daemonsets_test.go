package reconcile

import (
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

func daemonSetOf(name, version string) *objects.DaemonSet {
	d := &objects.DaemonSet{}
	d.APIVersion, d.Kind = "apps/v1", "DaemonSet"
	d.Metadata = objects.ObjectMeta{Name: name, Namespace: "default"}
	d.Spec.Selector.MatchLabels = map[string]string{"app": name}
	d.Spec.Template.Metadata = &objects.TemplateMeta{Labels: map[string]string{"app": name}}
	d.Spec.Template.Spec.Containers = []objects.Container{{Name: "c", Image: "agent:" + version}}
	d.Spec.UpdateStrategy.Type = "RollingUpdate"
	d.Spec.UpdateStrategy.RollingUpdate = &objects.RollingUpdateDeployment{MaxUnavailable: objects.IntOrString{Int: 1}}
	return d
}

// daemonPods maps node -> the DaemonSet's live pods there.
func (h *harness) daemonPods(name string) map[string][]*state.Pod {
	out := map[string][]*state.Pod{}
	for p := range h.s.Pods.OfOwner(KindDaemonSet, "default", name) {
		if !p.Terminating {
			out[p.NodeName] = append(out[p.NodeName], p)
		}
	}
	return out
}

// One pod on every ready node the selector matches, a node that joins
// later included; a lost node keeps its DaemonSet pod while its
// Deployment pods go elsewhere.
func TestDaemonSetFollowsNodes(t *testing.T) {
	ssd := func(name string) state.Node {
		n := node(name)
		n.Labels["disk"] = "ssd"
		return n
	}
	h := newHarness(t, ssd("a"), ssd("b"), node("hdd"))
	ds := daemonSetOf("agent", "1")
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	h.commit(ds, deployment("web", 2, "1"))
	h.settle(3)
	if got := h.daemonPods("agent"); len(got) != 2 || len(got["a"]) != 1 || len(got["b"]) != 1 {
		t.Fatalf("pods by node: %v", got)
	}
	c := ssd("c")
	c.Ready = true
	h.apply(state.NewCommand(state.CmdRegisterNode, c))
	h.beats["c"] = h.now
	h.control()
	if got := h.daemonPods("agent"); len(got["c"]) != 1 {
		t.Fatalf("the node that joined later: %v", got)
	}
	// b goes silent.
	start := h.now
	for range 30 {
		h.now = h.now.Add(time.Second)
		h.beats["a"], h.beats["c"], h.beats["hdd"] = h.now, h.now, h.now
		h.apply(Nodes(h.s, h.beats, start, h.now, DefaultNodeTimeouts)...)
		h.control()
		h.agents("a", "c", "hdd")
	}
	if got := h.daemonPods("agent"); len(got["b"]) != 1 || len(got) != 3 {
		t.Fatalf("after b was lost: %v", got)
	}
	for p := range h.s.Pods.OfDeployment("default", "web") {
		if p.NodeName == "b" {
			t.Fatalf("Deployment pod %s still on the lost node", p.Name)
		}
	}
}

// A new template rolls out node by node: maxUnavailable 1 leaves at most
// one node without an available pod; maxSurge 1 (maxUnavailable 0) starts
// the new pod before the old one stops, so every node always has one.
func TestDaemonSetRollingUpdate(t *testing.T) {
	for _, tc := range []struct {
		name               string
		surge, unavailable int32
		minAvailable       int
	}{{"maxUnavailable", 0, 1, 2}, {"maxSurge", 1, 0, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, node("a"), node("b"), node("c"))
			h.commit(daemonSetOf("agent", "1"))
			h.settle(3)
			ds := daemonSetOf("agent", "2")
			ds.Spec.UpdateStrategy.RollingUpdate = &objects.RollingUpdateDeployment{MaxSurge: objects.IntOrString{Int: tc.surge}, MaxUnavailable: objects.IntOrString{Int: tc.unavailable}}
			h.commit(ds)
			hash := TemplateHash(ds.Spec.Template)
			for range 10 {
				h.control()
				covered := 0
				for _, pods := range h.daemonPods("agent") {
					for _, p := range pods {
						if p.Status.Ready {
							covered++
							break
						}
					}
				}
				if covered < tc.minAvailable {
					t.Fatalf("%d nodes with an available pod, want at least %d", covered, tc.minAvailable)
				}
				h.agents()
			}
			for node, pods := range h.daemonPods("agent") {
				if len(pods) != 1 || pods[0].TemplateHash != hash {
					t.Fatalf("node %s after the rollout: %d pods, hash %s", node, len(pods), pods[0].TemplateHash)
				}
			}
			// Removed from git, its pods go.
			h.commit()
			h.control()
			if got := h.daemonPods("agent"); len(got) != 0 {
				t.Fatalf("after removal: %v", got)
			}
		})
	}
}
