package reconcile

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/berth/berth/appliance/state"
)

// Store is what the controllers need of the replicated store.
type Store interface {
	State() *state.State
	Wait(ctx context.Context, afterIndex uint64) (uint64, error)
	Propose(ctx context.Context, batch []state.Command) (uint64, error)
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

// Reset forgets every heartbeat: a master taking office starts its term
// with none, so that no beat it saw while it last led, before others did,
// counts in this term.
func (h *Heartbeats) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = nil
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

	// refused holds, per controller, the digests of the commands (or the
	// batch) refused at its last pass, so that each is logged once.
	refused map[string]map[[sha256.Size]byte]bool
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
	run           func(*state.State, *Desired) []state.Command
}

// pass runs each controller on a fresh snapshot and proposes its commands
// as one batch, so one controller's stale view never fails another's batch.
// The unit of failure is one controller: a revision that does not decode
// stops only the controllers that read it (services, deployments), while
// the node controller and the scheduler, which act on the cluster as it
// is, still run.
func (l *Loop) pass(ctx context.Context, since time.Time, now func() time.Time) {
	for _, c := range []controller{
		{"nodes", false, func(s *state.State, _ *Desired) []state.Command {
			return Nodes(s, l.Heartbeats.Snapshot(), since, now(), l.Timeouts)
		}},
		{"services", true, func(s *state.State, d *Desired) []state.Command {
			return append(ServiceIPs(s, d, l.ServiceCIDR), NodePorts(s, d)...)
		}},
		{"deployments", true, func(s *state.State, d *Desired) []state.Command { return Deployments(s, d, now()) }},
		{"daemonsets", true, func(s *state.State, d *Desired) []state.Command { return DaemonSets(s, d, now()) }},
		{"statefulsets", true, func(s *state.State, d *Desired) []state.Command { return StatefulSets(s, d, now()) }},
		{"claims", true, func(s *state.State, d *Desired) []state.Command { return Claims(s, d) }},
		{"namespaces", false, func(s *state.State, _ *Desired) []state.Command { return Namespaces(s) }},
		{"cronjobs", true, func(s *state.State, d *Desired) []state.Command { return CronJobs(s, d, now()) }},
		{"jobs", true, func(s *state.State, d *Desired) []state.Command { return Jobs(s, d, now()) }},
		{"convergence", true, func(s *state.State, d *Desired) []state.Command { return Convergence(s, d, now()) }},
		{"scheduler", false, func(s *state.State, _ *Desired) []state.Command { return Schedule(s) }},
	} {
		l.control(ctx, c, now)
	}
}

// control runs c once and proposes the part of its batch that applies.
// The batch is first applied to a copy of the snapshot it was planned from
// (Apply leaves its input intact); when it is refused, each command is
// tried in turn on that copy and only those that apply are proposed, as
// Nomad's plan applier commits what fits: the unit of failure is one
// object, so no single Service or pod blocks the rest of its controller's
// work, and a refused command is never written to the Raft log. Apply
// being deterministic, a command the FSM refuses is tried again at the next
// pass, against a newer state. Each refusal is logged when it is new, not
// on every pass. The events of what commits are recorded with it.
func (l *Loop) control(ctx context.Context, c controller, now func() time.Time) {
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
	cmds, refused := plan(s, cmds)
	seen := map[[sha256.Size]byte]bool{}
	for _, r := range refused {
		digest := batchDigest([]state.Command{r.cmd})
		if !l.refused[c.name][digest] {
			log.Warn("controller command refused", "controller", c.name, "command", r.cmd.Type, "err", r.err)
		}
		seen[digest] = true
	}
	if len(cmds) > 0 {
		events := recordEvents(Events(s, d, Component(c.name), cmds, now()))
		if _, err := l.Store.Propose(ctx, append(cmds, events...)); err != nil {
			digest := batchDigest(cmds)
			if !l.refused[c.name][digest] {
				log.Warn("controller batch not committed", "controller", c.name, "commands", len(cmds), "err", err)
			}
			seen[digest] = true
		}
	}
	if l.refused == nil {
		l.refused = map[string]map[[sha256.Size]byte]bool{}
	}
	l.refused[c.name] = seen
}

// refusal is a command Apply refused, and why.
type refusal struct {
	cmd state.Command
	err error
}

// plan returns the commands of cmds that apply to s, in order, each after
// the ones kept before it, and the refused ones.
func plan(s *state.State, cmds []state.Command) ([]state.Command, []refusal) {
	trial := *s
	if state.Apply(&trial, cmds) == nil {
		return cmds, nil
	}
	trial = *s
	var kept []state.Command
	var refused []refusal
	for _, c := range cmds {
		if err := state.Apply(&trial, []state.Command{c}); err != nil {
			refused = append(refused, refusal{c, err})
			continue
		}
		kept = append(kept, c)
	}
	return kept, refused
}

func batchDigest(cmds []state.Command) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range cmds {
		fmt.Fprintf(h, "%s/%d/%d:", c.Type, c.Version, len(c.Payload))
		h.Write(c.Payload)
	}
	return [sha256.Size]byte(h.Sum(nil))
}
