package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

func statefulSetOf(name string, replicas int32, version string) *objects.StatefulSet {
	d := deployment(name, replicas, version)
	ss := &objects.StatefulSet{}
	ss.APIVersion, ss.Kind, ss.Metadata = "apps/v1", "StatefulSet", d.Metadata
	ss.Spec.Replicas, ss.Spec.Selector, ss.Spec.Template = replicas, d.Spec.Selector, d.Spec.Template
	ss.Spec.ServiceName, ss.Spec.PodManagementPolicy = name, "OrderedReady"
	ss.Spec.UpdateStrategy.Type = "RollingUpdate"
	ss.Spec.UpdateStrategy.RollingUpdate = &struct {
		Partition int32 `json:"partition"`
	}{}
	ct := objects.ClaimTemplate{}
	ct.Metadata.Name = "data"
	ct.Spec.AccessModes = []string{"ReadWriteOnce"}
	ct.Spec.Resources.Requests.Storage = "1Gi"
	ss.Spec.VolumeClaimTemplates = []objects.ClaimTemplate{ct}
	return ss
}

// statefulPods lists the StatefulSet's live pods as name:hash-suffix
// (old or new against version's template), by name.
func (h *harness) statefulPods(ss *objects.StatefulSet) []string {
	var out []string
	hash := TemplateHash(ss.Spec.Template)
	for p := range h.s.Pods.OfOwner(KindStatefulSet, ss.Metadata.Namespace, ss.Metadata.Name) {
		v := "new"
		if p.TemplateHash != hash {
			v = "old"
		}
		if p.Terminating {
			v += "(stopping)"
		}
		out = append(out, p.Name+":"+v)
	}
	slices.Sort(out)
	return out
}

func (h *harness) wantPods(ss *objects.StatefulSet, want ...string) {
	h.t.Helper()
	if got := h.statefulPods(ss); !slices.Equal(got, want) {
		h.t.Fatalf("pods %v, want %v", got, want)
	}
}

func (h *harness) cycle() {
	h.control()
	h.agents()
	h.now = h.now.Add(time.Second)
}

// OrderedReady: one pod at a time, in order, each ready before the next;
// each its own hostname under serviceName, with the claim of its ordinal
// bound where it runs. Scaled down: from the highest, claims kept.
func TestStatefulSetOrderedScaling(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	ss := statefulSetOf("db", 3, "v1")
	h.commit(ss)
	h.control()
	h.wantPods(ss, "db-0:new")
	h.agents()
	h.control()
	h.wantPods(ss, "db-0:new", "db-1:new")
	h.control() // db-1 not ready yet: nothing more
	h.wantPods(ss, "db-0:new", "db-1:new")
	h.cycle()
	h.cycle()
	h.wantPods(ss, "db-0:new", "db-1:new", "db-2:new")
	for ord := range 3 {
		p := h.s.Pods.Get(fmt.Sprintf("default/db-%d", ord))
		claim := h.s.Claims[fmt.Sprintf("default/data-db-%d", ord)]
		if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "db" || !slices.Equal(p.Spec.Claims(), []string{"data-db-" + fmt.Sprint(ord)}) {
			t.Errorf("pod %s: hostname %q subdomain %q claims %v", p.Name, p.Spec.Hostname, p.Spec.Subdomain, p.Spec.Claims())
		}
		if claim == nil || claim.NodeName != p.NodeName || claim.Bytes != 1<<30 {
			t.Errorf("claim of %s on %s: %+v", p.Name, p.NodeName, claim)
		}
	}

	ss.Spec.Replicas = 1
	h.commit(ss)
	h.control()
	h.wantPods(ss, "db-0:new", "db-1:new", "db-2:new(stopping)")
	h.agents()
	h.control()
	h.wantPods(ss, "db-0:new", "db-1:new(stopping)")
	h.cycle()
	h.cycle()
	h.wantPods(ss, "db-0:new")
	if len(h.s.Claims) != 3 {
		t.Errorf("claims after a scale-down: %v", slices.Sorted(maps.Keys(h.s.Claims)))
	}
	// Back up: db-1 finds its claim, on its node.
	node1 := h.s.Claims["default/data-db-1"].NodeName
	ss.Spec.Replicas = 2
	h.commit(ss)
	h.cycle()
	if p := h.s.Pods.Get("default/db-1"); p == nil || p.NodeName != node1 {
		t.Errorf("db-1 again: %+v, its claim on %s", p, node1)
	}
}

