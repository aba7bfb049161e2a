package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/berth/berth/appliance/auth"
)

// CommandVersion is written into every command; the FSM refuses versions it
// does not know rather than misreading them.
//
// Compatibility rule: every member applies every entry, so a member that
// cannot apply one must not go on past it, or it would serve a state the
// others do not have. A new command type, a new version or a payload an
// older master would read differently therefore needs every master
// upgraded before any leader proposes it. A member that meets a command it
// does not know stops applying and stops its process with an error naming
// it (as Nomad's FSM panics), and resumes once upgraded, replaying its
// log. A command an older member may skip without serving anything
// different is sent with Ignorable set, and such a member skips it.
const CommandVersion = 1

// ErrUnknownCommand is a command of a type or version this master does
// not know: a newer master wrote it.
var ErrUnknownCommand = errors.New("written by a newer berth: upgrade this master")

// CommandType names what a command does.
type CommandType string

const (
	// CmdAddRevision records a commit. An applied revision supersedes the
	// previously applied one.
	CmdAddRevision CommandType = "AddRevision" // Revision
	// CmdRegisterNode adds or updates a node; the FSM keeps an existing
	// node's PodCIDR and assigns a new node the next free one.
	CmdRegisterNode CommandType = "RegisterNode" // Node
	CmdSetNodeReady CommandType = "SetNodeReady" // NodeReady
	CmdCreatePod    CommandType = "CreatePod"    // Pod
	CmdBindPod      CommandType = "BindPod"      // PodBinding
	CmdTerminatePod CommandType = "TerminatePod" // PodRef
	CmdDeletePod    CommandType = "DeletePod"    // PodRef
	CmdSetPodStatus CommandType = "SetPodStatus" // PodStatusUpdate
	// CmdSetServiceIP assigns (IP set) or releases (IP empty) a ClusterIP.
	CmdSetServiceIP CommandType = "SetServiceIP" // ServiceIP
	// CmdSetNodePort assigns (NodePort set) or releases (NodePort 0) the
	// node port of one Service port. The FSM refuses a number another
	// Service holds; one Service may use a number for a TCP and a UDP port.
	CmdSetNodePort CommandType = "SetNodePort" // ServiceNodePort
	CmdAddToken    CommandType = "AddToken"    // auth.Token
	CmdRevokeToken CommandType = "RevokeToken" // TokenRef
	// CmdUseToken counts one join made with a join token. The FSM refuses
	// it for a token that is revoked, expired at Time or used up, so of
	// two joins with one single-use token exactly one commits, and only
	// that one is answered.
	CmdUseToken CommandType = "UseToken" // TokenUse
	// CmdSetCA records the cluster CA, once: a second, different CA would
	// orphan every certificate signed so far.
	CmdSetCA CommandType = "SetCA" // ClusterCA
	// CmdSetMasterAPI records (URL set) or forgets (URL empty) a master.
	CmdSetMasterAPI CommandType = "SetMasterAPI" // MasterAPI
	// CmdRemoveNode removes a node and the pods bound to it, as the node
	// lifecycle evicts a lost node's pods: their Deployments recreate them
	// on the other nodes.
	CmdRemoveNode CommandType = "RemoveNode" // NodeRef
	// CmdSetDiskPressure records a node's DiskPressure condition: the
	// scheduler places no pod there while it holds, and the pods there
	// keep running.
	CmdSetDiskPressure CommandType = "SetDiskPressure" // NodeDiskPressure
	// CmdSetPodNetwork sets the cluster's pod address range and each
	// node's share of it, once, at bootstrap.
	CmdSetPodNetwork CommandType = "SetPodNetwork" // PodNetwork
	// CmdSetNodeScheduling cordons, drains or uncordons a node. Both
	// flags outlive the node's registrations: they are the admin's.
	CmdSetNodeScheduling CommandType = "SetNodeScheduling" // NodeScheduling
	// CmdPutJob records a Job run, new or with a new status; CmdDeleteJob
	// forgets one (its pods go through their own commands).
	CmdPutJob    CommandType = "PutJob"    // Job
	CmdDeleteJob CommandType = "DeleteJob" // JobRef
	// CmdSetCronSchedule records a CronJob's last schedule time (zero
	// Time: forget the CronJob).
	CmdSetCronSchedule CommandType = "SetCronSchedule" // CronSchedule
	// CmdPutClaim records a claim, new or changed. The FSM keeps a
	// claim's node once bound and refuses to bind it elsewhere, and
	// refuses to take a released claim back: its data are being deleted.
	CmdPutClaim CommandType = "PutClaim" // Claim
	// CmdDeleteClaim forgets a released claim, once its node's agent has
	// deleted the data; the FSM refuses it for a claim not released.
	CmdDeleteClaim CommandType = "DeleteClaim" // ClaimRef
	// CmdSetNodeStorage records the free space a node reported.
	CmdSetNodeStorage CommandType = "SetNodeStorage" // NodeStorage
	// CmdForgetNamespace drops a terminating namespace's Services,
	// ConfigMaps and Secrets; the FSM refuses it while a pod of the
	// namespace remains.
	CmdForgetNamespace CommandType = "ForgetNamespace" // NamespaceRef
	// CmdRecordEvents appends events to the bounded event log, adding
	// repeats to the events they repeat (see recordEvents).
	CmdRecordEvents CommandType = "RecordEvents" // EventBatch
)

