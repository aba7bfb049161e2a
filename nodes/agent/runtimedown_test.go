package agent

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

// flakyRuntime is a runtime whose daemon can be down; while it is, every
// call fails as containerd's client does.
type flakyRuntime struct {
	Runtime
	down atomic.Bool
}

var errUnavailable = errors.New("connection error: dial unix containerd.sock: connect: connection refused: unavailable")

func (f *flakyRuntime) Serving(context.Context) error {
	if f.down.Load() {
		return errUnavailable
	}
	return nil
}

func (f *flakyRuntime) EnsurePod(ctx context.Context, p runtime.Pod) (runtime.PodStatus, error) {
	if f.down.Load() {
		return runtime.PodStatus{}, errUnavailable
	}
	st := runtime.PodStatus{PodRef: p.PodRef, IP: "10.244.0.9"}
	for _, c := range p.Containers {
		st.Containers = append(st.Containers, runtime.ContainerStatus{Name: c.Spec.Name, State: runtime.StateRunning})
	}
	return st, nil
}

// agentWithPod is the agent of node n1, registered with master, its
// runtime rt up and running, and pod p bound to n1.
func agentWithPod(t *testing.T, master *testMaster, dataDir string, rt Runtime, p *state.Pod) *Agent {
	t.Helper()
	a, err := New(Config{Node: state.Node{Name: "n1"}, Master: master, DataDir: dataDir,
		NewRuntime: func(context.Context, state.Node) (Runtime, error) { return rt, nil },
		Logger:     slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.rt = rt
	close(a.ready)
	if _, err := master.RegisterNode(context.Background(), state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := master.propose(state.NewCommand(state.CmdCreatePod, *p), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: p.Key(), NodeName: "n1"})); err != nil {
		t.Fatal(err)
	}
	return a
}

// While the container runtime is down, its pods keep the status they had
// (their containers run on in their shims, and Services keep them) and the
// node is NotReady with the reason; when it is back, both recover. Before,
// every pod turned ContainerCreating and the node stayed Ready.
func TestRuntimeDown(t *testing.T) {
	master := newMaster(t)
	rt := &flakyRuntime{}
	p := &state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "i"}}}}
	a := agentWithPod(t, master, filepath.Join(t.TempDir(), "agent"), rt, p)
	ctx := context.Background()
	w := newPodWorker(ctx, a, p)
	w.update(p, &api.NodeAssignment{})
	snapshot := func() (*state.Pod, *state.Node) {
		s := master.st.State()
		return s.Pods.Get(p.Key()), s.Nodes["n1"]
	}
	w.sync(ctx)
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	if pod, node := snapshot(); !pod.Status.Ready || !node.Ready {
		t.Fatalf("runtime up: pod ready %v (%s), node ready %v", pod.Status.Ready, pod.Status.Reason, node.Ready)
	}

	rt.down.Store(true)
	w.sync(ctx)
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	pod, node := snapshot()
	if !pod.Status.Ready || pod.Status.Reason != "" {
		t.Errorf("runtime down: the pod's status changed to ready %v, %s %q", pod.Status.Ready, pod.Status.Reason, pod.Status.Message)
	}
	if node.Ready || node.Reason != runtimeProblem {
		t.Errorf("runtime down: node ready %v, reason %q", node.Ready, node.Reason)
	}

	rt.down.Store(false)
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	w.sync(ctx)
	if pod, node := snapshot(); !pod.Status.Ready || !node.Ready || node.Reason != "" {
		t.Errorf("runtime back: pod ready %v, node ready %v (%q)", pod.Status.Ready, node.Ready, node.Reason)
	}
}
