package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/dns"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/reconcile"
)

// Master is the masters' API as the agent uses it (api.Client has it).
type Master interface {
	RegisterNode(ctx context.Context, n state.Node) (state.Node, error)
	Heartbeat(ctx context.Context, node string, hb api.Heartbeat) error
	NodePods(ctx context.Context, node string, w *api.Watch) (api.NodeAssignment, uint64, error)
	SetPodStatus(ctx context.Context, namespace, name string, st state.PodStatus) error
	DeletePod(ctx context.Context, namespace, name string) error
	ForgetClaim(ctx context.Context, namespace, name string) error
	RecordEvents(ctx context.Context, node string, events []state.Event) (api.EventReportResult, error)
}

// Runtime is the container runtime as the agent drives it
// (runtime.Runtime has it).
type Runtime interface {
	EnsurePod(ctx context.Context, pod runtime.Pod) (runtime.PodStatus, error)
	StopPod(ctx context.Context, pod runtime.PodRef, grace time.Duration) error
	StopContainer(ctx context.Context, pod runtime.PodRef, container string, grace time.Duration) error
	ListPods(ctx context.Context) ([]runtime.PodStatus, error)
	Exec(ctx context.Context, pod runtime.PodRef, container string, cmd []string) (int, error)
	ExecStreams(ctx context.Context, pod runtime.PodRef, container string, cmd []string, s runtime.Streams) (int, error)
	Usage(ctx context.Context) ([]runtime.ContainerUsage, error)
	Logs(ctx context.Context, pod runtime.PodRef, container string, follow bool, w io.Writer) error
	// Serving fails while the container runtime does not answer.
	Serving(ctx context.Context) error
}

// Config wires an Agent.
type Config struct {
	// Node is what the agent registers: name, address of its log server,
	// labels and capacity (see NodeInfo).
	Node   state.Node
	Master Master
	// NewRuntime builds the runtime once the masters have registered the
	// node: the pod network needs its pod CIDR and the cluster's range.
	NewRuntime func(ctx context.Context, node state.Node) (Runtime, error)
	// DataDir holds the pods' volumes.
	DataDir string
	// NodeDir is the node's data dir, DataDir's by default: pod statuses
	// say DATA for it, so no one who reads them learns the node's paths.
	NodeDir string
	// Heartbeat is the heartbeat period (default 2 s, a quarter of the
	// masters' default grace).
	Heartbeat time.Duration
	// Resync is how often each pod is checked and probed even when nothing
	// changed (default 1 s, the probes' resolution).
	Resync time.Duration
	// Retry is the pause after a failed call to the masters (default 1 s).
	Retry time.Duration
	// EventFlush is how often events are reported (DefaultEventFlush).
	EventFlush time.Duration
	// Routes, when set, is given the routes to the other nodes' pods each
	// time they change, and again after it failed.
	Routes func([]api.PodRoute) error
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
	// ClusterDNS, when set, is the node's cluster DNS server address for
	// the pods it starts; none (or no answer) gives them the host's
	// resolvers, HostDNS.
	ClusterDNS func() string
	HostDNS    dns.ResolvConf
	// Services, when set, is the latest view of the Services: pods that
	// start get the variables of their namespace's (enableServiceLinks).
	Services func() []reconcile.ServiceView
	Logger   *slog.Logger
}

// Agent runs the pods the masters bind to its node.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	rt      Runtime
	workers map[string]*podWorker
	// retiring are workers stopping a removed pod; a new pod of the same
	// name waits for them, so a late StopPod never kills it.
	retiring map[string]*podWorker
	ready    chan struct{} // closed once the runtime is up
	// runtimeDown is set while the runtime does not answer: pods keep
	// their last reported status, and the node reports the problem.
	runtimeDown atomic.Bool
	// noSpaceUntil (Unix ns) holds DiskPressure on for a while after a
	// write on the node failed for lack of space.
	noSpaceUntil atomic.Int64
	// sessions holds a token per exec or port-forward session open.
	sessions chan struct{}
	events   eventQueue
}

// diskPressureFree is the share of the data dir's file system that must
// stay free, as the kubelet's nodefs.available<10% hard threshold.
const diskPressureFree = 0.10

// noSpaceHold is how long a failed write keeps DiskPressure on.
const noSpaceHold = time.Minute

// disk reports whether the node's disk is nearly full, or a write failed
// for lack of space within noSpaceHold, and its free bytes (0: unknown).
func (a *Agent) disk(now time.Time) (pressure bool, free int64) {
	var st unix.Statfs_t
	if err := unix.Statfs(a.cfg.DataDir, &st); err != nil || st.Blocks == 0 {
		return now.UnixNano() < a.noSpaceUntil.Load(), 0
	}
	return now.UnixNano() < a.noSpaceUntil.Load() || float64(st.Bavail) < diskPressureFree*float64(st.Blocks), int64(st.Bavail) * st.Bsize
}

