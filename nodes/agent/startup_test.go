package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

// execRuntime answers exec probes from a script, by command, and counts
// the containers it was asked to stop.
type execRuntime struct {
	Runtime
	exits   map[string][]int // per command: the exit codes, in order, then 0
	ran     map[string]int
	stopped int
}

func (r *execRuntime) Exec(_ context.Context, _ runtime.PodRef, _ string, cmd []string) (int, error) {
	r.ran[cmd[0]]++
	if codes := r.exits[cmd[0]]; len(codes) > 0 {
		r.exits[cmd[0]] = codes[1:]
		return codes[0], nil
	}
	return 0, nil
}

func (r *execRuntime) StopContainer(context.Context, runtime.PodRef, string, time.Duration) error {
	r.stopped++
	return nil
}

// A startup probe holds back readiness and liveness until it succeeds, and
// restarts the container after failureThreshold failures in a row, as the
// kubelet does; time is the test's.
func TestStartupProbe(t *testing.T) {
	probe := func(cmd string) *objects.Probe {
		return &objects.Probe{Handler: objects.Handler{Exec: &objects.ExecAction{Command: []string{cmd}}}, TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		startupExit []int
		wantReady   bool // after 5 s, or when stopped
		wantStopped int
	}{
		{"starts on the third try", []int{1, 1}, true, 0},
		{"never starts", []int{1, 1, 1}, false, 1},
	} {
		rt := &execRuntime{exits: map[string][]int{"started": tc.startupExit}, ran: map[string]int{}}
		a, err := New(Config{Node: state.Node{Name: "n1"}, Master: newMaster(t), DataDir: filepath.Join(t.TempDir(), "agent"),
			NewRuntime: func(context.Context, state.Node) (Runtime, error) { return rt, nil },
			Logger:     slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		a.rt = rt
		c := objects.Container{Name: "c", Image: "i", StartupProbe: probe("started"), ReadinessProbe: probe("ready"), LivenessProbe: probe("alive")}
		p := &state.Pod{Namespace: "default", Name: "p", Spec: objects.PodSpec{Containers: []objects.Container{c}}}
		w := newPodWorker(context.Background(), a, p)
		w.update(p, &api.NodeAssignment{})
		st := runtime.PodStatus{IP: "10.244.0.9", Containers: []runtime.ContainerStatus{{Name: "c", ID: "x", State: runtime.StateRunning, StartedAt: t0}}}
		var ready map[string]bool
		for i := range 2 {
			ready = w.probe(context.Background(), p, &st, t0.Add(time.Duration(i)*time.Second))
			if ready["c"] || rt.ran["ready"]+rt.ran["alive"] > 0 {
				t.Fatalf("%s: before the startup probe passed: ready %v, other probes ran %v", tc.name, ready, rt.ran)
			}
		}
		// Until the runtime restarts a stopped container (a new one,
		// probed anew), as far as the third startup probe and on.
		for i := 2; i < 5 && rt.stopped == 0; i++ {
			ready = w.probe(context.Background(), p, &st, t0.Add(time.Duration(i)*time.Second))
		}
		if ready["c"] != tc.wantReady || rt.stopped != tc.wantStopped {
			t.Errorf("%s: ready %v, stopped %d; want %v, %d (probes ran %v)", tc.name, ready["c"], rt.stopped, tc.wantReady, tc.wantStopped, rt.ran)
		}
	}
}
