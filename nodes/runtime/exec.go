package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
)

// Exec runs cmd in a running container, as the container's user and with
// its environment, and returns its exit code: what exec probes need. An
// error means the command could not be run at all (no such container,
// binary not found) or ctx ended first, in which case it is killed.
func (r *Runtime) Exec(ctx context.Context, pod PodRef, container string, cmd []string) (int, error) {
	return r.ExecStream(ctx, pod, container, cmd, nil, nil)
}

// ExecStream is Exec with the command's output copied to stdout and
// stderr (either may be nil to discard it).
func (r *Runtime) ExecStream(ctx context.Context, pod PodRef, container string, cmd []string, stdout, stderr io.Writer) (int, error) {
	ctx = r.withLog(ctx)
	if len(cmd) == 0 {
		return -1, errors.New("runtime: exec: empty command")
	}
	c, err := r.client.LoadContainer(ctx, containerID(podKey(pod), container))
	if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s/%s: %w", pod, container, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s/%s: container is not running: %w", pod, container, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, err
	}
	proc := *spec.Process
	proc.Args = cmd
	proc.Terminal = false

	creator := cio.NullIO
	if stdout != nil || stderr != nil {
		if stdout == nil {
			stdout = io.Discard
		}
		if stderr == nil {
			stderr = io.Discard
		}
		// cio copies each stream in its own goroutine with io.Copy, which
		// uses a bytes.Buffer's ReadFrom: two of those on one buffer lose
		// output. Serialize writes and hide ReadFrom.
		var mu sync.Mutex
		stdout, stderr = &lockedWriter{mu: &mu, w: stdout}, &lockedWriter{mu: &mu, w: stderr}
		creator = cio.NewCreator(cio.WithStreams(nil, stdout, stderr))
	}
	var idb [6]byte
	_, _ = rand.Read(idb[:])
	p, err := task.Exec(ctx, "exec-"+hex.EncodeToString(idb[:]), &proc, creator)
	if err != nil {
		return -1, fmt.Errorf("runtime: exec in %s/%s: %w", pod, container, err)
	}
	// Deleting the exec process also frees its IO; do it even when ctx is
	// done, or the shim keeps it.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = p.Delete(dctx, containerd.WithProcessKill)
	}()
	exited, err := p.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return -1, err
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("runtime: exec %q in %s/%s: %s", cmd[0], pod, container, startErrorMessage(err))
	}
	select {
	case st := <-exited:
		// Let the output copy finish before the caller reads its buffers.
		p.IO().Wait()
		code, _, err := st.Result()
		if err != nil {
			return -1, err
		}
		return int(code), nil
	case <-ctx.Done():
		_ = p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return -1, ctx.Err()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
