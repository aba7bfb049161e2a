package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

func job(name string, completions, parallelism, backoffLimit int32) *objects.Job {
	j := &objects.Job{}
	j.APIVersion, j.Kind = "batch/v1", "Job"
	j.Metadata = objects.ObjectMeta{Name: name, Namespace: "default"}
	j.Spec = objects.JobSpec{Completions: completions, Parallelism: parallelism, BackoffLimit: backoffLimit}
	j.Spec.Template.Spec = objects.PodSpec{RestartPolicy: "Never", Containers: []objects.Container{{Name: "c", Image: "task:1"}}}
	return j
}

// finish ends the running pods of Job name: each gets the phase end gives
// it (or keeps running for "").
func (h *harness) finish(name string, end func(*state.Pod) state.PodPhase) {
	h.t.Helper()
	var cmds []state.Command
	for p := range h.s.Pods.OfOwner(KindJob, "default", name) {
		if p.NodeName == "" || p.Finished() || p.Terminating {
			continue
		}
		if ph := end(p); ph != "" {
			cmds = append(cmds, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: p.Key(), Status: state.PodStatus{Phase: ph}}))
		}
	}
	h.apply(cmds...)
}

// active counts Job name's pods that neither finished nor stop.
func (h *harness) active(name string) int {
	n := 0
	for p := range h.s.Pods.OfOwner(KindJob, "default", name) {
		if !p.Finished() && !p.Terminating {
			n++
		}
	}
	return n
}

func succeed(*state.Pod) state.PodPhase { return state.PodSucceeded }
func fail(*state.Pod) state.PodPhase    { return state.PodFailed }

// Three completions, two at a time; the pods are named <job>-<id> and
// labelled job-name.
func TestJobCompletionsAndParallelism(t *testing.T) {
	h := newHarness(t, node("a"), node("b"))
	h.commit(job("batch", 3, 2, 6))
	h.control()
	if n := h.active("batch"); n != 2 {
		t.Fatalf("%d pods running, want parallelism 2", n)
	}
	for p := range h.s.Pods.OfOwner(KindJob, "default", "batch") {
		if !strings.HasPrefix(p.Name, "batch-") || len(p.Name) != len("batch-")+5 || p.Labels["job-name"] != "batch" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
	}
	h.finish("batch", succeed)
	h.control()
	if n := h.active("batch"); n != 1 {
		t.Fatalf("%d pods running for the last completion, want 1", n)
	}
	h.finish("batch", succeed)
	h.control()
	run := h.s.Jobs["default/batch"]
	if run.Status.Condition != state.JobComplete || run.Status.Succeeded != 3 || h.active("batch") != 0 {
		t.Fatalf("after 3 successes: %+v, %d running", run.Status, h.active("batch"))
	}
	// Nothing runs again.
	h.control()
	if h.s.Pods.Len() != 3 {
		t.Fatalf("%d pods, want the 3 finished ones", h.s.Pods.Len())
	}
	if evs := eventsOf(h.s, "Job", "batch"); !hasEvent(evs, "Normal SuccessfulCreate x1: Created pod: batch-") || !hasEvent(evs, "Normal Completed x1: Job completed") {
		t.Errorf("Job events = %q", evs)
	}
}

// A failed pod is replaced after 10 s, the next after 20 s more; the third
// failure is more than backoffLimit 2 and fails the Job.
func TestJobBackoff(t *testing.T) {
	h := newHarness(t, node("a"))
	h.commit(job("flaky", 1, 1, 2))
	h.control()
	var created []time.Time // when each pod appeared
	seen := map[string]bool{}
	for range 120 {
		for p := range h.s.Pods.OfOwner(KindJob, "default", "flaky") {
			if !seen[p.Name] {
				seen[p.Name] = true
				created = append(created, h.now)
			}
		}
		h.finish("flaky", fail)
		h.now = h.now.Add(time.Second)
		h.control()
	}
	start := created[0]
	var at []time.Duration
	for _, c := range created {
		at = append(at, c.Sub(start))
	}
	// Fails at 0 s; back-off 10 s (new pod at 11 s, the pass after it is
	// due), fails; 20 s more (32 s), fails: 3 failures > backoffLimit 2.
	if want := []time.Duration{0, 11 * time.Second, 32 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("pods created at %v, want %v", at, want)
	}
	if st := h.s.Jobs["default/flaky"].Status; st.Condition != state.JobFailed || st.Reason != "BackoffLimitExceeded" || st.Failed != 3 {
		t.Fatalf("status %+v", st)
	}
	if evs := eventsOf(h.s, "Job", "flaky"); !hasEvent(evs, "Warning BackoffLimitExceeded x1: Job has reached its limit: BackoffLimitExceeded") {
		t.Errorf("Job events = %q", evs)
	}
	if got := []time.Duration{jobBackoff(1), jobBackoff(2), jobBackoff(6), jobBackoff(7), jobBackoff(30)}; !slices.Equal(got,
		[]time.Duration{10 * time.Second, 20 * time.Second, 320 * time.Second, 6 * time.Minute, 6 * time.Minute}) {
		t.Errorf("back-off %v", got)
	}
}

