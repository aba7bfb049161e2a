package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// harness is a cluster without sockets: controllers propose, state.Apply
// applies, and fake agents move bound pods to ready and remove stopped ones.
type harness struct {
	t     *testing.T
	s     *state.State
	now   time.Time
	ipSeq int
	beats map[string]time.Time
}

func newHarness(t *testing.T, nodes ...state.Node) *harness {
	h := &harness{t: t, s: &state.State{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), beats: map[string]time.Time{}}
	for _, n := range nodes {
		n.Ready = true
		h.apply(state.NewCommand(state.CmdRegisterNode, n))
		h.beats[n.Name] = h.now
	}
	return h
}

func (h *harness) apply(cmds ...state.Command) {
	h.t.Helper()
	if len(cmds) == 0 {
		return
	}
	if err := state.Apply(h.s, cmds); err != nil {
		h.t.Fatal(err)
	}
	h.s.Index++
}

// commit records an applied revision holding the given objects.
func (h *harness) commit(objs ...objects.Object) {
	h.t.Helper()
	rev := state.Revision{Commit: fmt.Sprintf("c%d", len(h.s.Revisions)), Status: state.RevisionApplied, RevisionTiming: state.RevisionTiming{Seen: h.now}}
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			h.t.Fatal(err)
		}
		m := o.GetObjectMeta()
		sum := sha256.Sum256(b) // as the syncer digests objects
		rev.Objects = append(rev.Objects, state.Object{ID: objects.ObjectID{Kind: o.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name},
			Digest: hex.EncodeToString(sum[:]), JSON: b})
	}
	h.apply(state.NewCommand(state.CmdAddRevision, rev))
}

func (h *harness) desired() *Desired {
	d, err := DesiredState(h.s)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// control runs the controllers once, each on a fresh state, like Loop.pass.
func (h *harness) control() {
	h.run("services", append(ServiceIPs(h.s, h.desired(), DefaultServiceCIDR), NodePorts(h.s, h.desired())...))
	h.run("deployments", Deployments(h.s, h.desired(), h.now))
	h.run("daemonsets", DaemonSets(h.s, h.desired(), h.now))
	h.run("statefulsets", StatefulSets(h.s, h.desired(), h.now))
	h.run("claims", Claims(h.s, h.desired()))
	h.run("namespaces", Namespaces(h.s))
	h.run("cronjobs", CronJobs(h.s, h.desired(), h.now))
	h.run("jobs", Jobs(h.s, h.desired(), h.now))
	h.run("scheduler", Schedule(h.s))
}

// run applies a controller's commands with their events, as Loop.control.
func (h *harness) run(controller string, cmds []state.Command) {
	h.t.Helper()
	h.apply(append(cmds, recordEvents(Events(h.s, h.desired(), Component(controller), cmds, h.now))...)...)
}

// agents plays every node's agent: start bound pods (ready), remove
// stopped ones. Only nodes in up run their pods.
func (h *harness) agents(up ...string) {
	isUp := map[string]bool{}
	for _, n := range up {
		isUp[n] = true
	}
	var cmds []state.Command
	for _, p := range sortedPods(slices.Collect(h.s.Pods.All())) {
		if p.NodeName == "" || p.Finished() || (len(up) > 0 && !isUp[p.NodeName]) {
			continue
		}
		if p.Terminating {
			cmds = append(cmds, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: p.Key()}))
			continue
		}
		if !p.Status.Ready {
			h.ipSeq++
			cmds = append(cmds, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: p.Key(), Status: state.PodStatus{
				Phase: state.PodRunning, Ready: true, ReadySince: h.now, IP: fmt.Sprintf("10.244.0.%d", h.ipSeq)}}))
		}
	}
	h.apply(cmds...)
}

// settle runs the controllers, then the agents, rounds times; the clock
// stands still.
func (h *harness) settle(rounds int) {
	for range rounds {
		h.control()
		h.agents()
	}
}

