package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd"

	"github.com/berth/berth/nodes/action"
	"github.com/berth/berth/schemas/objects"
)

// preStop is what a container's preStop hook needs whoever stops it later
// (the agent, a spec change, a restarted agent adopting it): it rides in a
// label of the container, as the spec hash does.
type preStop struct {
	Handler objects.Handler         `json:"handler"`
	Ports   []objects.ContainerPort `json:"ports,omitempty"`
}

// maxLabel stays under containerd's 4096 bytes for a label's key and value.
const maxLabel = 4000

func preStopLabel(c Container) (string, error) {
	b, err := json.Marshal(preStop{Handler: *c.Spec.Lifecycle.PreStop, Ports: c.Spec.Ports})
	if err != nil {
		return "", err
	}
	if len(b) > maxLabel {
		return "", configError{fmt.Errorf("the preStop hook of container %s is %d bytes; berth keeps at most %d", c.Spec.Name, len(b), maxLabel)}
	}
	return string(b), nil
}

// postStart runs the container's postStart hook right after its start,
// bounded by the pod's grace period; a failure is the container's.
func (r *Runtime) postStart(ctx context.Context, pod Pod, sb *sandbox, c Container) error {
	if c.Spec.Lifecycle == nil || c.Spec.Lifecycle.PostStart == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pod.GracePeriod)
	defer cancel()
	err := action.Run(ctx, c.Spec.Lifecycle.PostStart, action.Target{IP: sb.ip, Ports: c.Spec.Ports,
		Exec: func(ctx context.Context, cmd []string) (int, error) { return r.Exec(ctx, pod.PodRef, c.Spec.Name, cmd) }})
	if err != nil {
		return fmt.Errorf("postStart hook: %w", err)
	}
	return nil
}

// stop stops a running container as the kubelet does: its preStop hook
// first, within grace, then SIGTERM with what is left of grace (at least
// 2 s), then SIGKILL.
func (r *Runtime) stop(ctx context.Context, c containerd.Container, task containerd.Task, grace time.Duration) error {
	if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
		start := time.Now()
		r.preStop(ctx, c, grace)
		grace = max(grace-time.Since(start), 2*time.Second)
	}
	return stopTask(ctx, task, grace)
}

// preStop runs the hook the container's label holds, if any; a failure is
// logged, and the container is stopped all the same.
func (r *Runtime) preStop(ctx context.Context, c containerd.Container, grace time.Duration) {
	labels, err := c.Labels(ctx)
	if err != nil || labels[labelPreStop] == "" {
		return
	}
	var hook preStop
	if err := json.Unmarshal([]byte(labels[labelPreStop]), &hook); err != nil {
		r.log.Warn("unreadable preStop hook", "container", c.ID(), "err", err)
		return
	}
	ip := ""
	if sb, err := r.client.LoadContainer(ctx, sandboxID(labels[labelPodKey])); err == nil {
		if l, err := sb.Labels(ctx); err == nil {
			ip = l[labelIP]
		}
	}
	ref, name := refFromLabels(labels), labels[labelContainerName]
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err = action.Run(hctx, &hook.Handler, action.Target{IP: ip, Ports: hook.Ports,
		Exec: func(ctx context.Context, cmd []string) (int, error) { return r.Exec(ctx, ref, name, cmd) }})
	if err != nil {
		r.log.Warn("preStop hook failed", "pod", ref, "container", name, "err", err)
	}
}

// failedPostStart runs the postStart hook of a container just started; if
// it fails, the container is killed, as the kubelet kills it, and restarts
// under its policy and back-off.
func (r *Runtime) failedPostStart(ctx context.Context, pod Pod, sb *sandbox, c Container, cont containerd.Container, cs *ContainerStatus) error {
	err := r.postStart(ctx, pod, sb, c)
	if err == nil {
		return nil
	}
	r.log.Warn("postStart hook failed; killing the container", "pod", pod.PodRef, "container", c.Spec.Name, "err", err)
	if task, terr := cont.Task(ctx, nil); terr == nil {
		if kerr := stopTask(ctx, task, 0); kerr != nil {
			err = fmt.Errorf("%w; killing the container: %v", err, kerr)
		}
	}
	cs.State, cs.Reason, cs.Message = StateWaiting, ReasonPostStartHookError, err.Error()
	return err
}
