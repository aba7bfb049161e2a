package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// converge runs the convergence controller and returns the applied
// revision as it then stands.
func (h *harness) converge() state.Revision {
	h.t.Helper()
	h.apply(Convergence(h.s, h.desired(), h.now)...)
	return *h.s.Current()
}

func configMap(name, value string) *objects.ConfigMap {
	c := &objects.ConfigMap{Data: map[string]string{"k": value}}
	c.APIVersion, c.Kind, c.Metadata = "v1", "ConfigMap", objects.ObjectMeta{Name: name, Namespace: "default"}
	return c
}

// A revision converges once every replica of the workloads it changed is
// ready, at the time of the pass that sees it; one that changed none of
// them (a ConfigMap) converges at once, whatever the others do.
func TestConvergenceConverged(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("web", 2, "1"), configMap("cfg", "1"))
	h.control()
	if r := h.converge(); r.Outcome != "" {
		t.Fatalf("settled before any pod ran: %+v", r.RevisionTiming)
	}
	h.agents()
	h.now = h.now.Add(3 * time.Second)
	if r := h.converge(); r.Outcome != state.OutcomeConverged || !r.Settled.Equal(h.now) {
		t.Fatalf("all ready: %+v", r.RevisionTiming)
	}
	// Rolling web to version 2 takes several passes; only the end counts.
	h.commit(deployment("web", 2, "2"), configMap("cfg", "1"))
	passes := 0
	for ; h.converge().Outcome == ""; passes++ {
		if passes > 10 {
			t.Fatal("never converged")
		}
		h.cycle()
	}
	if passes < 2 {
		t.Errorf("converged after %d passes, mid-rollout", passes)
	}
	if v := Rollouts(h.s, h.desired(), h.now)[0]; !v.Done || v.Updated != 2 || v.Available != 2 || v.Current != 2 {
		t.Errorf("web after converging: %+v", v)
	}
	// Only the ConfigMap changes while a pod of web is down: web is not
	// this revision's to wait for.
	for p := range h.s.Pods.All() {
		h.apply(state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: p.Key(), Status: state.PodStatus{Phase: state.PodRunning}}))
		break
	}
	h.commit(deployment("web", 2, "2"), configMap("cfg", "2"))
	if r := h.converge(); r.Outcome != state.OutcomeConverged {
		t.Errorf("a ConfigMap-only revision: %+v", r.RevisionTiming)
	}
}

// A revision replaced before it converged is Superseded, and one whose
// Deployment exceeds its progress deadline never converges.
func TestConvergenceSupersededAndDeadline(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(deployment("web", 2, "1"))
	h.cycle()
	h.converge()
	h.commit(deployment("web", 2, "2"))
	h.control() // its pods never start: no agent runs them
	if r := h.converge(); r.Outcome != "" {
		t.Fatalf("mid-rollout: %+v", r.RevisionTiming)
	}
	dep := deployment("web", 2, "3")
	ten := int32(10)
	dep.Spec.ProgressDeadlineSeconds = &ten
	h.commit(dep)
	if r := h.s.Revisions[1]; r.Outcome != state.OutcomeSuperseded {
		t.Fatalf("revision 2 after 3: %+v", r.RevisionTiming)
	}
	h.control()
	h.now = h.now.Add(5 * time.Second)
	if r := h.converge(); r.Outcome != "" {
		t.Fatalf("5 s in: %+v", r.RevisionTiming)
	}
	h.now = h.now.Add(6 * time.Second)
	r := h.converge()
	if r.Outcome != state.OutcomeDeadlineExceeded || r.Detail != "deployment default/web" || !r.Settled.Equal(h.now) {
		t.Fatalf("11 s without progress: %+v", r.RevisionTiming)
	}
	// Settled stays settled: the pods starting later changes nothing.
	h.cycle()
	if r := h.converge(); r.Outcome != state.OutcomeDeadlineExceeded {
		t.Errorf("after recovering: %+v", r.RevisionTiming)
	}
	if c := h.s.Convergence; c.Count != 1 || c.Sum != 1 || c.Outcomes[state.OutcomeSuperseded] != 1 || c.Outcomes[state.OutcomeDeadlineExceeded] != 1 {
		t.Errorf("stats: %+v", c)
	}
}

// A removed workload counts until its pods are gone; StatefulSets and
// DaemonSets count until their rollouts are done.
func TestConvergenceOtherWorkloads(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(deployment("old", 1, "1"))
	h.cycle()
	h.converge()
	ss, ds := statefulSetOf("db", 2, "1"), daemonSetOf("agent", "1")
	h.commit(ss, ds)
	if r := h.converge(); r.Outcome != "" {
		t.Fatal("converged with old's pod and none of db's")
	}
	for range 10 {
		h.cycle()
		if h.converge().Outcome != "" {
			break
		}
	}
	views := Rollouts(h.s, h.desired(), h.now)
	if r := h.s.Current(); r.Outcome != state.OutcomeConverged || len(views) != 2 {
		t.Fatalf("never converged: %+v %+v", r.RevisionTiming, views)
	}
	for _, v := range views {
		if !v.Done || v.Desired != 2 || v.Updated != 2 {
			t.Errorf("%s: %+v", v.Kind, v)
		}
	}
	for p := range h.s.Pods.OfDeployment("default", "old") {
		t.Errorf("pod %s of the removed Deployment left", p.Name)
	}
	// A partitioned StatefulSet is done once the pods from the partition
	// up are of the new template.
	ss2 := statefulSetOf("db", 2, "2")
	ss2.Spec.UpdateStrategy.RollingUpdate.Partition = 1
	h.commit(ss2, ds)
	for range 10 {
		h.cycle()
		if h.converge().Outcome != "" {
			break
		}
	}
	if v := Rollouts(h.s, h.desired(), h.now)[0]; !v.Done || v.Updated != 1 || v.Partition != 1 {
		t.Errorf("partitioned: %+v", v)
	}
}

// History lists the revisions that created, changed and removed an
// object, skipping those that left it alone and the rejected ones.
func TestHistory(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(configMap("cfg", "1"))
	h.commit(deployment("web", 1, "1"))
	h.commit(deployment("web", 1, "1"), configMap("cfg", "2"))
	h.apply(state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "bad", Status: state.RevisionRejected}))
	h.commit(deployment("web", 1, "2"))
	h.commit(configMap("cfg", "2"))
	var got []string
	for _, e := range History(h.s, objects.ObjectID{Kind: "Deployment", Namespace: "default", Name: "web"}) {
		got = append(got, e.Commit+":"+e.Change)
	}
	if want := "c1:created c4:changed c5:deleted"; strings.Join(got, " ") != want {
		t.Errorf("history %q, want %q", got, want)
	}
}