// pods counts live (not terminating) pods by template hash, and ready ones.
func (h *harness) pods() (byHash map[string]int, ready int) {
	byHash = map[string]int{}
	for p := range h.s.Pods.All() {
		if !p.Terminating {
			byHash[p.TemplateHash]++
			if p.Status.Ready {
				ready++
			}
		}
	}
	return byHash, ready
}

func deployment(name string, replicas int32, version string) *objects.Deployment {
	d := &objects.Deployment{}
	d.APIVersion, d.Kind = "apps/v1", "Deployment"
	d.Metadata = objects.ObjectMeta{Name: name, Namespace: "default"}
	d.Spec.Replicas = replicas
	d.Spec.Selector.MatchLabels = map[string]string{"app": name}
	d.Spec.Template.Metadata = &objects.TemplateMeta{Labels: map[string]string{"app": name}}
	d.Spec.Template.Spec.Containers = []objects.Container{{Name: "web", Image: "web:1",
		Env:       []objects.EnvVar{{Name: "VERSION", Value: version}},
		Ports:     []objects.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}},
		Resources: objects.ResourceRequirements{Requests: objects.ResourceList{CPU: "100m", Memory: "64Mi"}}}}
	d.Spec.Strategy = objects.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &objects.RollingUpdateDeployment{
		MaxSurge: objects.IntOrString{Int: 1}, MaxUnavailable: objects.IntOrString{Int: 1}}}
	return d
}

func node(name string) state.Node {
	return state.Node{Name: name, CPUMilli: 2000, MemoryBytes: 4 << 30, Labels: map[string]string{"kubernetes.io/hostname": name}}
}

func TestDeploymentComesUpSpreadAcrossNodes(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 3, "1"))
	h.control()
	h.control()
	perNode := map[string]int{}
	for p := range h.s.Pods.All() {
		perNode[p.NodeName]++
	}
	if h.s.Pods.Len() != 3 || perNode["a"]+perNode["b"] != 3 || perNode["a"] == 0 || perNode["b"] == 0 {
		t.Fatalf("pods per node: %v", perNode)
	}
	h.agents()
	h.control()
	if byHash, ready := h.pods(); ready != 3 || len(byHash) != 1 {
		t.Fatalf("ready %d, hashes %v", ready, byHash)
	}
}

// A rolling update never drops below replicas-maxUnavailable ready pods nor
// exceeds replicas+maxSurge, and ends with only the new template.
func TestRollingUpdateKeepsAvailability(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 4, "1"))
	h.settle(3)
	v1 := TemplateHash(deployment("web", 4, "1").Spec.Template)
	v2 := TemplateHash(deployment("web", 4, "2").Spec.Template)
	h.commit(deployment("web", 4, "2"))
	for step := 0; step < 20; step++ {
		h.control()
		byHash, ready := h.pods()
		if ready < 3 {
			t.Fatalf("step %d: %d ready, want at least 3", step, ready)
		}
		if total := byHash[v1] + byHash[v2]; total > 5 {
			t.Fatalf("step %d: %d live pods, want at most 5", step, total)
		}
		h.agents()
		h.now = h.now.Add(time.Second)
	}
	if byHash, ready := h.pods(); byHash[v2] != 4 || byHash[v1] != 0 || ready != 4 {
		t.Fatalf("after the rollout: %v, %d ready", byHash, ready)
	}
}

func TestRevertReusesTemplateHash(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(deployment("web", 2, "1"))
	h.settle(3)
	first, _ := h.pods()
	h.commit(deployment("web", 2, "2"))
	h.settle(6)
	h.commit(deployment("web", 2, "1")) // git revert: the same objects again
	h.settle(6)
	last, _ := h.pods()
	if fmt.Sprint(first) != fmt.Sprint(last) {
		t.Fatalf("revert gave hashes %v, the original rollout had %v", last, first)
	}
}