// Under OnFailure the pod restarts in place; its restarts count against
// backoffLimit.
func TestJobOnFailureRestartsCount(t *testing.T) {
	h := newHarness(t, node("a"))
	j := job("retry", 1, 1, 1)
	j.Spec.Template.Spec.RestartPolicy = "OnFailure"
	h.commit(j)
	h.control()
	var key string
	for p := range h.s.Pods.OfOwner(KindJob, "default", "retry") {
		key = p.Key()
	}
	h.apply(state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: key, Status: state.PodStatus{Phase: state.PodRunning, Restarts: 2}}))
	h.control()
	if st := h.s.Jobs["default/retry"].Status; st.Condition != state.JobFailed || st.Reason != "BackoffLimitExceeded" {
		t.Fatalf("2 restarts over backoffLimit 1: %+v", st)
	}
	if p := h.s.Pods.Get(key); !p.Terminating {
		t.Fatal("the failed Job's pod still runs")
	}
}

// activeDeadlineSeconds fails a Job that runs too long and stops its pods;
// ttlSecondsAfterFinished removes them later, and the Job does not run
// again while its spec stays. A new spec is a new run.
func TestJobDeadlineTTLAndNewSpec(t *testing.T) {
	h := newHarness(t, node("a"))
	j := job("slow", 1, 1, 6)
	deadline, ttl := int64(30), int32(60)
	j.Spec.ActiveDeadlineSeconds, j.Spec.TTLSecondsAfterFinished = &deadline, &ttl
	h.commit(j)
	h.control()
	h.agents()
	h.now = h.now.Add(29 * time.Second)
	h.control()
	if h.s.Jobs["default/slow"].Status.Done() {
		t.Fatal("done before its deadline")
	}
	h.now = h.now.Add(time.Second)
	h.control()
	if st := h.s.Jobs["default/slow"].Status; st.Reason != "DeadlineExceeded" {
		t.Fatalf("at its deadline: %+v", st)
	}
	h.agents() // stops the pod
	h.now = h.now.Add(59 * time.Second)
	h.control()
	h.agents()
	if h.s.Jobs["default/slow"].Status.Cleaned {
		t.Fatal("cleaned before its TTL")
	}
	h.now = h.now.Add(time.Second)
	h.settle(3)
	if st := h.s.Jobs["default/slow"].Status; !st.Cleaned || h.s.Pods.Len() != 0 {
		t.Fatalf("after the TTL: %+v, %d pods", st, h.s.Pods.Len())
	}

	j2 := job("slow", 1, 1, 6)
	j2.Spec.Template.Spec.Containers[0].Image = "task:2"
	h.commit(j2)
	h.control()
	if st := h.s.Jobs["default/slow"]; st.Status.Done() || st.Hash != JobHash(j2.Spec) || h.active("slow") != 1 {
		t.Fatalf("a new spec: %+v, %d running", st, h.active("slow"))
	}
	// A run replaced midway loses its pods.
	h.agents()
	h.commit(job("slow", 1, 1, 5))
	h.control()
	h.agents()
	h.control()
	for p := range h.s.Pods.All() {
		if p.TemplateHash != h.s.Jobs["default/slow"].Hash {
			t.Fatalf("pod %s of the replaced run is left", p.Name)
		}
	}
	// Removed from git, the Job and its pods go.
	h.commit()
	h.control()
	h.agents()
	if len(h.s.Jobs) != 0 || h.s.Pods.Len() != 0 {
		t.Fatalf("after removal: %d jobs, %d pods", len(h.s.Jobs), h.s.Pods.Len())
	}
}
