package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
)

// followPoll is how often a followed log is checked for more output.
const followPoll = 200 * time.Millisecond

// Logs copies what the container wrote to stdout and stderr (interleaved,
// across its restarts) to w. With follow it keeps copying new output until
// the container is no longer running or ctx ends.
func (r *Runtime) Logs(ctx context.Context, pod PodRef, container string, follow bool, w io.Writer) error {
	key := podKey(pod)
	name, err := logName(key, container)
	if err != nil {
		return err
	}
	// Opened in a root at the pods directory: not even a log file that is a
	// link leads to another file of the node.
	f, err := os.OpenInRoot(r.podsDir(), name)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := r.client.LoadContainer(ctx, containerID(key, container)); err != nil {
			return fmt.Errorf("runtime: pod %s has no container %q: %w", pod, container, errdefs.ErrNotFound)
		}
		return nil // created, not started yet: no output
	}
	if err != nil {
		return fmt.Errorf("runtime: the log of container %q of pod %s: %w", container, pod, pathless(err))
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil || !follow {
		return pathless(err)
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n, err := io.Copy(w, f)
		if err != nil {
			return pathless(err)
		}
		if n > 0 {
			continue
		}
		if !r.running(ctx, containerID(key, container)) {
			// Whatever it wrote before exiting is in the file now.
			_, err := io.Copy(w, f)
			return pathless(err)
		}
	}
}

// pathless keeps what went wrong with a file but not its name, which is
// under the node's data dir: callers pass the error on off the node.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

func (r *Runtime) running(ctx context.Context, id string) bool {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return false
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return false
	}
	st, err := task.Status(ctx)
	if err != nil {
		return errdefs.IsUnavailable(err) // containerd restarting: keep following
	}
	return st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing
}
