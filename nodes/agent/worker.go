package agent

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/action"
	"github.com/berth/berth/nodes/runtime"
)

// podWorker owns one pod on the node, as the kubelet's pod workers do: a
// slow image pull or a long grace period holds up only its own pod.
type podWorker struct {
	a   *Agent
	key string
	uid string
	ref runtime.PodRef

	mu      sync.Mutex
	pod     *state.Pod
	asg     *api.NodeAssignment
	wake    chan struct{} // buffered 1: "something changed"
	gone    chan struct{} // closed when the pod left the assignment
	goneSet bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by run.
	probes   map[string]*containerProbes
	reported *state.PodStatus
	// started is when the worker started, and seen the runtime's status
	// at the last sync: what changed between syncs is told in events.
	started    time.Time
	seen       *runtime.PodStatus
	terminated bool
	// refreshFailing: the last refresh of its volumes found no space.
	refreshFailing bool
}

// containerProbes are one container's probe states, reset when the
// container restarts (a new ID).
type containerProbes struct {
	id        string
	readiness *probeState
	liveness  *probeState
	startup   *probeState // nil once it succeeded, or without one
	failures  int         // the startup probe's failures in a row
}

// restart stops a container whose probe failed; the pod's restart policy
// brings it back, and its probes start over.
func (w *podWorker) restart(ctx context.Context, p *state.Pod, container, probe string, why error) {
	w.a.log.Info(probe+" probe failed, restarting container", "pod", w.key, "container", container, "err", why)
	w.a.record(p, state.EventNormal, "Killing", time.Now(), "Container %s failed %s probe, will be restarted", container, probe)
	if err := w.a.rt.StopContainer(ctx, w.ref, container, gracePeriod(p)); err != nil {
		w.a.log.Warn("stopping a container whose probe failed", "pod", w.key, "container", container, "err", err)
	}
	delete(w.probes, container)
}

// podUID tells apart two pods that had the same name at different times.
func podUID(p *state.Pod) string { return strconv.FormatInt(p.Created.UnixNano(), 10) }

func newPodWorker(ctx context.Context, a *Agent, p *state.Pod) *podWorker {
	w := &podWorker{
		a: a, key: p.Key(), uid: podUID(p),
		ref:  runtime.PodRef{Namespace: p.Namespace, Name: p.Name, UID: podUID(p)},
		wake: make(chan struct{}, 1), gone: make(chan struct{}), done: make(chan struct{}),
		probes: map[string]*containerProbes{}, started: time.Now(),
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	return w
}

// update hands the worker the pod's latest version; it never blocks.
func (w *podWorker) update(p *state.Pod, asg *api.NodeAssignment) {
	w.mu.Lock()
	w.pod, w.asg = p, asg
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// remove tells the worker that the masters deleted the pod: it stops the
// pod's containers and returns.
func (w *podWorker) remove() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.goneSet {
		w.goneSet = true
		close(w.gone)
	}
}

func (w *podWorker) latest() (*state.Pod, *api.NodeAssignment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.asg
}

// run works until the pod is removed or the agent stops; prev, if any, is
// the worker of an earlier pod of the same name, which must finish first.
func (w *podWorker) run(prev *podWorker) {
	defer close(w.done)
	defer w.cancel()
	if prev != nil {
		select {
		case <-prev.done:
		case <-w.ctx.Done():
			return
		}
	}
	tick := time.NewTicker(w.a.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.gone:
			p, _ := w.latest()
			if err := w.a.rt.StopPod(w.ctx, w.ref, gracePeriod(p)); err != nil && w.ctx.Err() == nil {
				// The next agent start stops it as an orphan.
				w.a.log.Warn("stopping removed pod", "pod", w.key, "err", err)
			}
			return
		case <-w.wake:
		case <-tick.C:
		}
		w.sync(w.ctx)
	}
}

func gracePeriod(p *state.Pod) time.Duration {
	if p == nil || p.Spec.TerminationGracePeriodSeconds <= 0 {
		return runtime.DefaultGracePeriod
	}
	return time.Duration(p.Spec.TerminationGracePeriodSeconds) * time.Second
}

