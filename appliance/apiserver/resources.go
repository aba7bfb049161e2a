package apiserver

import (
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// podRoutes lists the routes to every node but name that has a pod CIDR
// and an IP address (a node that advertises a host name gets none: routes
// need an address on the nodes' shared network).
func podRoutes(st *state.State, name string) []api.PodRoute {
	out := []api.PodRoute{}
	for _, n := range st.Nodes {
		host, _, err := net.SplitHostPort(n.Address)
		if n.Name == name || n.PodCIDR == "" || err != nil || net.ParseIP(host) == nil {
			continue
		}
		out = append(out, api.PodRoute{Node: n.Name, PodCIDR: n.PodCIDR, Via: host})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	out := api.Status{Index: st.Index, Sync: api.SyncStatus{State: "no-repo"}, Nodes: len(st.Nodes), Pods: st.Pods.Len(), Host: s.cfg.Host}
	if s.cfg.Sync != nil {
		out.Sync = s.cfg.Sync()
	}
	if rev := st.Current(); rev != nil {
		out.Commit = rev.Commit
	}
	rolloutStatus(&out, st, time.Now())
	out.TerminatingNamespaces = slices.Sorted(maps.Keys(st.Terminating))
	for _, n := range st.Nodes {
		if n.Ready {
			out.ReadyNodes++
		}
	}
	for p := range st.Pods.All() {
		if p.Status.Ready {
			out.ReadyPods++
		}
	}
	return out, nil
}

func (s *Server) revisions(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	out := []api.RevisionSummary{}
	for i := len(st.Revisions) - 1; i >= 0; i-- {
		out = append(out, summary(&st.Revisions[i]))
	}
	return out, nil
}

func (s *Server) nodes(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	out := []*state.Node{}
	for _, n := range st.Nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) registerNode(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	var n state.Node
	if err := decodeBody(r, &n); err != nil {
		return nil, err
	}
	if n.Name == "" {
		return nil, errorf(http.StatusBadRequest, "node name is required")
	}
	for _, err := range []error{nodeName.check(n.Name), checkAddress(n.Address), checkLabels(n.Labels)} {
		if err != nil {
			return nil, err
		}
	}
	if id := identityOf(r); id.Role == RoleNode && id.Name != n.Name {
		return nil, errorf(http.StatusForbidden, "node %q may only register itself, not %q", id.Name, n.Name)
	}
	now := time.Now()
	if err := s.propose(r, state.NewCommand(state.CmdRegisterNode, n),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: n.Name, Ready: true, Time: now})); err != nil {
		return nil, err
	}
	if err := s.beat(r, s.cfg.Backend.State(), n.Name, api.Heartbeat{}); err != nil {
		return nil, err
	}
	return s.cfg.Backend.State().Nodes[n.Name], nil
}

// maxProblem bounds a heartbeat's problem, which every reader sees.
const maxProblem = 256

// decodeHeartbeat reads a heartbeat's body; agents before problems were
// reported send none.
func decodeHeartbeat(r *http.Request) (api.Heartbeat, error) {
	var hb api.Heartbeat
	if r.ContentLength == 0 {
		return hb, nil
	}
	if err := decodeBody(r, &hb); err != nil {
		return hb, err
	}
	if len(hb.Problem) > maxProblem {
		return hb, errorf(http.StatusBadRequest, "problem: over %d bytes", maxProblem)
	}
	return hb, nil
}

// beat records a heartbeat where the node lifecycle controller runs: in
// the leader's memory, as Nomad keeps them. A follower relays it.
func (s *Server) beat(r *http.Request, st *state.State, name string, hb api.Heartbeat) error {
	if s.cfg.Cluster != nil && !s.cfg.Cluster.IsLeader() {
		return unavailable(s.cfg.Cluster.Forward(r.Context(), "/v1/internal/heartbeat/"+url.PathEscape(name), hb))
	}
	now := time.Now()
	s.cfg.Heartbeats.Beat(name, now)
	n, ok := st.Nodes[name]
	if ok && storageChanged(n, hb.FreeBytes) {
		if err := s.propose(r, state.NewCommand(state.CmdSetNodeStorage, state.NodeStorage{Name: name, FreeBytes: hb.FreeBytes})); err != nil {
			return err
		}
	}
	if ok && n.DiskPressure != hb.DiskPressure {
		event := nodeEvent(name, state.EventWarning, "NodeHasDiskPressure", now, "Node %s status is now: NodeHasDiskPressure", name)
		if !hb.DiskPressure {
			event = nodeEvent(name, state.EventNormal, "NodeHasNoDiskPressure", now, "Node %s status is now: NodeHasNoDiskPressure", name)
		}
		if err := s.propose(r, state.NewCommand(state.CmdSetDiskPressure, state.NodeDiskPressure{Name: name, DiskPressure: hb.DiskPressure}), event); err != nil {
			return err
		}
	}
	switch {
	case !ok:
	case hb.Problem == "" && !n.Ready:
		return s.propose(r, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: name, Ready: true, Time: now}),
			nodeEvent(name, state.EventNormal, "NodeReady", now, "Node %s status is now: NodeReady", name))
	case hb.Problem != "" && (n.Ready || n.Reason != hb.Problem):
		return s.propose(r, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: name, Ready: false, Time: now, Reason: hb.Problem}),
			nodeEvent(name, state.EventWarning, "NodeNotReady", now, "Node %s status is now: NodeNotReady (%s)", name, hb.Problem))
	}
	return nil
}