func TestRecreateStopsOldPodsFirst(t *testing.T) {
	h := newHarness(t, node("a"))
	d := deployment("web", 2, "1")
	d.Spec.Strategy = objects.DeploymentStrategy{Type: "Recreate"}
	h.commit(d)
	h.settle(3)
	d2 := deployment("web", 2, "2")
	d2.Spec.Strategy = d.Spec.Strategy
	h.commit(d2)
	h.control()
	for p := range h.s.Pods.All() {
		if p.TemplateHash == TemplateHash(d2.Spec.Template) {
			t.Fatalf("new pod %s created while old pods still run", p.Name)
		}
	}
	for range 4 {
		h.agents()
		h.control()
	}
	if byHash, ready := h.pods(); byHash[TemplateHash(d2.Spec.Template)] != 2 || ready != 2 {
		t.Fatalf("after recreate: %v, %d ready", byHash, ready)
	}
}

func TestScaleDownAndRemoval(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(deployment("web", 3, "1"))
	h.settle(3)
	h.commit(deployment("web", 1, "1"))
	h.control()
	h.agents()
	if h.s.Pods.Len() != 1 {
		t.Fatalf("after scaling to 1: %d pods", h.s.Pods.Len())
	}
	h.commit() // the Deployment is gone from the repository
	h.control()
	h.agents()
	if h.s.Pods.Len() != 0 {
		t.Fatalf("after removal: %d pods", h.s.Pods.Len())
	}
}

func TestSchedulerFiltersAndExplains(t *testing.T) {
	small := node("small")
	small.CPUMilli = 150
	h := newHarness(t, small)
	d := deployment("web", 2, "1")
	h.commit(d)
	h.control()
	h.control()
	var bound, unschedulable int
	for p := range h.s.Pods.All() {
		if p.NodeName != "" {
			bound++
		} else if p.Status.Reason == "Unschedulable" && strings.Contains(p.Status.Message, "1 lack cpu") {
			unschedulable++
		}
	}
	if bound != 1 || unschedulable != 1 {
		t.Fatalf("bound %d, unschedulable %d: %+v", bound, unschedulable, h.s.Pods)
	}

	h2 := newHarness(t, node("a"), node("b"))
	d = deployment("web", 2, "1")
	d.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "b"}
	h2.commit(d)
	h2.control()
	h2.control()
	for p := range h2.s.Pods.All() {
		if p.NodeName != "b" {
			t.Fatalf("pod %s on %q, want b", p.Name, p.NodeName)
		}
	}
}

// A node that stops heartbeating goes NotReady; after the eviction timeout
// its pods are deleted and come back on the other node.
func TestDeadNodeSelfHeals(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 2, "1"))
	h.settle(3)
	start := h.now
	for i := 0; i < 60; i++ {
		h.now = h.now.Add(time.Second)
		h.beats["a"] = h.now // b is dead
		h.run("nodes", Nodes(h.s, h.beats, start, h.now, DefaultNodeTimeouts))
		h.control()
		h.agents("a")
	}
	if h.s.Nodes["b"].Ready {
		t.Fatal("b still ready")
	}
	for p := range h.s.Pods.All() {
		if p.NodeName != "a" || !p.Status.Ready {
			t.Fatalf("pod %s on %s ready=%v", p.Name, p.NodeName, p.Status.Ready)
		}
	}
	if h.s.Pods.Len() != 2 {
		t.Fatalf("%d pods, want 2", h.s.Pods.Len())
	}
}

// A master that leads again after another master led keeps the beats of
// its earlier term in memory; they must not mark every node NotReady at
// once, since the nodes beat to the other master meanwhile.
func TestReelectedLeaderKeepsNodesReady(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	earlier := h.now // the last beats this master saw in its first term
	h.now = h.now.Add(10 * time.Minute)
	since := h.now // it leads again
	h.beats["a"], h.beats["b"] = earlier, earlier
	h.now = h.now.Add(time.Second)
	if cmds := Nodes(h.s, h.beats, since, h.now, DefaultNodeTimeouts); len(cmds) != 0 {
		t.Fatalf("a second after the re-election: %d commands, want none (first %s)", len(cmds), cmds[0].Type)
	}
	// Silence past the grace period of this term still counts.
	h.now = since.Add(DefaultNodeTimeouts.Grace + time.Second)
	h.beats["a"] = h.now
	h.apply(Nodes(h.s, h.beats, since, h.now, DefaultNodeTimeouts)...)
	if !h.s.Nodes["a"].Ready || h.s.Nodes["b"].Ready {
		t.Fatalf("after the grace period: a ready %v (beat), b ready %v (silent)", h.s.Nodes["a"].Ready, h.s.Nodes["b"].Ready)
	}
}

