package runtime

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/schemas/objects"
)

// TestExecStdinAndUsage: an exec'd command reads its stdin to the end (the
// EOF reaches it through the shim); a missing binary is ErrExecStart; a
// running container's cgroup shows memory in use and CPU time.
func TestExecStdinAndUsage(t *testing.T) {
	need(t)
	t.Parallel()
	pod := testPod("usage-1", Container{Spec: objects.Container{Name: "web", Image: env.hello}})
	stopAtEnd(t, pod.PodRef)
	ensure(t, pod)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var out, errOut bytes.Buffer
	code, err := env.rt.ExecStreams(ctx, pod.PodRef, "web", []string{"sh", "-c", "wc -c; echo oops >&2; exit 4"},
		Streams{Stdin: strings.NewReader(strings.Repeat("x", 100000)), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 4 || strings.TrimSpace(out.String()) != "100000" || errOut.String() != "oops\n" {
		t.Errorf("exec with stdin: %d %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}
	if _, err := env.rt.ExecStreams(ctx, pod.PodRef, "web", []string{"/no/such/binary"}, Streams{}); !errors.Is(err, ErrExecStart) {
		t.Errorf("exec of a missing binary: %v, want ErrExecStart", err)
	}

	usage, err := env.rt.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range usage {
		if u.Pod == pod.PodRef {
			found = true
			if u.Container != "web" || u.WorkingSet == 0 || u.CPUNanos == 0 {
				t.Errorf("usage of the pod: %+v, want memory and CPU time", u)
			}
		}
	}
	if !found {
		t.Errorf("usage lists no container of the pod: %+v", usage)
	}
}