// Command is one typed, versioned state change. Commands travel in batches:
// one Raft log entry holds a []Command, applied all or nothing.
type Command struct {
	Version int             `json:"v"`
	Type    CommandType     `json:"type"`
	Payload json.RawMessage `json:"payload"`
	// Ignorable lets a member that does not know the command skip it (see
	// CommandVersion).
	Ignorable bool `json:"ignorable,omitempty"`
}

type NodeReady struct {
	Name  string    `json:"name"`
	Ready bool      `json:"ready"`
	Time  time.Time `json:"time"`
	// Reason says why a node is not ready (its runtime is down, it is
	// silent); empty when Ready.
	Reason string `json:"reason,omitempty"`
}

type NodeDiskPressure struct {
	Name         string `json:"name"`
	DiskPressure bool   `json:"diskPressure"`
}

// NodeScheduling is a node's cordon: Drain implies Unschedulable.
type NodeScheduling struct {
	Name          string `json:"name"`
	Unschedulable bool   `json:"unschedulable"`
	Drain         bool   `json:"drain,omitempty"`
}

type NodeRef struct {
	Name string `json:"name"`
}

type PodRef struct {
	Key string `json:"key"`
}

type PodBinding struct {
	Key      string `json:"key"`
	NodeName string `json:"nodeName"`
}

type PodStatusUpdate struct {
	Key    string    `json:"key"`
	Status PodStatus `json:"status"`
}

type ServiceIP struct {
	Key string `json:"key"`
	IP  string `json:"ip"`
}

// ServiceNodePort is the node port of one port of a Service.
type ServiceNodePort struct {
	Service  string `json:"service"` // namespace/name
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
	NodePort int32  `json:"nodePort"`
}

// NodePortKey names one port of a Service, as State.NodePorts keys it.
func NodePortKey(service, protocol string, port int32) string {
	return fmt.Sprintf("%s/%s/%d", service, protocol, port)
}

func (p ServiceNodePort) Key() string { return NodePortKey(p.Service, p.Protocol, p.Port) }

type TokenRef struct {
	ID string `json:"id"`
}

// TokenUse is one join with token ID at Time, the proposing master's
// clock: the FSM may not read its own.
type TokenUse struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// By names the joiner (its key's id): the same join retried is
	// counted once.
	By string `json:"by,omitempty"`
}

type MasterAPI struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// NewCommand builds a command of the current version.
func NewCommand(t CommandType, payload any) Command {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("store: command payload %T: %v", payload, err))
	}
	return Command{Version: CommandVersion, Type: t, Payload: b}
}

// Apply applies a batch to s. It is deterministic: the same state and batch
// give the same result on every master. On error s is left as it was, so a
// bad command loses nothing.
//
// Apply never writes to anything s points to: a collection the batch
// changes is copied first (once per batch, shallowly), and a node, pod or
// revision it changes is replaced by a changed copy. So the state before the
// batch stays intact for whoever still reads it, and the cost of a batch
// grows with what it changes, not with the size of the state.
func Apply(s *State, batch []Command) error {
	w := &writer{s: *s}
	w.s.init()
	w.pods.base = w.s.Pods
	for i, c := range batch {
		if err := applyOne(w, c); err != nil {
			w.pods.abort()
			return fmt.Errorf("command %d (%s): %w", i, c.Type, err)
		}
	}
	w.s.Pods = w.pods.done()
	*s = w.s
	return nil
}