func TestServicesGetStableIPsAndReadyEndpoints(t *testing.T) {
	h := newHarness(t, node("a"))
	svc := &objects.Service{}
	svc.APIVersion, svc.Kind = "v1", "Service"
	svc.Metadata = objects.ObjectMeta{Name: "web", Namespace: "default"}
	svc.Spec = objects.ServiceSpec{Type: "ClusterIP", Selector: map[string]string{"app": "web"},
		Ports: []objects.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: &objects.IntOrString{IsString: true, Str: "http"}}}}
	other := &objects.Service{}
	*other = *svc
	other.Metadata.Name = "pinned"
	other.Spec.ClusterIP = "10.96.0.99"
	h.commit(deployment("web", 2, "1"), svc, other)
	h.control()
	h.control()
	if h.s.ServiceIPs["default/web"] != "10.96.0.2" || h.s.ServiceIPs["default/pinned"] != "10.96.0.99" {
		t.Fatalf("IPs: %v", h.s.ServiceIPs)
	}
	views := Services(h.s, h.desired())
	if len(views) != 2 || len(views[0].Ports[0].Endpoints) != 0 {
		t.Fatalf("before pods are ready: %+v", views)
	}
	h.agents()
	views = Services(h.s, h.desired())
	eps := views[0].Ports[0].Endpoints
	sort.Slice(eps, func(i, j int) bool { return eps[i].IP < eps[j].IP })
	if len(eps) != 2 || eps[0].Port != 8080 {
		t.Fatalf("endpoints: %+v", eps)
	}
	h.commit(deployment("web", 2, "1"), svc)
	h.control()
	if _, ok := h.s.ServiceIPs["default/pinned"]; ok || h.s.ServiceIPs["default/web"] != "10.96.0.2" {
		t.Fatalf("after removing a Service: %v", h.s.ServiceIPs)
	}
	if ip := netip.MustParseAddr(h.s.ServiceIPs["default/web"]); !DefaultServiceCIDR.Contains(ip) {
		t.Fatal(ip)
	}
}

func service(name, clusterIP string) *objects.Service {
	svc := &objects.Service{}
	svc.APIVersion, svc.Kind = "v1", "Service"
	svc.Metadata = objects.ObjectMeta{Name: name, Namespace: "default"}
	svc.Spec = objects.ServiceSpec{Type: "ClusterIP", ClusterIP: clusterIP, Selector: map[string]string{"app": name},
		Ports: []objects.ServicePort{{Protocol: "TCP", Port: 80}}}
	return svc
}

// The three ways one Service's ClusterIP stopped all allocation: each plan
// now applies whole, and a pin no plan can honour fails alone.
func TestServiceIPConflicts(t *testing.T) {
	assign := func(h *harness) []refusal {
		t.Helper()
		cmds, refused := plan(h.s, ServiceIPs(h.s, h.desired(), DefaultServiceCIDR))
		h.apply(cmds...)
		return refused
	}
	// A dynamic Service listed before a pinned one does not take its IP
	// (10.96.0.2 is the first free address).
	h := newHarness(t)
	h.commit(service("dyn", ""), service("pin", "10.96.0.2"))
	if r := assign(h); len(r) != 0 || h.s.ServiceIPs["default/pin"] != "10.96.0.2" || h.s.ServiceIPs["default/dyn"] != "10.96.0.3" {
		t.Fatalf("dynamic before pinned: %v, refused %v", h.s.ServiceIPs, r)
	}
	// One commit removes a Service and pins its IP on another: released
	// before it is assigned.
	h.commit(service("pin", "10.96.0.2"), service("moved", "10.96.0.3"))
	if r := assign(h); len(r) != 0 || h.s.ServiceIPs["default/moved"] != "10.96.0.3" {
		t.Fatalf("IP moved to another Service: %v, refused %v", h.s.ServiceIPs, r)
	}
	// Two Services pin one IP (the loader refuses such a commit): the first
	// gets it, and the other Services are not held up.
	h = newHarness(t)
	h.commit(service("first", "10.96.0.9"), service("second", "10.96.0.9"), service("other", ""))
	if r := assign(h); len(r) != 0 || h.s.ServiceIPs["default/first"] != "10.96.0.9" || h.s.ServiceIPs["default/other"] == "" {
		t.Fatalf("one IP pinned twice: %v, refused %v", h.s.ServiceIPs, r)
	}
	// A pin on an IP a remaining Service holds is refused alone; the rest
	// of the plan commits.
	h.commit(service("first", "10.96.0.9"), service("late", h.s.ServiceIPs["default/other"]), service("other", ""), service("new", ""))
	r := assign(h)
	if len(r) != 1 || !strings.Contains(r[0].err.Error(), "taken by default/other") || h.s.ServiceIPs["default/new"] == "" {
		t.Fatalf("pin on a held IP: %v, refused %v", h.s.ServiceIPs, r)
	}
}