func TestStatefulSetParallel(t *testing.T) {
	h := newHarness(t, node("a"))
	ss := statefulSetOf("db", 3, "v1")
	ss.Spec.PodManagementPolicy = "Parallel"
	h.commit(ss)
	h.control()
	h.wantPods(ss, "db-0:new", "db-1:new", "db-2:new")
	ss.Spec.Replicas = 0
	h.commit(ss)
	h.control()
	h.wantPods(ss, "db-0:new(stopping)", "db-1:new(stopping)", "db-2:new(stopping)")
}

// RollingUpdate from the highest ordinal, one at a time, leaving those
// below partition, which keep their template when created again (from
// another pod below it: berth keeps no history of templates).
func TestStatefulSetRollingUpdatePartition(t *testing.T) {
	h := newHarness(t, node("a"))
	ss := statefulSetOf("db", 4, "v1")
	h.commit(ss)
	for range 5 {
		h.cycle()
	}
	ss = statefulSetOf("db", 4, "v2")
	ss.Spec.UpdateStrategy.RollingUpdate.Partition = 2
	h.commit(ss)
	h.control()
	h.wantPods(ss, "db-0:old", "db-1:old", "db-2:old", "db-3:old(stopping)")
	h.agents()
	h.control()
	h.wantPods(ss, "db-0:old", "db-1:old", "db-2:old", "db-3:new")
	h.control() // db-3 not ready: db-2 waits
	h.wantPods(ss, "db-0:old", "db-1:old", "db-2:old", "db-3:new")
	for range 4 {
		h.cycle()
	}
	h.wantPods(ss, "db-0:old", "db-1:old", "db-2:new", "db-3:new")
	h.apply(state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "default/db-0"}))
	h.cycle()
	h.wantPods(ss, "db-0:old", "db-1:old", "db-2:new", "db-3:new")
	if p := h.s.Pods.Get("default/db-0"); p.Spec.Hostname != "db-0" || p.Spec.Claims()[0] != "data-db-0" || p.Labels["statefulset.kubernetes.io/pod-name"] != "db-0" {
		t.Errorf("db-0 made again from db-1's template: %+v %v", p.Spec, p.Labels)
	}
}

func TestStatefulSetOnDelete(t *testing.T) {
	h := newHarness(t, node("a"))
	ss := statefulSetOf("db", 2, "v1")
	ss.Spec.UpdateStrategy.Type, ss.Spec.UpdateStrategy.RollingUpdate = "OnDelete", nil
	h.commit(ss)
	for range 3 {
		h.cycle()
	}
	ss2 := statefulSetOf("db", 2, "v2")
	ss2.Spec.UpdateStrategy = ss.Spec.UpdateStrategy
	h.commit(ss2)
	h.cycle()
	h.cycle()
	h.wantPods(ss2, "db-0:old", "db-1:old")
	h.apply(state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "default/db-1"}))
	h.cycle()
	h.wantPods(ss2, "db-0:old", "db-1:new")
}

func claimObject(name, size string, modes ...string) *objects.PersistentVolumeClaim {
	c := &objects.PersistentVolumeClaim{}
	c.APIVersion, c.Kind = "v1", "PersistentVolumeClaim"
	c.Metadata = objects.ObjectMeta{Name: name, Namespace: "default"}
	c.Spec.AccessModes = modes
	c.Spec.Resources.Requests.Storage = objects.Quantity(size)
	return c
}

func withClaim(d *objects.Deployment, claim string) *objects.Deployment {
	d.Spec.Template.Spec.Volumes = []objects.Volume{{Name: "data", PersistentVolumeClaim: &objects.ClaimVolumeSource{ClaimName: claim}}}
	return d
}

func (h *harness) podMessages() []string {
	var out []string
	for p := range h.s.Pods.All() {
		if p.Status.Message != "" {
			out = append(out, p.Status.Message)
		}
	}
	return out
}