// writer is the copy a batch works on. Its maps and Revisions are shared
// with the state before the batch until the first change to each, which
// copies it; the copied flags say which are the batch's own.
type writer struct {
	s State

	revisions, nodes, serviceIPs, nodePorts, tokens, masterAPIs, jobs, cronSchedules, claims, terminating bool
	// pods is the batch's version of the pods, read and written through
	// it (w.s.Pods is the version before the batch until the end).
	pods podWriter
}

func own[M ~map[K]V, K comparable, V any](m *M, copied *bool) M {
	if !*copied {
		*m, *copied = maps.Clone(*m), true
	}
	return *m
}

func (w *writer) Revisions() []Revision {
	if !w.revisions {
		w.s.Revisions, w.revisions = slices.Clone(w.s.Revisions), true
	}
	return w.s.Revisions
}

func (w *writer) Nodes() map[string]*Node       { return own(&w.s.Nodes, &w.nodes) }
func (w *writer) ServiceIPs() map[string]string { return own(&w.s.ServiceIPs, &w.serviceIPs) }
func (w *writer) NodePorts() map[string]ServiceNodePort {
	return own(&w.s.NodePorts, &w.nodePorts)
}
func (w *writer) Tokens() map[string]auth.Token { return own(&w.s.Tokens, &w.tokens) }
func (w *writer) MasterAPIs() map[string]string { return own(&w.s.MasterAPIs, &w.masterAPIs) }
func (w *writer) Jobs() map[string]*Job         { return own(&w.s.Jobs, &w.jobs) }
func (w *writer) Claims() map[string]*Claim     { return own(&w.s.Claims, &w.claims) }
func (w *writer) Terminating() map[string][]Object {
	return own(&w.s.Terminating, &w.terminating)
}
func (w *writer) CronSchedules() map[string]time.Time {
	return own(&w.s.CronSchedules, &w.cronSchedules)
}

// changePod replaces pod key with a copy that change has edited. The copy
// is shallow: change sets fields, it never edits what they point to.
// A missing pod is left missing.
func (w *writer) changePod(key string, change func(*Pod)) {
	p, ok := w.pods.get(key)
	if !ok {
		return
	}
	c := *p
	change(&c)
	w.pods.put(&c)
}

// podsOn yields the pods bound to node in the batch's version.
func (w *writer) podsOn(node string) iter.Seq[*Pod] {
	if w.pods.txn == nil {
		return w.s.Pods.OnNode(node)
	}
	return podsIn(w.pods.txn, "node", node)
}

// keepHistory trims revs, oldest first, to the newest limit revisions
// (DefaultRevisionHistory when limit is 0), and the applied one before
// them, if any: it is what runs.
func keepHistory(revs []Revision, limit int) []Revision {
	if limit <= 0 {
		limit = DefaultRevisionHistory
	}
	cut := len(revs) - limit
	if cut <= 0 {
		return revs
	}
	kept := make([]Revision, 0, limit+1)
	for i := cut - 1; i >= 0; i-- {
		if revs[i].Status == RevisionApplied {
			kept = append(kept, revs[i])
			break
		}
	}
	return append(kept, revs[cut:]...)
}

func decode[T any](c Command) (T, error) {
	var v T
	if err := json.Unmarshal(c.Payload, &v); err != nil {
		return v, fmt.Errorf("bad payload: %w", err)
	}
	return v, nil
}