// No pod is placed on a node under disk pressure; the pods already there
// stay.
func TestSchedulerAvoidsDiskPressure(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.apply(state.NewCommand(state.CmdSetDiskPressure, state.NodeDiskPressure{Name: "a", DiskPressure: true}))
	h.commit(deployment("web", 3, "1"))
	h.control()
	for p := range h.s.Pods.All() {
		if p.NodeName != "b" {
			t.Fatalf("pod %s placed on %q, want b (a is under disk pressure)", p.Name, p.NodeName)
		}
	}
}

// The applied revision is decoded once and shared by every later state
// that has it, not again by every controller and blocking query.
func TestDesiredStateDecodedOnce(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(deployment("web", 1, "1"))
	first, err := DesiredState(h.s)
	if err != nil {
		t.Fatal(err)
	}
	h.control() // new states, same revision
	again, err := DesiredState(h.s)
	if err != nil || again != first {
		t.Fatalf("the same revision decoded again (%v)", err)
	}
	h.commit(deployment("web", 2, "2"))
	next, err := DesiredState(h.s)
	if err != nil || next == first || next.Deployments[0].Spec.Replicas != 2 {
		t.Fatalf("a new revision gave the old decoding (%v)", err)
	}
}

// A pod that asks for an extended resource (a GPU) stays Pending saying no
// node offers it; the others are placed.
func TestSchedulerExtendedResources(t *testing.T) {
	h := newHarness(t, node("a"))
	gpu := deployment("gpu", 1, "1")
	gpu.Spec.Template.Spec.Containers[0].Resources.Limits.Extended = map[string]objects.Quantity{"nvidia.com/gpu": "1"}
	h.commit(gpu, deployment("web", 1, "1"))
	h.control()
	h.control()
	for p := range h.s.Pods.All() {
		switch p.Deployment {
		case "gpu":
			if p.NodeName != "" || p.Status.Message != "0/1 nodes are available: no node offers nvidia.com/gpu" {
				t.Errorf("gpu pod on %q: %s", p.NodeName, p.Status.Message)
			}
		case "web":
			if p.NodeName != "a" {
				t.Errorf("web pod not placed: %+v", p.Status)
			}
		}
	}
}