// A claim binds where its first pod goes, if the node has room for it,
// and pins every later pod there; a node that is not ready keeps the pods
// it pins, saying why; a ReadWriteOncePod claim takes one pod.
func TestClaimBindingAndPinning(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.apply(state.NewCommand(state.CmdSetNodeStorage, state.NodeStorage{Name: "a", FreeBytes: 1 << 30}),
		state.NewCommand(state.CmdSetNodeStorage, state.NodeStorage{Name: "b", FreeBytes: 10 << 30}))
	web := withClaim(deployment("web", 2, "v1"), "files")
	h.commit(claimObject("files", "20Gi", "ReadWriteOnce"), web)
	h.cycle()
	if msgs := h.podMessages(); len(msgs) != 2 || !strings.Contains(msgs[0], "0/2 nodes are available, 2 lack free space for its claims") {
		t.Fatalf("a claim too large: %v", msgs)
	}
	h.commit(claimObject("files", "2Gi", "ReadWriteOnce"), web)
	h.cycle()
	if c := h.s.Claims["default/files"]; c.NodeName != "b" {
		t.Fatalf("claim bound to %q, want b (a has 1 GiB free)", c.NodeName)
	}
	for p := range h.s.Pods.All() {
		if p.NodeName != "b" {
			t.Errorf("pod %s on %q, not with its claim", p.Name, p.NodeName)
		}
	}

	// b is lost: its pods stay, saying why; a new pod of the claim waits.
	start := h.now
	for range 15 {
		h.now = h.now.Add(time.Second)
		h.beats["a"] = h.now
		h.apply(Nodes(h.s, h.beats, start, h.now, DefaultNodeTimeouts)...)
	}
	if n := h.s.Pods.Len(); n != 2 {
		t.Fatalf("%d pods left on the lost node, want both", n)
	}
	for p := range h.s.Pods.All() {
		if p.Status.Reason != "NodeLost" || !strings.Contains(p.Status.Message, "the data of its claim files are there") {
			t.Errorf("pinned pod's status: %+v", p.Status)
		}
	}
	for p := range h.s.Pods.All() {
		h.apply(state.NewCommand(state.CmdDeletePod, state.PodRef{Key: p.Key()}))
		break
	}
	h.control()
	if msgs := h.podMessages(); !slices.ContainsFunc(msgs, func(m string) bool {
		return strings.Contains(m, `persistentvolumeclaim "files" has its data on node b, which is not ready`)
	}) {
		t.Errorf("a replacement pod says: %v", msgs)
	}
}

func TestClaimReadWriteOncePod(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(claimObject("files", "1Gi", "ReadWriteOncePod"), withClaim(deployment("web", 2, "v1"), "files"))
	h.cycle()
	bound, msgs := 0, h.podMessages()
	for p := range h.s.Pods.All() {
		if p.NodeName != "" {
			bound++
		}
	}
	if bound != 1 || len(msgs) != 1 || !strings.Contains(msgs[0], `persistentvolumeclaim "files" is ReadWriteOncePod and pod default/web-`) {
		t.Errorf("%d pods bound; messages %v", bound, msgs)
	}
}

// A claim removed from the repository is released only once no pod uses
// it; it is forgotten when its agent says its data are gone, and a claim
// of the same name then starts anew. A StatefulSet's claims go with it.
func TestClaimRelease(t *testing.T) {
	h := newHarness(t, node("a"))
	ss := statefulSetOf("db", 1, "v1")
	h.commit(claimObject("files", "1Gi", "ReadWriteOnce"), withClaim(deployment("web", 1, "v1"), "files"), ss)
	for range 3 {
		h.cycle()
	}
	h.commit(withClaim(deployment("web", 1, "v1"), "files"))
	h.cycle()
	if c := h.s.Claims["default/files"]; c == nil || c.Released {
		t.Fatalf("a claim in use released: %+v", c)
	}
	if c := h.s.Claims["default/data-db-0"]; c == nil || c.Released {
		t.Fatalf("the StatefulSet's claim released while its pod runs: %+v", c)
	}
	h.commit()
	for range 3 {
		h.cycle()
	}
	for _, key := range []string{"default/files", "default/data-db-0"} {
		if c := h.s.Claims[key]; c == nil || !c.Released || c.NodeName != "a" {
			t.Fatalf("claim %s: %+v", key, c)
		}
	}
	h.commit(claimObject("files", "1Gi", "ReadWriteOnce"))
	h.cycle()
	if c := h.s.Claims["default/files"]; !c.Released {
		t.Fatalf("a released claim taken back: %+v", c)
	}
	h.apply(state.NewCommand(state.CmdDeleteClaim, state.ClaimRef{Key: "default/files"})) // its agent deleted the data
	h.cycle()
	if c := h.s.Claims["default/files"]; c == nil || c.Released || c.NodeName != "" {
		t.Errorf("the claim anew: %+v", c)
	}
}
