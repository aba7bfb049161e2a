package agent

import (
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

// A Job's pod ends: Succeeded when every container exited 0 (under
// OnFailure or Never), Failed when one failed under Never; under
// OnFailure a failed container is restarted, and Always never ends.
func TestPodPhaseOfEndedContainers(t *testing.T) {
	exited := func(code int) runtime.ContainerStatus {
		return runtime.ContainerStatus{ID: "x", State: runtime.StateExited, ExitCode: code}
	}
	running := runtime.ContainerStatus{ID: "y", State: runtime.StateRunning}
	for _, tc := range []struct {
		policy     string
		containers []runtime.ContainerStatus
		want       state.PodPhase
		reason     string
	}{
		{"Never", []runtime.ContainerStatus{exited(0), exited(0)}, state.PodSucceeded, "Completed"},
		{"OnFailure", []runtime.ContainerStatus{exited(0), exited(0)}, state.PodSucceeded, "Completed"},
		{"Never", []runtime.ContainerStatus{exited(0), exited(2)}, state.PodFailed, "Error"},
		{"Never", []runtime.ContainerStatus{running, exited(2)}, state.PodRunning, ""},
		{"OnFailure", []runtime.ContainerStatus{exited(0), exited(2)}, state.PodRunning, ""},
		{"Always", []runtime.ContainerStatus{exited(0), exited(0)}, state.PodRunning, ""},
	} {
		p := &state.Pod{Spec: objects.PodSpec{RestartPolicy: tc.policy}}
		st := &runtime.PodStatus{}
		for i, c := range tc.containers {
			c.Name = string(rune('a' + i))
			p.Spec.Containers = append(p.Spec.Containers, objects.Container{Name: c.Name})
			st.Containers = append(st.Containers, c)
		}
		got := podStatus(p, st, nil, map[string]bool{}, nil, time.Now())
		if got.Phase != tc.want || tc.reason != "" && got.Reason != tc.reason {
			t.Errorf("%s %v: phase %s reason %q, want %s %q", tc.policy, tc.containers, got.Phase, got.Reason, tc.want, tc.reason)
		}
	}
}
