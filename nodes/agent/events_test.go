package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

// scriptedRuntime answers EnsurePod with its statuses in turn (the last
// one from then on), telling of a pull as the real runtime does, and
// fails every exec probe.
type scriptedRuntime struct {
	Runtime
	statuses []runtime.PodStatus
	calls    int
}

func (r *scriptedRuntime) EnsurePod(_ context.Context, p runtime.Pod) (runtime.PodStatus, error) {
	st := r.statuses[min(r.calls, len(r.statuses)-1)]
	r.calls++
	if r.calls == 2 {
		p.ImageEvent("Pulling", `Pulling image "web:1"`)
		p.ImageEvent("Pulled", `Successfully pulled image "web:1" in 1s`)
	}
	if st.Containers[0].State == runtime.StateWaiting {
		return st, errors.New(st.Containers[0].Message)
	}
	return st, nil
}

func (r *scriptedRuntime) Serving(context.Context) error { return nil }

func (r *scriptedRuntime) Exec(context.Context, runtime.PodRef, string, []string) (int, error) {
	return 1, nil
}

// unreachable is the masters while they do not answer.
type unreachable struct{ Master }

func (unreachable) RecordEvents(context.Context, string, []state.Event) (api.EventReportResult, error) {
	return api.EventReportResult{}, errors.New("connection refused")
}

// TestAgentReportsEvents: the agent tells a failed pull, the pull, the
// container's creation and start, and each failed readiness probe, in one
// report to a real master whose API sets the source to the node; repeated
// probe failures are one event with a count, and a report the masters did
// not take is sent again.
func TestAgentReportsEvents(t *testing.T) {
	master := newMaster(t)
	started := time.Now().Add(time.Second) // after the worker starts
	rt := &scriptedRuntime{statuses: []runtime.PodStatus{
		{Containers: []runtime.ContainerStatus{{Name: "c", Image: "web:1", State: runtime.StateWaiting, Reason: runtime.ReasonErrImagePull, Message: "pull web:1: not found"}}},
		{IP: "10.244.0.9", Containers: []runtime.ContainerStatus{{Name: "c", Image: "web:1", ID: "c1", State: runtime.StateRunning, StartedAt: started}}},
	}}
	probe := &objects.Probe{Handler: objects.Handler{Exec: &objects.ExecAction{Command: []string{"ready"}}}, TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	p := &state.Pod{Namespace: "default", Name: "p1", Created: time.Now(),
		Spec: objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "web:1", ReadinessProbe: probe}}}}
	a := agentWithPod(t, master, filepath.Join(t.TempDir(), "agent"), rt, p)
	ctx := context.Background()
	w := newPodWorker(ctx, a, p)
	w.update(p, &api.NodeAssignment{})
	for range 2 {
		w.sync(ctx)
	}
	// Three probes, a second apart, each due.
	st := rt.statuses[1]
	for i := range 3 {
		w.probe(ctx, p, &st, started.Add(time.Duration(i)*time.Second))
	}

	// A report the masters do not take goes back in the queue.
	a.cfg.Master = unreachable{master}
	a.flushEvents(ctx)
	a.cfg.Master = master
	a.flushEvents(ctx)

	var got []string
	for _, e := range master.st.State().Events {
		if e.Source != (state.EventSource{Component: api.AgentComponent, Host: "n1"}) || e.Object != (state.ObjectRef{Kind: "Pod", Namespace: "default", Name: "p1"}) {
			t.Errorf("event %+v: want it about default/p1 from kubelet on n1", e)
		}
		got = append(got, fmt.Sprintf("%s %s x%d: %s", e.Type, e.Reason, e.Count, e.Message))
	}
	want := []string{
		`Warning Failed x1: Failed to pull image "web:1": pull web:1: not found`,
		`Normal Pulling x1: Pulling image "web:1"`,
		`Normal Pulled x1: Successfully pulled image "web:1" in 1s`,
		`Normal Created x1: Created container c`,
		`Normal Started x1: Started container c`,
		`Warning Unhealthy x3: Readiness probe failed (container c): command [ready] exited with 1`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%q\nwant\n%q", got, want)
	}
}

// Container events are the changes between two syncs: a crash loop's
// BackOff once per time it starts waiting, an image back-off as Normal,
// nothing for a status that did not change, and nothing for a container
// an agent restarted finds started before it.
func TestContainerEvents(t *testing.T) {
	a, err := New(Config{Node: state.Node{Name: "n1"}, Master: newMaster(t), DataDir: t.TempDir(),
		NewRuntime: func(context.Context, state.Node) (Runtime, error) { return nil, errors.New("not needed") }})
	if err != nil {
		t.Fatal(err)
	}
	p := &state.Pod{Namespace: "default", Name: "p1"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(cs ...runtime.ContainerStatus) *runtime.PodStatus { return &runtime.PodStatus{Containers: cs} }
	running := runtime.ContainerStatus{Name: "c", ID: "c1", State: runtime.StateRunning, StartedAt: t0}
	crashing := runtime.ContainerStatus{Name: "c", ID: "c1", State: runtime.StateWaiting, Reason: runtime.ReasonCrashLoopBackOff, StartedAt: t0}
	pullBackOff := runtime.ContainerStatus{Name: "sidecar", Image: "side:1", State: runtime.StateWaiting, Reason: runtime.ReasonImagePullBackOff}
	restarted := running
	restarted.StartedAt = t0.Add(time.Minute)

	a.containerEvents(p, nil, pod(running), t0.Add(time.Hour), t0) // the agent started after it
	a.containerEvents(p, pod(running), pod(crashing, pullBackOff), t0, t0)
	a.containerEvents(p, pod(crashing, pullBackOff), pod(crashing, pullBackOff), t0, t0)
	a.containerEvents(p, pod(crashing, pullBackOff), pod(restarted, pullBackOff), t0, t0)
	a.containerEvents(p, pod(restarted, pullBackOff), pod(crashing, pullBackOff), t0, t0)
	var got []string
	for _, e := range a.events.pending {
		got = append(got, fmt.Sprintf("%s %s x%d: %s", e.Type, e.Reason, e.Count, e.Message))
	}
	want := []string{
		`Normal BackOff x1: Back-off pulling image "side:1"`,
		`Normal Started x1: Started container c`,
		`Warning BackOff x2: Back-off restarting failed container c in pod default/p1`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%q\nwant\n%q", got, want)
	}
}

// A pod whose configuration is missing runs nothing, so no container tells
// it: the agent does, once as it reports the status.
func TestConfigErrorEvent(t *testing.T) {
	master := newMaster(t)
	c := objects.Container{Name: "c", Image: "web:1", Env: []objects.EnvVar{{Name: "A",
		ValueFrom: &objects.EnvVarSource{ConfigMapKeyRef: &objects.KeySelector{Name: "missing", Key: "k"}}}}}
	p := &state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{Containers: []objects.Container{c}}}
	a := agentWithPod(t, master, filepath.Join(t.TempDir(), "agent"), &scriptedRuntime{}, p)
	ctx := context.Background()
	w := newPodWorker(ctx, a, p)
	w.update(p, &api.NodeAssignment{})
	for range 3 {
		w.sync(ctx)
	}
	a.flushEvents(ctx)
	evs := master.st.State().Events
	if len(evs) != 1 || evs[0].Type != state.EventWarning || evs[0].Reason != "Failed" || evs[0].Count != 1 ||
		evs[0].Message != `Error: ConfigMap default/missing has no key "k"` {
		t.Errorf("events = %+v", evs)
	}
}
