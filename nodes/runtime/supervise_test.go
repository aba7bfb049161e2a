package runtime

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/schemas/objects"
)

// TestDaemonSupervised: kill -9 of the containerd berth started is noticed
// and logged, containerd comes back on its own, and the pod under it runs
// on, the same process, adopted by the new daemon. Before, nothing
// restarted it and every pod went to ContainerCreating. It is not
// parallel, so no other test runs while containerd is down.
func TestDaemonSupervised(t *testing.T) {
	need(t)
	pod := testPod("survivor-2", Container{Spec: objects.Container{Name: "web", Image: env.hello}, Env: []string{"VERSION=v5"}})
	stopAtEnd(t, pod.PodRef)
	before := ensure(t, pod)

	var logs syncBuffer
	env.daemon.Supervise(slog.New(slog.NewTextHandler(&logs, nil)))
	process := func() int {
		env.daemon.mu.Lock()
		defer env.daemon.mu.Unlock()
		return env.daemon.cmd.Process.Pid
	}
	old := process()
	env.daemon.mu.Lock()
	err := env.daemon.cmd.Process.Kill()
	env.daemon.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// Until the new daemon serves, the runtime's calls fail.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, _, err := env.rt.Status(context.Background(), pod.PodRef); err == nil && process() != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not back within 30 s:\n%s", logs.String())
		}
	}
	after := waitFor(t, pod.PodRef, "running under the restarted containerd", func(s PodStatus) bool {
		c := s.Container("web")
		return c != nil && c.State == StateRunning
	})
	if after.Containers[0].PID != before.Containers[0].PID {
		t.Errorf("the container changed under the restart: %+v, before %+v", after, before)
	}
	if again := ensure(t, pod); again.Containers[0].PID != before.Containers[0].PID {
		t.Errorf("EnsurePod after the restart replaced the container: %+v", again)
	}
	if !strings.Contains(logs.String(), "containerd exited; restarting it") {
		t.Errorf("the crash was not logged:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
