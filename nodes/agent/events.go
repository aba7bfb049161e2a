package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
)

// DefaultEventFlush is how often the agent reports its events: every event
// reported is a Raft entry on the masters, so they go in one batch per
// period, each repeat within it (a probe failing every second) folded into
// one event with a count.
const DefaultEventFlush = 5 * time.Second

// maxPendingEvents bounds the events waiting for the masters (while they
// are unreachable, say); the oldest are dropped first.
const maxPendingEvents = 500

// eventQueue holds the agent's events until they are reported.
type eventQueue struct {
	mu      sync.Mutex
	pending []state.Event
	dropped int // since the last report
}

// record queues an event about the node's pod p (kubelet-like: the masters
// set the source) at now.
func (a *Agent) record(p *state.Pod, typ, reason string, now time.Time, format string, args ...any) {
	e := state.NewEvent(typ, reason, state.ObjectRef{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
		state.EventSource{Component: "kubelet", Host: a.cfg.Node.Name}, now, "%s", a.hidePaths(fmt.Sprintf(format, args...)))
	q := &a.events
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = state.AddEvent(q.pending, e)
	q.bound()
}

// bound drops the oldest pending events beyond maxPendingEvents; q.mu is
// held.
func (q *eventQueue) bound() {
	if over := len(q.pending) - maxPendingEvents; over > 0 {
		q.pending = slices.Delete(q.pending, 0, over)
		q.dropped += over
	}
}

// reportEvents reports the queued events every period until ctx ends.
func (a *Agent) reportEvents(ctx context.Context) {
	every(ctx, a.cfg.EventFlush, func() { a.flushEvents(ctx) })
}

// flushEvents sends one batch of queued events; a batch the masters did not
// take goes back in front of what came since, to be sent next time.
func (a *Agent) flushEvents(ctx context.Context) {
	q := &a.events
	q.mu.Lock()
	n := min(len(q.pending), state.MaxEventBatch)
	batch := slices.Clone(q.pending[:n])
	q.pending = slices.Delete(q.pending, 0, n)
	dropped := q.dropped
	q.dropped = 0
	q.mu.Unlock()
	if dropped > 0 {
		a.log.Warn("events dropped: the masters did not take them in time", "dropped", dropped)
	}
	if n == 0 {
		return
	}
	if _, err := a.cfg.Master.RecordEvents(ctx, a.cfg.Node.Name, batch); err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reporting events", "events", n, "err", err)
		}
		q.mu.Lock()
		for _, e := range q.pending {
			batch = state.AddEvent(batch, e)
		}
		q.pending = batch
		q.bound()
		q.mu.Unlock()
	}
}

// containerEvents records what changed in the pod's containers between two
// syncs, in the kubelet's words: Created and Started for a new run, Failed
// and BackOff when a container waits or fails for a new reason. prev is
// nil at the pod's first sync in this agent, when only a start after
// since (the worker's start) is new.
func (a *Agent) containerEvents(p *state.Pod, prev, cur *runtime.PodStatus, since, now time.Time) {
	for _, cs := range slices.Concat(cur.InitContainers, cur.Containers) {
		var old *runtime.ContainerStatus
		if prev != nil {
			old = prev.Container(cs.Name)
		}
		if cs.ID != "" && !cs.StartedAt.IsZero() && (old == nil || old.ID != cs.ID || cs.StartedAt.After(old.StartedAt)) &&
			(prev != nil || !cs.StartedAt.Before(since)) {
			if old == nil || old.ID != cs.ID {
				a.record(p, state.EventNormal, "Created", now, "Created container %s", cs.Name)
			}
			a.record(p, state.EventNormal, "Started", now, "Started container %s", cs.Name)
		}
		if old != nil && old.State == cs.State && old.Reason == cs.Reason {
			continue
		}
		switch cs.Reason {
		case runtime.ReasonErrImagePull, runtime.ReasonInvalidImageName, runtime.ReasonErrImageNeverPull:
			a.record(p, state.EventWarning, "Failed", now, "Failed to pull image %q: %s", cs.Image, cs.Message)
		case runtime.ReasonImagePullBackOff:
			a.record(p, state.EventNormal, "BackOff", now, "Back-off pulling image %q", cs.Image)
		case runtime.ReasonCrashLoopBackOff:
			a.record(p, state.EventWarning, "BackOff", now, "Back-off restarting failed container %s in pod %s", cs.Name, p.Key())
		case runtime.ReasonCreateConfigError, runtime.ReasonCreateError, runtime.ReasonStartError:
			a.record(p, state.EventWarning, "Failed", now, "Error: %s", cs.Message)
		}
	}
}