// noSpace records a write that failed for lack of space.
func (a *Agent) noSpace(now time.Time) { a.noSpaceUntil.Store(now.Add(noSpaceHold).UnixNano()) }

// runtimeProblem is what a heartbeat says while the runtime is down: a
// stable text, so that the masters record it once.
const runtimeProblem = "container runtime is down"

// DefaultHeartbeat is the agent's heartbeat period: short, so that the
// masters see a lost node within seconds; a beat is one small request.
const DefaultHeartbeat = 2 * time.Second

// New checks cfg and fills its defaults.
func New(cfg Config) (*Agent, error) {
	if cfg.Node.Name == "" || cfg.Master == nil || cfg.NewRuntime == nil || cfg.DataDir == "" {
		return nil, errors.New("agent: Node.Name, Master, NewRuntime and DataDir are required")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.EventFlush <= 0 {
		cfg.EventFlush = DefaultEventFlush
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = dns.DefaultDomain
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NodeDir == "" {
		cfg.NodeDir = cfg.DataDir
	}
	nodeDir, err := filepath.Abs(cfg.NodeDir)
	if err != nil {
		return nil, err
	}
	cfg.NodeDir = nodeDir
	return &Agent{cfg: cfg, log: cfg.Logger.With("node", cfg.Node.Name), workers: map[string]*podWorker{}, retiring: map[string]*podWorker{}, ready: make(chan struct{}),
		sessions: make(chan struct{}, maxSessions)}, nil
}

// Run registers the node, then heartbeats, watches the node's pods and
// runs them until ctx ends. Pods keep running when it returns: stopping the
// agent is not stopping the node's workloads, as with the kubelet.
func (a *Agent) Run(ctx context.Context) error {
	node, err := a.register(ctx)
	if err != nil {
		return err
	}
	rt, err := a.cfg.NewRuntime(ctx, node)
	if err != nil {
		return fmt.Errorf("agent: runtime: %w", err)
	}
	a.mu.Lock()
	a.rt = rt
	a.mu.Unlock()
	close(a.ready)
	a.log.Info("node registered", "podCIDR", node.PodCIDR, "address", a.cfg.Node.Address)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.heartbeat(ctx) }()
	go func() { defer wg.Done(); a.reportEvents(ctx) }()
	err = a.watch(ctx)
	wg.Wait()
	a.waitWorkers()
	return err
}

// register retries until the masters answer: an agent may start first.
func (a *Agent) register(ctx context.Context) (n state.Node, err error) {
	err = retry.Until(ctx, retry.Backoff{Base: a.cfg.Retry, Max: a.cfg.Retry}, func() (err error) {
		n, err = a.cfg.Master.RegisterNode(ctx, a.cfg.Node)
		return err
	}, func(err error, _ time.Duration) { a.log.Warn("registering node", "err", err) })
	return n, err
}

func (a *Agent) heartbeat(ctx context.Context) {
	every(ctx, a.cfg.Heartbeat, func() {
		if err := a.beat(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat", "err", err)
		}
	})
}

// every calls do once a period, the first a period from now, until ctx
// ends.
func every(ctx context.Context, period time.Duration, do func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		do()
	}
}

// beat sends one heartbeat, with the runtime's problem if it has one.
func (a *Agent) beat(ctx context.Context) error {
	var hb api.Heartbeat
	hb.DiskPressure, hb.FreeBytes = a.disk(time.Now())
	if a.checkRuntime(ctx) != nil {
		hb.Problem = runtimeProblem
	}
	err := a.cfg.Master.Heartbeat(ctx, a.cfg.Node.Name, hb)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == http.StatusNotFound {
		// The masters lost the node (a restored snapshot, a removed
		// node): register again, keeping the same name.
		_, err = a.cfg.Master.RegisterNode(ctx, a.cfg.Node)
	}
	return err
}

// checkRuntime asks the runtime whether it serves, and logs when that
// changes. A runtime not built yet is not down.
func (a *Agent) checkRuntime(ctx context.Context) error {
	rt := a.runtime()
	if rt == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := rt.Serving(ctx)
	if ctx.Err() != nil && err == nil {
		err = ctx.Err()
	}
	switch was := a.runtimeDown.Swap(err != nil); {
	case err != nil && !was:
		a.log.Error("container runtime is down: pods keep their last status and the node reports NotReady", "err", err)
	case err == nil && was:
		a.log.Info("container runtime is back")
	}
	return err
}