// A rollout that makes no progress for progressDeadlineSeconds is
// reported as ProgressDeadlineExceeded; one that progresses, or is
// complete, is not.
func TestRolloutProgressDeadline(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(deployment("web", 2, "1"))
	h.control()
	h.agents()
	dep := deployment("web", 2, "2")
	ten := int32(10)
	dep.Spec.ProgressDeadlineSeconds = &ten
	h.commit(dep)
	h.control() // new pods created, none ready: their agents never start them
	pods := func() []*state.Pod { return slices.Collect(h.s.Pods.OfDeployment("default", "web")) }
	if r := RolloutReason(dep, pods(), h.now.Add(5*time.Second)); r != "" {
		t.Fatalf("5 s into the rollout: %q", r)
	}
	if r := RolloutReason(dep, pods(), h.now.Add(11*time.Second)); r != "ProgressDeadlineExceeded" {
		t.Fatalf("11 s without progress: %q", r)
	}
	complete := deployment("web", 2, "1")
	if r := RolloutReason(complete, pods(), h.now.Add(time.Hour)); r == "" {
		t.Fatal("the old template's rollout, with pods of another, counted as complete")
	}
	h2 := newHarness(t, node("a"))
	h2.commit(complete)
	h2.control()
	h2.agents()
	if r := RolloutReason(complete, slices.Collect(h2.s.Pods.OfDeployment("default", "web")), h2.now.Add(time.Hour)); r != "" {
		t.Fatalf("a complete rollout an hour later: %q", r)
	}
}

// A paused Deployment rolls out no new template and replaces nothing, but
// is scaled to its replicas with copies of its newest pods; its reason is
// DeploymentPaused and no deadline runs. Resumed, it rolls out.
func TestPausedDeployment(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(deployment("web", 2, "1"))
	h.settle(3)
	v1 := TemplateHash(deployment("web", 2, "1").Spec.Template)
	paused := deployment("web", 3, "2")
	paused.Spec.Paused = true
	h.commit(paused)
	h.settle(3)
	if byHash, ready := h.pods(); byHash[v1] != 3 || len(byHash) != 1 || ready != 3 {
		t.Fatalf("scaled up while paused: %v, %d ready; want 3 of the old template", byHash, ready)
	}
	if r := RolloutReason(paused, slices.Collect(h.s.Pods.All()), h.now.Add(time.Hour)); r != DeploymentPaused {
		t.Errorf("reason %q, want %s", r, DeploymentPaused)
	}
	paused.Spec.Replicas = 1
	h.commit(paused)
	h.control()
	h.agents()
	if byHash, _ := h.pods(); byHash[v1] != 1 || len(byHash) != 1 {
		t.Fatalf("scaled down while paused: %v", byHash)
	}
	h.commit(deployment("web", 1, "2"))
	h.settle(4)
	if byHash, _ := h.pods(); byHash[TemplateHash(paused.Spec.Template)] != 1 || len(byHash) != 1 {
		t.Fatalf("resumed: %v", byHash)
	}

	fresh := deployment("fresh", 2, "1")
	fresh.Spec.Paused = true
	if cmds := Deployments(&state.State{}, &Desired{Deployments: []*objects.Deployment{fresh}}, h.now); len(cmds) != 0 {
		t.Errorf("a Deployment paused before its first pod made %d commands", len(cmds))
	}
}

// ephemeral-storage requests are placed against the node's disk, next to
// what its pods already asked for; init containers count as Kubernetes
// counts them (the largest, or the sum of the others if more).
func TestSchedulerEphemeralStorage(t *testing.T) {
	small := node("small")
	small.EphemeralBytes = 10 << 30
	h := newHarness(t, small)
	big := deployment("big", 1, "1")
	big.Spec.Template.Spec.Containers[0].Resources.Requests.EphemeralStorage = "11Gi"
	fits := deployment("fits", 2, "1")
	fits.Spec.Template.Spec.Containers[0].Resources.Limits.EphemeralStorage = "4Gi" // a request defaults to its limit
	fits.Spec.Template.Spec.InitContainers = []objects.Container{{Name: "init", Image: "busybox",
		Resources: objects.ResourceRequirements{Requests: objects.ResourceList{EphemeralStorage: "3Gi"}}}}
	h.commit(big, fits)
	h.control()
	placed := 0
	for p := range h.s.Pods.All() {
		switch {
		case p.Deployment == "big" && (p.NodeName != "" || !strings.Contains(p.Status.Message, "1 lack ephemeral-storage")):
			t.Errorf("11Gi on a 10Gi disk: node %q, %s", p.NodeName, p.Status.Message)
		case p.Deployment == "fits" && p.NodeName == "small":
			placed++
		}
	}
	if placed != 2 {
		t.Errorf("%d of 2 pods of 4Gi placed on a 10Gi disk", placed)
	}
}