func applyOne(w *writer, c Command) error {
	if c.Version != CommandVersion {
		if c.Ignorable {
			return nil
		}
		return fmt.Errorf("unknown command version %d (this master knows %d): %w", c.Version, CommandVersion, ErrUnknownCommand)
	}
	s := &w.s // for reads; writes go through w
	switch c.Type {
	case CmdAddRevision:
		r, err := decode[Revision](c)
		if err != nil {
			return err
		}
		if r.Status == RevisionApplied {
			terminateNamespaces(w, s.Current(), &r)
			for i := range s.Revisions {
				if s.Revisions[i].Status == RevisionApplied {
					w.Revisions()[i].Status = RevisionSuperseded
					if s.Revisions[i].Outcome == "" {
						settle(w, i, OutcomeSuperseded, r.Seen, short(r.Commit))
					}
				}
			}
		}
		// What is measured from here on is the masters' to record.
		r.Committed, r.Outcome, r.Settled, r.Detail = time.Time{}, "", time.Time{}, ""
		// append may write into spare capacity that the state before the
		// batch shares; owning the slice first rules that out.
		s.Revisions = keepHistory(append(w.Revisions(), r), r.HistoryLimit)
	case CmdMarkRevision:
		m, err := decode[RevisionMark](c)
		if err != nil {
			return err
		}
		return markRevision(w, m)
	case CmdRegisterNode:
		n, err := decode[Node](c)
		if err != nil {
			return err
		}
		if n.Name == "" {
			return fmt.Errorf("node has no name")
		}
		if old, ok := s.Nodes[n.Name]; ok {
			n.PodCIDR, n.Unschedulable, n.Draining = old.PodCIDR, old.Unschedulable, old.Draining
		} else if n.PodCIDR == "" {
			if n.PodCIDR, err = nextPodCIDR(s); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		n.ClusterCIDR = s.Network().CIDR
		w.Nodes()[n.Name] = &n
	case CmdSetNodeReady:
		r, err := decode[NodeReady](c)
		if err != nil {
			return err
		}
		n, ok := s.Nodes[r.Name]
		if !ok {
			return fmt.Errorf("no node %q", r.Name)
		}
		if r.Ready {
			r.Reason = ""
		}
		if n.Ready != r.Ready || n.Reason != r.Reason {
			changed := *n
			if n.Ready != r.Ready {
				changed.Transition = r.Time
			}
			changed.Ready, changed.Reason = r.Ready, r.Reason
			w.Nodes()[r.Name] = &changed
		}
	case CmdSetDiskPressure:
		d, err := decode[NodeDiskPressure](c)
		if err != nil {
			return err
		}
		if n := w.s.Nodes[d.Name]; n != nil && n.DiskPressure == d.DiskPressure {
			return nil // agents repeat it; a node copied for nothing would be a write
		}
		return changeNode(w, d.Name, func(n *Node) { n.DiskPressure = d.DiskPressure })
	case CmdSetNodeScheduling:
		u, err := decode[NodeScheduling](c)
		if err != nil {
			return err
		}
		return changeNode(w, u.Name, func(n *Node) { n.Unschedulable, n.Draining = u.Unschedulable || u.Drain, u.Drain })
	case CmdPutJob:
		j, err := decode[Job](c)
		if err != nil {
			return err
		}
		if j.Namespace == "" || j.Name == "" {
			return fmt.Errorf("job needs a namespace and a name")
		}
		w.Jobs()[j.Key()] = &j
	case CmdDeleteJob:
		r, err := decode[JobRef](c)
		if err != nil {
			return err
		}
		delete(w.Jobs(), r.Key)
	case CmdSetCronSchedule:
		u, err := decode[CronSchedule](c)
		if err != nil {
			return err
		}
		if u.Time.IsZero() {
			delete(w.CronSchedules(), u.Key)
		} else {
			w.CronSchedules()[u.Key] = u.Time
		}
	case CmdPutClaim:
		c, err := decode[Claim](c)
		if err != nil {
			return err
		}
		if c.Namespace == "" || c.Name == "" {
			return fmt.Errorf("claim needs a namespace and a name")
		}
		old := s.Claims[c.Key()]
		switch {
		case old == nil && c.Released:
			return fmt.Errorf("no claim %s to release", c.Key())
		case old != nil && old.Released && !c.Released:
			return fmt.Errorf("claim %s is released: its data are being deleted", c.Key())
		case old != nil && old.NodeName != "" && c.NodeName != "" && c.NodeName != old.NodeName:
			return fmt.Errorf("claim %s is bound to %s already", c.Key(), old.NodeName)
		case old != nil && old.NodeName != "":
			c.NodeName = old.NodeName
		case c.NodeName != "" && s.Nodes[c.NodeName] == nil:
			return fmt.Errorf("no node %q", c.NodeName)
		}
		w.Claims()[c.Key()] = &c
	case CmdDeleteClaim:
		r, err := decode[ClaimRef](c)
		if err != nil {
			return err
		}
		old, ok := s.Claims[r.Key]
		if !ok {
			break // forgotten already: an agent's retry
		}
		if !old.Released {
			return fmt.Errorf("claim %s is not released", r.Key)
		}
		delete(w.Claims(), r.Key)
	case CmdForgetNamespace:
		r, err := decode[NamespaceRef](c)
		if err != nil {
			return err
		}
		return forgetNamespace(w, r)
	case CmdSetNodeStorage:
		u, err := decode[NodeStorage](c)
		if err != nil {
			return err
		}
		return changeNode(w, u.Name, func(n *Node) { n.FreeBytes = u.FreeBytes })
	case CmdCreatePod:
		p, err := decode[Pod](c)
		if err != nil {
			return err
		}
		if _, exists := w.pods.get(p.Key()); exists {
			return fmt.Errorf("pod %s exists", p.Key())
		}
		w.pods.put(&p)
	case CmdBindPod:
		b, err := decode[PodBinding](c)
		if err != nil {
			return err
		}
		p, ok := w.pods.get(b.Key)
		if !ok {
			return fmt.Errorf("no pod %s", b.Key)
		}
		if _, ok := s.Nodes[b.NodeName]; !ok {
			return fmt.Errorf("no node %q", b.NodeName)
		}
		if p.NodeName != "" && p.NodeName != b.NodeName {
			return fmt.Errorf("pod %s is bound to %s already", b.Key, p.NodeName)
		}
		w.changePod(b.Key, func(p *Pod) { p.NodeName = b.NodeName })
	case CmdTerminatePod:
		r, err := decode[PodRef](c)
		if err != nil {
			return err
		}
		w.changePod(r.Key, func(p *Pod) { p.Terminating = true })
	case CmdDeletePod:
		r, err := decode[PodRef](c)
		if err != nil {
			return err
		}
		w.pods.delete(r.Key)
	case CmdSetPodStatus:
		u, err := decode[PodStatusUpdate](c)
		if err != nil {
			return err
		}
		// A report for a pod already deleted is stale, not an error.
		w.changePod(u.Key, func(p *Pod) { p.Status = u.Status })
	case CmdSetServiceIP:
		u, err := decode[ServiceIP](c)
		if err != nil {
			return err
		}
		if u.IP == "" {
			delete(w.ServiceIPs(), u.Key)
			break
		}
		for _, k := range slices.Sorted(maps.Keys(s.ServiceIPs)) {
			if ip := s.ServiceIPs[k]; ip == u.IP && k != u.Key {
				return fmt.Errorf("ClusterIP %s is taken by %s", u.IP, k)
			}
		}
		w.ServiceIPs()[u.Key] = u.IP
	case CmdSetNodePort:
		u, err := decode[ServiceNodePort](c)
		if err != nil {
			return err
		}
		if u.NodePort == 0 {
			delete(w.NodePorts(), u.Key())
			break
		}
		if u.Service == "" || u.NodePort < 0 || u.NodePort > 65535 {
			return fmt.Errorf("node port %d of Service %q: want a Service and a port number", u.NodePort, u.Service)
		}
		// Sorted, so that every replica names the same holder.
		for _, k := range slices.Sorted(maps.Keys(s.NodePorts)) {
			if p := s.NodePorts[k]; p.NodePort == u.NodePort && k != u.Key() && (p.Service != u.Service || p.Protocol == u.Protocol) {
				return fmt.Errorf("node port %d is taken by %s", u.NodePort, k)
			}
		}
		w.NodePorts()[u.Key()] = u
	case CmdAddToken:
		t, err := decode[auth.Token](c)
		if err != nil {
			return err
		}
		if t.ID == "" || t.Hash == "" || !auth.ValidRole(t.Role) {
			return fmt.Errorf("token needs an ID, a hash and a known role")
		}
		if _, exists := s.Tokens[t.ID]; exists {
			return fmt.Errorf("token %s exists", t.ID)
		}
		w.Tokens()[t.ID] = t
	case CmdRevokeToken:
		r, err := decode[TokenRef](c)
		if err != nil {
			return err
		}
		t, ok := s.Tokens[r.ID]
		if !ok {
			return fmt.Errorf("no token %s", r.ID)
		}
		t.Revoked = true
		w.Tokens()[r.ID] = t
	case CmdUseToken:
		u, err := decode[TokenUse](c)
		if err != nil {
			return err
		}
		t, ok := s.Tokens[u.ID]
		if !ok {
			return fmt.Errorf("no token %s", u.ID)
		}
		if t, err = t.Use(u.Time, u.By); err != nil {
			return err
		}
		w.Tokens()[u.ID] = t
	case CmdSetCA:
		ca, err := decode[ClusterCA](c)
		if err != nil {
			return err
		}
		if len(ca.CertPEM) == 0 || len(ca.EncryptedKey) == 0 {
			return fmt.Errorf("CA needs a certificate and a key")
		}
		if s.CA != nil && !bytes.Equal(s.CA.CertPEM, ca.CertPEM) {
			return fmt.Errorf("the cluster has a CA already")
		}
		s.CA = &ca
	case CmdSetPodNetwork:
		pn, err := decode[PodNetwork](c)
		if err != nil {
			return err
		}
		if err := pn.Check(); err != nil {
			return err
		}
		if s.PodNetwork != nil && *s.PodNetwork != pn {
			// Every node's pod CIDR and every pod's address came from it.
			return fmt.Errorf("the cluster's pod network is %s with /%d per node already", s.PodNetwork.CIDR, s.PodNetwork.NodeMaskBits)
		}
		if s.PodNetwork == nil && len(s.Nodes) > 0 && pn != DefaultPodNetwork {
			return fmt.Errorf("nodes have pod CIDRs from %s already", DefaultPodNetwork.CIDR)
		}
		s.PodNetwork = &pn
	case CmdSetMasterAPI:
		m, err := decode[MasterAPI](c)
		if err != nil {
			return err
		}
		if m.ID == "" {
			return fmt.Errorf("master has no ID")
		}
		if m.URL == "" {
			delete(w.MasterAPIs(), m.ID)
		} else {
			w.MasterAPIs()[m.ID] = m.URL
		}
	case CmdRecordEvents:
		b, err := decode[EventBatch](c)
		if err != nil {
			return err
		}
		// recordEvents returns a new slice: the state before the batch
		// keeps its own.
		if s.Events, err = recordEvents(s.Events, b.Events); err != nil {
			return err
		}
	case CmdRemoveNode:
		r, err := decode[NodeRef](c)
		if err != nil {
			return err
		}
		if _, ok := s.Nodes[r.Name]; !ok {
			return fmt.Errorf("no node %q", r.Name)
		}
		delete(w.Nodes(), r.Name)
		var gone []string
		for p := range w.podsOn(r.Name) {
			gone = append(gone, p.Key())
		}
		for _, key := range gone {
			w.pods.delete(key)
		}
	default:
		if c.Ignorable {
			return nil
		}
		return fmt.Errorf("unknown command type %q: %w", c.Type, ErrUnknownCommand)
	}
	return nil
}

// nextPodCIDR hands out the node CIDRs of the cluster's pod network in
// order, as kube-controller-manager does, and refuses once every one is

// changeNode applies change to a copy of the named node; nodes are shared
// with readers of earlier states, so they are never changed in place.
func changeNode(w *writer, name string, change func(*Node)) error {
	n, ok := w.s.Nodes[name]
	if !ok {
		return fmt.Errorf("no node %q", name)
	}
	changed := *n
	change(&changed)
	w.Nodes()[name] = &changed
	return nil
}

// taken.
func nextPodCIDR(s *State) (string, error) {
	used := map[string]bool{}
	for _, n := range s.Nodes {
		used[n.PodCIDR] = true
	}
	pn := s.Network()
	if err := pn.Check(); err != nil {
		return "", err // a restored snapshot's, never one set through Apply
	}
	cluster := netip.MustParsePrefix(pn.CIDR)
	base := binary.BigEndian.Uint32(cluster.Addr().AsSlice())
	count := uint32(1) << (pn.NodeMaskBits - cluster.Bits())
	for i := range count {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+i<<(32-pn.NodeMaskBits))
		if cidr := netip.PrefixFrom(netip.AddrFrom4(a), pn.NodeMaskBits).String(); !used[cidr] {
			return cidr, nil
		}
	}
	return "", fmt.Errorf("the pod address range %s is exhausted: all %d node CIDRs (/%d) are taken; remove nodes that are gone before adding more",
		cluster, count, pn.NodeMaskBits)
}