// nodeEvent records a change of condition that node's heartbeat made, as
// its kubelet would.
func nodeEvent(node, typ, reason string, now time.Time, format string, args ...any) state.Command {
	return state.RecordEvents(state.NewEvent(typ, reason, state.ObjectRef{Kind: "Node", Name: node},
		state.EventSource{Component: api.AgentComponent, Host: node}, now, format, args...))
}

// storageChanged says whether a node's free space moved by more than 1%
// of its filesystem since recorded: the figure is for binding claims, and
// each beat's own would write to the log every 2 s.
func storageChanged(n *state.Node, free int64) bool {
	d := free - n.FreeBytes
	return free > 0 && (n.FreeBytes == 0 || max(d, -d) > n.EphemeralBytes/100)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	name := r.PathValue("name")
	if _, ok := st.Nodes[name]; !ok {
		return nil, errorf(http.StatusNotFound, "no node %q; register it first", name)
	}
	hb, err := decodeHeartbeat(r)
	if err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, s.beat(r, st, name, hb)
}

func (s *Server) nodePods(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	name := r.PathValue("name")
	if _, ok := st.Nodes[name]; !ok {
		return nil, errorf(http.StatusNotFound, "no node %q", name)
	}
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	out := api.NodeAssignment{Pods: []state.Pod{}, ConfigMaps: map[string]*objects.ConfigMap{}, Secrets: map[string]*objects.Secret{},
		Routes: podRoutes(st, name)}
	for _, key := range slices.Sorted(maps.Keys(st.Claims)) {
		if c := st.Claims[key]; c.NodeName == name {
			out.Claims = append(out.Claims, *c)
		}
	}
	for p := range st.Pods.OnNode(name) {
		out.Pods = append(out.Pods, *p)
		for _, ref := range references(&p.Spec) {
			key := p.Namespace + "/" + ref.name
			if ref.secret {
				if v, ok := d.Secrets[key]; ok {
					out.Secrets[key] = v
				}
			} else if v, ok := d.ConfigMaps[key]; ok {
				out.ConfigMaps[key] = v
			}
		}
	}
	return out, nil
}

type reference struct {
	name   string
	secret bool
}

// references lists the ConfigMaps and Secrets a pod reads, so an agent is
// sent those and no others.
func references(spec *objects.PodSpec) []reference {
	var out []reference
	for _, c := range spec.AllContainers() {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				out = append(out, reference{name: e.ValueFrom.ConfigMapKeyRef.Name})
			}
			if e.ValueFrom.SecretKeyRef != nil {
				out = append(out, reference{name: e.ValueFrom.SecretKeyRef.Name, secret: true})
			}
		}
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				out = append(out, reference{name: e.ConfigMapRef.Name})
			}
			if e.SecretRef != nil {
				out = append(out, reference{name: e.SecretRef.Name, secret: true})
			}
		}
	}
	for _, s := range spec.ImagePullSecrets {
		out = append(out, reference{name: s.Name, secret: true})
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			out = append(out, reference{name: v.ConfigMap.Name})
		}
		if v.Secret != nil {
			out = append(out, reference{name: v.Secret.SecretName, secret: true})
		}
	}
	return out
}

func (s *Server) pods(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	q := r.URL.Query()
	out := []*state.Pod{}
	pods := st.Pods.All()
	if node := q.Get("node"); node != "" {
		pods = st.Pods.OnNode(node)
	}
	for p := range pods { // in key order
		if q.Get("namespace") == "" || p.Namespace == q.Get("namespace") {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *Server) podStatus(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	key := state.PodKey(r.PathValue("namespace"), r.PathValue("pod"))
	var ps state.PodStatus
	if err := decodeBody(r, &ps); err != nil {
		return nil, err
	}
	p := st.Pods.Get(key)
	if p == nil {
		return nil, errorf(http.StatusNotFound, "no pod %s", key)
	}
	if err := checkPodStatus(p, ps); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, s.propose(r, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: key, Status: ps}))
}

// checkPodStatus checks what of an agent's report reaches other places: the
// pod IP (the service proxies' rules on every node) and the containers'
// names, which must be the pod's.
func checkPodStatus(p *state.Pod, ps state.PodStatus) error {
	if ps.IP != "" {
		if _, err := netip.ParseAddr(ps.IP); err != nil {
			return errorf(http.StatusBadRequest, "invalid pod IP %q", ps.IP)
		}
	}
	for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
		if !slices.ContainsFunc(p.Spec.AllContainers(), func(sc objects.Container) bool { return sc.Name == c.Name }) {
			return errorf(http.StatusBadRequest, "pod %s has no container %q", p.Key(), c.Name)
		}
	}
	return nil
}