// Affinity, anti-affinity, topology spread and tolerations place pods as
// kube-scheduler would: required terms filter, preferred ones win ties
// over plain spreading, and a pod that fits nowhere says which constraint.
func TestSchedulerAffinity(t *testing.T) {
	zoned := func(name, zone string) state.Node {
		n := node(name)
		n.Labels["topology.kubernetes.io/zone"] = zone
		return n
	}
	h := newHarness(t, zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"))
	hostname, zone := "kubernetes.io/hostname", "topology.kubernetes.io/zone"
	sel := func(app string) *objects.LabelSelector {
		return &objects.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}

	inB := deployment("in-b", 1, "1")
	inB.Spec.Template.Spec.Affinity = &objects.Affinity{NodeAffinity: &objects.NodeAffinity{
		Required: &objects.NodeSelector{NodeSelectorTerms: []objects.NodeSelectorTerm{{MatchExpressions: []objects.NodeSelectorRequirement{{Key: zone, Operator: "In", Values: []string{"b"}}}}}}}}
	prefersA2 := deployment("prefers-a2", 1, "1")
	prefersA2.Spec.Template.Spec.Affinity = &objects.Affinity{NodeAffinity: &objects.NodeAffinity{
		Preferred: []objects.PreferredSchedulingTerm{{Weight: 50, Preference: objects.NodeSelectorTerm{MatchFields: []objects.NodeSelectorRequirement{{Key: "metadata.name", Operator: "In", Values: []string{"a2"}}}}}}}}
	apart := deployment("apart", 4, "1")
	apart.Spec.Template.Spec.Affinity = &objects.Affinity{PodAntiAffinity: &objects.PodAffinity{
		Required: []objects.PodAffinityTerm{{LabelSelector: sel("apart"), TopologyKey: hostname}}}}
	spreadZones := deployment("spread", 4, "1")
	spreadZones.Spec.Template.Spec.TopologySpreadConstraints = []objects.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: zone, WhenUnsatisfiable: "DoNotSchedule", LabelSelector: sel("spread")}}
	h.commit(inB, prefersA2, apart, spreadZones)
	h.control()
	h.control()

	on := map[string][]string{}
	var why string
	for p := range h.s.Pods.All() {
		on[p.Deployment] = append(on[p.Deployment], p.NodeName)
		if p.Deployment == "apart" && p.NodeName == "" {
			why = p.Status.Message
		}
	}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b"}
	if !slices.Equal(on["in-b"], []string{"b1"}) {
		t.Errorf("required node affinity: %v", on["in-b"])
	}
	if !slices.Equal(on["prefers-a2"], []string{"a2"}) {
		t.Errorf("preferred node affinity: %v", on["prefers-a2"])
	}
	placed := slices.DeleteFunc(slices.Clone(on["apart"]), func(n string) bool { return n == "" })
	slices.Sort(placed)
	if !slices.Equal(placed, []string{"a1", "a2", "b1"}) || !strings.Contains(why, "3 fail pod anti-affinity") {
		t.Errorf("required anti-affinity by host: %v, the fourth: %q", on["apart"], why)
	}
	byZone := map[string]int{}
	for _, n := range on["spread"] {
		byZone[zoneOf[n]]++
	}
	if byZone["a"] != 2 || byZone["b"] != 2 {
		t.Errorf("spread over zones with maxSkew 1: %v", on["spread"])
	}

	// Disk pressure is a taint: only a pod that tolerates it goes there.
	for _, name := range []string{"a1", "a2", "b1"} {
		h.apply(state.NewCommand(state.CmdSetDiskPressure, state.NodeDiskPressure{Name: name, DiskPressure: true}))
	}
	tolerant := deployment("tolerant", 1, "1")
	tolerant.Spec.Template.Spec.Tolerations = []objects.Toleration{{Key: "node.kubernetes.io/disk-pressure", Operator: "Exists", Effect: "NoSchedule"}}
	h.commit(inB, prefersA2, apart, spreadZones, tolerant, deployment("plain", 1, "1"))
	h.control()
	h.control()
	for p := range h.s.Pods.All() {
		switch {
		case p.Deployment == "tolerant" && p.NodeName == "":
			t.Errorf("a pod tolerating disk pressure was not placed: %s", p.Status.Message)
		case p.Deployment == "plain" && p.NodeName != "":
			t.Errorf("a pod that tolerates nothing went to a node under disk pressure: %s", p.NodeName)
		}
	}
}