// watch follows the node's assignment with blocking queries and hands each
// version to the pod workers.
func (a *Agent) watch(ctx context.Context) error {
	var index uint64
	first := true
	routes := routeSync{set: a.cfg.Routes, log: a.log}
	for ctx.Err() == nil {
		asg, idx, err := a.cfg.Master.NodePods(ctx, a.cfg.Node.Name, &api.Watch{Index: index, Wait: 30 * time.Second})
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("watching pods", "err", err)
				retry.Sleep(ctx, a.cfg.Retry)
			}
			continue
		}
		if first {
			// Whatever runs here that the masters no longer bind to this
			// node (deleted while the agent was down) is stopped once.
			a.stopOrphans(ctx, &asg)
			first = false
		}
		a.dispatch(ctx, &asg)
		a.release(ctx, &asg)
		routes.update(asg.Routes)
		index = idx
	}
	return ctx.Err()
}

// routeSync gives set the routes to the other nodes' pods when they
// change, and again on every update after a failure, which it logs once.
type routeSync struct {
	set  func([]api.PodRoute) error // nil: routes are not the agent's job
	log  *slog.Logger
	last *[]api.PodRoute // as last set; nil: not since the agent started
	err  string          // the last failure, logged
}

func (r *routeSync) update(routes []api.PodRoute) {
	if r.set == nil || r.last != nil && slices.Equal(routes, *r.last) {
		return
	}
	err := r.set(routes)
	if err == nil {
		r.last, r.err = &routes, ""
		return
	}
	// A failed set may have done part of its work: whatever comes next
	// is set again.
	r.last = nil
	if err.Error() != r.err {
		r.log.Warn("routes to the other nodes' pods", "err", err)
		r.err = err.Error()
	}
}

// dispatch starts a worker for each new pod, updates the others, and stops
// the workers of pods that left the assignment.
func (a *Agent) dispatch(ctx context.Context, asg *api.NodeAssignment) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, w := range a.retiring {
		select {
		case <-w.done:
			delete(a.retiring, key)
		default:
		}
	}
	seen := map[string]bool{}
	for i := range asg.Pods {
		p := &asg.Pods[i]
		key := p.Key()
		seen[key] = true
		w := a.workers[key]
		if w == nil || w.uid != podUID(p) {
			if w != nil {
				a.retire(key, w)
			}
			w = newPodWorker(ctx, a, p)
			a.workers[key] = w
			go w.run(a.retiring[key])
		}
		w.update(p, asg)
	}
	for key, w := range a.workers {
		if !seen[key] {
			a.retire(key, w)
		}
	}
}

// release deletes the data of the node's released claims that no pod
// here uses (one still stopping may), then tells the masters, who forget
// the claim. What fails is tried again with the next assignment.
func (a *Agent) release(ctx context.Context, asg *api.NodeAssignment) {
	a.mu.Lock()
	inUse := map[string]bool{}
	for _, m := range []map[string]*podWorker{a.workers, a.retiring} {
		for _, w := range m {
			if p, _ := w.latest(); p != nil {
				for _, name := range p.Spec.Claims() {
					inUse[state.PodKey(p.Namespace, name)] = true
				}
			}
		}
	}
	a.mu.Unlock()
	for _, c := range asg.Claims {
		if !c.Released || inUse[c.Key()] {
			continue
		}
		if err := os.RemoveAll(claimDir(a.cfg.DataDir, c.Namespace, c.Name)); err != nil {
			a.log.Warn("deleting a released claim's data", "claim", c.Key(), "err", a.hidePaths(err.Error()))
			continue
		}
		if err := a.cfg.Master.ForgetClaim(ctx, c.Namespace, c.Name); err != nil {
			a.log.Warn("forgetting a released claim", "claim", c.Key(), "err", err)
			continue
		}
		a.log.Info("released claim deleted", "claim", c.Key())
	}
}

func (a *Agent) retire(key string, w *podWorker) {
	w.remove()
	delete(a.workers, key)
	a.retiring[key] = w
}

func (a *Agent) stopOrphans(ctx context.Context, asg *api.NodeAssignment) {
	running, err := a.rt.ListPods(ctx)
	if err != nil {
		a.log.Warn("listing pods in the runtime", "err", err)
		return
	}
	bound := map[string]bool{}
	for _, p := range asg.Pods {
		bound[p.Key()] = true
	}
	for _, p := range running {
		if !bound[p.Namespace+"/"+p.Name] {
			a.log.Info("stopping pod no longer bound to this node", "pod", p.PodRef)
			if err := a.rt.StopPod(ctx, p.PodRef, runtime.DefaultGracePeriod); err != nil {
				a.log.Warn("stopping pod", "pod", p.PodRef, "err", err)
			}
		}
	}
}

// waitWorkers waits for the workers to return after cancellation.
func (a *Agent) waitWorkers() {
	a.mu.Lock()
	var ws []*podWorker
	for _, m := range []map[string]*podWorker{a.workers, a.retiring} {
		for _, w := range m {
			ws = append(ws, w)
		}
	}
	a.mu.Unlock()
	for _, w := range ws {
		<-w.done
	}
}

// runtime returns the runtime once Run has built it, or nil.
func (a *Agent) runtime() Runtime {
	select {
	case <-a.ready:
		return a.rt
	default:
		return nil
	}
}