// sync brings the pod to what the masters want and reports its status
// when it changed.
func (w *podWorker) sync(ctx context.Context) {
	p, asg := w.latest()
	if p.Terminating {
		w.terminate(ctx, p)
		return
	}
	if p.Finished() {
		return // ran to its end: never started again, whatever the runtime holds
	}
	if w.a.runtimeDown.Load() {
		return // what the runtime last said stands; the node reports why
	}
	now := time.Now()
	var st runtime.PodStatus
	rp, err := w.a.runtimePod(asg, p)
	if errors.Is(err, syscall.ENOSPC) && w.reported != nil && w.reported.Phase == state.PodRunning {
		// A running pod keeps the files it has, as the kubelet keeps a
		// pod whose ConfigMap volume it cannot update: the node reports
		// DiskPressure, and the refresh is retried at every sync.
		w.a.noSpace(now)
		if !w.refreshFailing {
			w.a.log.Warn("refreshing a running pod's volumes failed; it keeps its current files, retrying", "pod", w.key, "err", w.a.hidePaths(err.Error()))
		}
		w.refreshFailing = true
		return
	}
	if err == nil && w.refreshFailing {
		w.refreshFailing = false
		w.a.log.Info("refreshed the pod's volumes", "pod", w.key)
	}
	if err == nil {
		st, err = w.a.rt.EnsurePod(ctx, rp)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil && w.a.checkRuntime(ctx) != nil {
		// The runtime, not the pod, failed: its containers may well run
		// on (in their shims), so the last status stands.
		return
	}
	if len(st.Containers)+len(st.InitContainers) > 0 { // else the runtime told nothing
		w.a.containerEvents(p, w.seen, &st, w.started, now)
		w.seen = &st
	}
	ready := w.probe(ctx, p, &st, now)
	status := podStatus(p, &st, err, ready, w.reported, now)
	status.Message = w.a.hidePaths(status.Message)
	if w.reported != nil && reflect.DeepEqual(*w.reported, status) {
		return
	}
	if status.Reason == runtime.ReasonCreateConfigError {
		// Nothing ran, so no container tells it: told as it is reported.
		w.a.record(p, state.EventWarning, "Failed", now, "Error: %s", status.Message)
	}
	if err := w.a.cfg.Master.SetPodStatus(ctx, p.Namespace, p.Name, status); err != nil {
		if ctx.Err() == nil {
			w.a.log.Warn("reporting pod status", "pod", w.key, "err", err)
		}
		return
	}
	w.reported = &status
}

// terminate stops the pod and then asks the masters to delete it; the
// deletion is retried on the next tick until it succeeds.
func (w *podWorker) terminate(ctx context.Context, p *state.Pod) {
	if !w.terminated {
		if err := w.a.rt.StopPod(ctx, w.ref, gracePeriod(p)); err != nil {
			w.a.log.Warn("stopping pod", "pod", w.key, "err", err)
			return
		}
		w.terminated = true
	}
	err := w.a.cfg.Master.DeletePod(ctx, p.Namespace, p.Name)
	var ae *api.Error
	if err != nil && !(errors.As(err, &ae) && ae.Code == 404) && ctx.Err() == nil {
		w.a.log.Warn("deleting stopped pod", "pod", w.key, "err", err)
	}
}

// probe runs the probes that are due and returns, by container name,
// whether each running container counts as ready. A failed liveness probe
// stops the container; EnsurePod restarts it under the back-off.
func (w *podWorker) probe(ctx context.Context, p *state.Pod, st *runtime.PodStatus, now time.Time) map[string]bool {
	ready := map[string]bool{}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		cs := st.Container(c.Name)
		if cs == nil || cs.State != runtime.StateRunning {
			delete(w.probes, c.Name)
			continue
		}
		cp := w.probes[c.Name]
		if cp == nil || cp.id != cs.ID+cs.StartedAt.String() {
			cp = &containerProbes{id: cs.ID + cs.StartedAt.String()}
			if c.ReadinessProbe != nil {
				cp.readiness = newProbeState(c.ReadinessProbe, false, cs.StartedAt)
			}
			if c.LivenessProbe != nil {
				cp.liveness = newProbeState(c.LivenessProbe, true, cs.StartedAt)
			}
			if c.StartupProbe != nil {
				cp.startup = newProbeState(c.StartupProbe, false, cs.StartedAt)
			}
			w.probes[c.Name] = cp
		}
		target := action.Target{IP: st.IP, Ports: c.Ports,
			Exec: func(ctx context.Context, cmd []string) (int, error) { return w.a.rt.Exec(ctx, w.ref, c.Name, cmd) }}
		if s := cp.startup; s != nil {
			// As the kubelet: nothing else is probed, and the container is
			// not ready, until the startup probe has succeeded once.
			if s.due(now) {
				err := w.probeOnce(ctx, p, c.Name, "Startup", s.probe, target, now)
				s.record(now, err)
				if err == nil {
					cp.startup = nil
					for _, other := range []*probeState{cp.liveness, cp.readiness} {
						if other != nil && other.next.Before(now) {
							other.next = now
						}
					}
				} else if cp.failures++; cp.failures >= int(s.probe.FailureThreshold) {
					w.restart(ctx, p, c.Name, "startup", err)
					continue
				}
			}
			if cp.startup != nil {
				ready[c.Name] = false
				continue
			}
		}
		if s := cp.liveness; s != nil && s.due(now) {
			if s.record(now, w.probeOnce(ctx, p, c.Name, "Liveness", s.probe, target, now)) && !s.ok {
				w.restart(ctx, p, c.Name, "liveness", s.lastErr)
				continue
			}
		}
		if s := cp.readiness; s != nil {
			if s.due(now) {
				s.record(now, w.probeOnce(ctx, p, c.Name, "Readiness", s.probe, target, now))
			}
			ready[c.Name] = s.ok
		} else {
			ready[c.Name] = true
		}
	}
	return ready
}