// Every node silent at once (the masters' own network is the likelier
// fault): all go NotReady, but no pod is evicted.
func TestNoEvictionWhenNoNodeIsReady(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 2, "1"))
	h.settle(3)
	start := h.now
	for range 60 {
		h.now = h.now.Add(time.Second)
		h.apply(Nodes(h.s, h.beats, start, h.now, DefaultNodeTimeouts)...)
		h.control()
	}
	if h.s.Nodes["a"].Ready || h.s.Nodes["b"].Ready {
		t.Fatal("silent nodes still ready")
	}
	if h.s.Pods.Len() != 2 {
		t.Fatalf("%d pods, want the 2 that were running", h.s.Pods.Len())
	}
}

// The default timeouts replace a lost node's pods within 12 s of its last
// heartbeat, in the harness's 1 s steps (the loop's tick).
func TestDefaultTimeoutsReplaceWithinTwelveSeconds(t *testing.T) {
	h := newHarness(t, node("a"), node("b"), node("c"))
	h.commit(deployment("web", 3, "1"))
	h.settle(3)
	start := h.now
	for h.now.Sub(start) < time.Minute {
		h.now = h.now.Add(time.Second)
		h.beats["a"], h.beats["b"] = h.now, h.now // c is dead
		h.apply(Nodes(h.s, h.beats, start, h.now, DefaultNodeTimeouts)...)
		h.control()
		h.agents("a", "b")
		ready := 0
		for p := range h.s.Pods.All() {
			if p.NodeName != "c" && p.Status.Ready {
				ready++
			}
		}
		if ready == 3 {
			break
		}
	}
	if took := h.now.Sub(start); took > 14*time.Second {
		t.Fatalf("3 ready pods off the dead node after %s", took)
	}
}

// A cordoned node takes no new pod; a drained one gives its pods up within
// the Deployment's bounds (maxUnavailable 0 here: never fewer than
// replicas ready), and registering again keeps both.
func TestCordonAndDrain(t *testing.T) {
	h := newHarness(t, node("a"), node("b"), node("c"))
	dep := deployment("web", 4, "1")
	dep.Spec.Strategy.RollingUpdate.MaxUnavailable = objects.IntOrString{Int: 0}
	h.commit(dep)
	h.apply(state.NewCommand(state.CmdSetNodeScheduling, state.NodeScheduling{Name: "c", Unschedulable: true}))
	h.settle(3)
	for p := range h.s.Pods.All() {
		if p.NodeName == "c" {
			t.Fatalf("pod %s on the cordoned node", p.Name)
		}
	}
	h.apply(state.NewCommand(state.CmdSetNodeScheduling, state.NodeScheduling{Name: "c"}))
	h.apply(state.NewCommand(state.CmdSetNodeScheduling, state.NodeScheduling{Name: "b", Drain: true}))
	h.apply(state.NewCommand(state.CmdRegisterNode, node("b"))) // its agent restarts meanwhile
	if n := h.s.Nodes["b"]; !n.Unschedulable || !n.Draining {
		t.Fatalf("b after registering again: %+v", n)
	}
	for range 10 {
		h.now = h.now.Add(time.Second)
		h.control()
		if _, ready := h.pods(); ready < 4 {
			t.Fatalf("%d ready pods while draining, want at least 4", ready)
		}
		h.agents()
	}
	on := map[string]int{}
	for p := range h.s.Pods.All() {
		on[p.NodeName]++
	}
	if on["b"] != 0 || on["a"]+on["c"] != 4 {
		t.Fatalf("pods by node after the drain: %v", on)
	}
}
