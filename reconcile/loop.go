package reconcile

import (
	"context"
	"crypto/sha256"
	"fmt"
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

	// refused holds, per controller, the digest of its last refused batch.
	refused map[string][sha256.Size]byte
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

// controller is one of the leader's controllers, as the loop runs it.
type controller struct {
	name          string
	readsRevision bool
	run           func(*store.State, *Desired) []store.Command
}

// pass runs each controller on a fresh snapshot and proposes its commands
// as one batch, so one controller's stale view never fails another's batch.
// The unit of failure is one controller: a revision that does not decode
// stops only the controllers that read it (services, deployments), while
// the node controller and the scheduler, which act on the cluster as it
// is, still run.
func (l *Loop) pass(ctx context.Context, since time.Time, now func() time.Time) {
	for _, c := range []controller{
		{"nodes", false, func(s *store.State, _ *Desired) []store.Command {
			return Nodes(s, l.Heartbeats.Snapshot(), since, now(), l.Timeouts)
		}},
		{"services", true, func(s *store.State, d *Desired) []store.Command { return ServiceIPs(s, d, l.ServiceCIDR) }},
		{"deployments", true, func(s *store.State, d *Desired) []store.Command { return Deployments(s, d, now()) }},
		{"scheduler", false, func(s *store.State, _ *Desired) []store.Command { return Schedule(s) }},
	} {
		l.control(ctx, c)
	}
}

// control runs c once and proposes its batch. The batch is first applied
// to a copy of the snapshot it was planned from (Apply leaves its input
// intact), and only a batch that applies is proposed, so a refused batch
// is never written to the Raft log, and Apply being deterministic, one
// the FSM does refuse (the state moved in between) is tried against that
// newer state the next time. A refusal is logged when the batch is new,
// not on every pass.
func (l *Loop) control(ctx context.Context, c controller) {
	log := l.log()
	s := l.Store.State()
	var d *Desired
	if c.readsRevision {
		var err error
		if d, err = DesiredState(s); err != nil {
			log.Error("decoding the applied revision", "controller", c.name, "err", err)
			return
		}
	}
	cmds := c.run(s, d)
	if len(cmds) == 0 {
		return
	}
	trial := *s
	err := store.Apply(&trial, cmds)
	if err == nil {
		_, err = l.Store.Propose(ctx, cmds)
	}
	if err == nil {
		delete(l.refused, c.name)
		return
	}
	digest := batchDigest(cmds)
	if l.refused[c.name] != digest {
		log.Warn("controller batch refused", "controller", c.name, "commands", len(cmds), "err", err)
	}
	if l.refused == nil {
		l.refused = map[string][sha256.Size]byte{}
	}
	l.refused[c.name] = digest
}

func batchDigest(cmds []store.Command) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range cmds {
		fmt.Fprintf(h, "%s/%d/%d:", c.Type, c.Version, len(c.Payload))
		h.Write(c.Payload)
	}
	return [sha256.Size]byte(h.Sum(nil))
}
