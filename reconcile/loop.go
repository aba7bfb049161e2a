package reconcile

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/berth/berth/appliance/store"
)

// Store is what the controllers need of the replicated store.
type Store interface {
	State() *store.State
	Wait(ctx context.Context, afterIndex uint64) (uint64, error)
	Propose(ctx context.Context, batch []store.Command) (uint64, error)
}

// Heartbeats are the nodes' last check-ins, in the leader's memory only.
type Heartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Beat records a heartbeat of node at t.
func (h *Heartbeats) Beat(node string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = map[string]time.Time{}
	}
	h.last[node] = t
}

// Snapshot returns a copy of the last heartbeats.
func (h *Heartbeats) Snapshot() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]time.Time, len(h.last))
	for k, v := range h.last {
		out[k] = v
	}
	return out
}

// Loop runs the controllers while this master leads.
type Loop struct {
	Store       Store
	Heartbeats  *Heartbeats
	ServiceCIDR netip.Prefix
	Timeouts    NodeTimeouts
	Logger      *slog.Logger // nil discards
	// Tick bounds how long time-driven decisions (minReadySeconds, node
	// timeouts) wait when nothing in the state changes.
	Tick time.Duration
	Now  func() time.Time
}

// Run reconciles until ctx ends: after every state change, and every Tick.
func (l *Loop) Run(ctx context.Context) error {
	now := l.Now
	if now == nil {
		now = time.Now
	}
	tick := l.Tick
	if tick == 0 {
		tick = time.Second
	}
	log := l.log()
	since := now()
	var index uint64
	for {
		s := l.Store.State()
		index = s.Index
		l.pass(ctx, since, now)
		waitCtx, cancel := context.WithTimeout(ctx, tick)
		_, err := l.Store.Wait(waitCtx, index)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && waitCtx.Err() == nil {
			log.Warn("waiting for state", "err", err)
		}
	}
}

func (l *Loop) log() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

// pass runs each controller on a fresh snapshot and proposes its commands
// as one batch, so one controller's stale view never fails another's batch.
// The unit of failure is one controller: a revision that does not decode
// stops only the controllers that read it (services, deployments), while
// the node controller and the scheduler, which act on the cluster as it
// is, still run.
func (l *Loop) pass(ctx context.Context, since time.Time, now func() time.Time) {
	log := l.log()
	controllers := []struct {
		name          string
		readsRevision bool
		run           func(*store.State, *Desired) []store.Command
	}{
		{"nodes", false, func(s *store.State, _ *Desired) []store.Command {
			return Nodes(s, l.Heartbeats.Snapshot(), since, now(), l.Timeouts)
		}},
		{"services", true, func(s *store.State, d *Desired) []store.Command { return ServiceIPs(s, d, l.ServiceCIDR) }},
		{"deployments", true, func(s *store.State, d *Desired) []store.Command { return Deployments(s, d, now()) }},
		{"scheduler", false, func(s *store.State, _ *Desired) []store.Command { return Schedule(s) }},
	}
	for _, c := range controllers {
		s := l.Store.State()
		var d *Desired
		if c.readsRevision {
			var err error
			if d, err = DesiredState(s); err != nil {
				log.Error("decoding the applied revision", "controller", c.name, "err", err)
				continue
			}
		}
		cmds := c.run(s, d)
		if len(cmds) == 0 {
			continue
		}
		if _, err := l.Store.Propose(ctx, cmds); err != nil {
			log.Warn("controller proposal failed", "controller", c.name, "commands", len(cmds), "err", err)
		}
	}
}