// deleteNode removes a node and the pods bound to it, which their
// Deployments then recreate on the other nodes. An agent that still runs
// registers its node again at its next heartbeat, as a kubelet does: to
// retire a machine, stop its agent first.
func (s *Server) deleteNode(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	name := r.PathValue("existing")
	if _, ok := st.Nodes[name]; !ok {
		return nil, errorf(http.StatusNotFound, "no node %q", name)
	}
	pods := 0
	for range st.Pods.OnNode(name) {
		pods++
	}
	id := identityOf(r)
	event := state.RecordEvents(state.NewEvent(state.EventNormal, "RemovingNode", state.ObjectRef{Kind: "Node", Name: name},
		state.EventSource{Component: "berth"}, time.Now(), "Removing node %s and its %d pods (by %s %s)", name, pods, id.Role, id.Name))
	if err := s.propose(r, state.NewCommand(state.CmdRemoveNode, state.NodeRef{Name: name}), event); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("node removed", "node", name, "by", identityOf(r).Name)
	return map[string]bool{"ok": true}, nil
}

// nodeScheduling cordons, drains or uncordons a node (berth cordon,
// drain, uncordon); the controllers do the moving.
func (s *Server) nodeScheduling(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	var u state.NodeScheduling
	if err := decodeBody(r, &u); err != nil {
		return nil, err
	}
	u.Name = r.PathValue("existing")
	if _, ok := st.Nodes[u.Name]; !ok {
		return nil, errorf(http.StatusNotFound, "no node %q", u.Name)
	}
	reason := "NodeSchedulable"
	switch {
	case u.Drain:
		reason = "NodeDraining"
	case u.Unschedulable:
		reason = "NodeNotSchedulable"
	}
	event := state.RecordEvents(state.NewEvent(state.EventNormal, reason, state.ObjectRef{Kind: "Node", Name: u.Name},
		state.EventSource{Component: "berth"}, time.Now(), "Node %s status is now: %s (by %s)", u.Name, reason, identityOf(r).Name))
	if err := s.propose(r, state.NewCommand(state.CmdSetNodeScheduling, u), event); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("node scheduling set", "node", u.Name, "unschedulable", u.Unschedulable, "drain", u.Drain, "by", identityOf(r).Name)
	return s.cfg.Backend.State().Nodes[u.Name], nil
}

// deletePod stops a running pod gracefully (its Deployment replaces it, as
// `kubectl delete pod` does) and removes a pod already stopping; agents call
// it once they have stopped a terminating pod.
func (s *Server) deletePod(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	key := state.PodKey(r.PathValue("namespace"), r.PathValue("pod"))
	p := st.Pods.Get(key)
	if p == nil {
		return nil, errorf(http.StatusNotFound, "no pod %s", key)
	}
	t := state.CmdTerminatePod
	if p.Terminating || p.NodeName == "" {
		t = state.CmdDeletePod
	}
	cmds := []state.Command{state.NewCommand(t, state.PodRef{Key: key})}
	if id := identityOf(r); !p.Terminating && id.Role != RoleNode {
		// A person's delete, not an agent's after it stopped the pod.
		cmds = append(cmds, state.RecordEvents(state.NewEvent(state.EventNormal, "Killing", state.ObjectRef{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
			state.EventSource{Component: "berth"}, time.Now(), "Stopping pod: deleted by %s %s", id.Role, id.Name)))
	}
	return map[string]bool{"ok": true}, s.propose(r, cmds...)
}

// forgetClaim is an agent saying a released claim's data are deleted.
func (s *Server) forgetClaim(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	key := state.PodKey(r.PathValue("namespace"), r.PathValue("claim"))
	c := st.Claims[key]
	switch {
	case c == nil:
		return nil, errorf(http.StatusNotFound, "no claim %s", key)
	case !c.Released:
		return nil, errorf(http.StatusConflict, "claim %s is not released", key)
	}
	return map[string]bool{"ok": true}, s.propose(r, state.NewCommand(state.CmdDeleteClaim, state.ClaimRef{Key: key}))
}

func (s *Server) deployments(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	out := []api.DeploymentStatus{}
	for _, dep := range d.Deployments {
		ds := api.DeploymentStatus{Namespace: dep.Metadata.Namespace, Name: dep.Metadata.Name, Replicas: dep.Spec.Replicas,
			TemplateHash: reconcile.TemplateHash(dep.Spec.Template)}
		for _, c := range dep.Spec.Template.Spec.Containers {
			ds.Images = append(ds.Images, c.Image)
		}
		pods := slices.Collect(st.Pods.OfDeployment(ds.Namespace, ds.Name))
		ds.Reason = reconcile.RolloutReason(dep, pods, time.Now())
		for _, p := range pods {
			switch {
			case p.Terminating:
				ds.Terminating++
			case p.TemplateHash == ds.TemplateHash:
				ds.UpToDate++
				if p.Status.Ready {
					ds.Ready++
				}
			case p.Status.Ready:
				ds.Ready++
			}
		}
		out = append(out, ds)
	}
	return out, nil
}

func (s *Server) services(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	out := reconcile.Services(st, d)
	if out == nil {
		out = []reconcile.ServiceView{}
	}
	return out, nil
}
