package runtime

import (
	"cmp"
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
	return r.ExecStreams(ctx, pod, container, cmd, Streams{})
}

// ErrExecStart marks an exec whose command could not start (not found,
// not executable); the message is runc's, which names no path of the node.
var ErrExecStart = errors.New("the command could not start")

// Streams wire an exec'd command to its caller (`berth exec`).
type Streams struct {
	// Stdin, when set, is the command's standard input; its EOF closes
	// the command's.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output; nil discards it.
	// With TTY there is one terminal, and all output goes to Stdout.
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize carries the terminal's size as it changes (TTY only).
	Resize <-chan TermSize
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// ExecStreams is Exec with the command's input, output and terminal wired
// to s.
func (r *Runtime) ExecStreams(ctx context.Context, pod PodRef, container string, cmd []string, s Streams) (int, error) {
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
	proc.Terminal = s.TTY

	stdinEOF := make(chan struct{})
	creator := cio.NullIO
	if s.Stdin != nil || s.Stdout != nil || s.Stderr != nil || s.TTY {
		stdout, stderr := cmp.Or[io.Writer](s.Stdout, io.Discard), cmp.Or[io.Writer](s.Stderr, io.Discard)
		// cio copies each stream in its own goroutine with io.Copy, which
		// uses a bytes.Buffer's ReadFrom: two of those on one buffer lose
		// output. Serialize writes and hide ReadFrom.
		var mu sync.Mutex
		stdout, stderr = &lockedWriter{mu: &mu, w: stdout}, &lockedWriter{mu: &mu, w: stderr}
		var stdin io.Reader
		if s.Stdin != nil {
			stdin = &eofSignal{r: s.Stdin, eof: stdinEOF}
		}
		opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
		if s.TTY {
			opts = append(opts, cio.WithTerminal)
		}
		creator = cio.NewCreator(opts...)
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
		return -1, fmt.Errorf("%w: %q: %s", ErrExecStart, cmd[0], startErrorMessage(err))
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-stdinEOF:
				// The shim holds the stdin FIFO open too: the command sees
				// EOF only once it lets go.
				_ = p.CloseIO(ctx, containerd.WithStdinCloser)
				stdinEOF = nil
			case sz, ok := <-s.Resize:
				if !ok {
					s.Resize = nil
					continue
				}
				_ = p.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
			}
		}
	}()
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

// eofSignal closes eof when r ends.
type eofSignal struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
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
