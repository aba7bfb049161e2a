// Package store is berth's replicated state: a Raft FSM (hashicorp/raft with
// raft-boltdb) whose only inputs are the typed commands below. Everything
// else in berth reads a State snapshot, decides, and proposes commands.
package state

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// State is the whole cluster state at one Raft index. A State the store has
// published never changes: an applied batch makes a new one that shares
// whatever the batch left alone. Readers share it and must not write to it.
type State struct {
	// Index is the Raft index of the last applied command.
	Index uint64 `json:"index"`
	// Revisions are every commit the masters saw, oldest first.
	Revisions []Revision `json:"revisions"`
	// Nodes by name.
	Nodes map[string]*Node `json:"nodes"`
	// Pods by PodKey (namespace/name), indexed by node and owner.
	Pods PodTable `json:"pods"`
	// ServiceIPs maps namespace/name of a Service to its ClusterIP; an IP
	// stays with its Service for as long as the Service exists.
	ServiceIPs map[string]string `json:"serviceIPs"`
	// NodePorts are the node ports of Service ports by NodePortKey; a
	// port keeps its number for as long as it exists.
	NodePorts map[string]ServiceNodePort `json:"nodePorts,omitempty"`
	// Tokens are the API's bearer tokens by ID, hashed.
	Tokens map[string]auth.Token `json:"tokens"`
	// CA is the cluster's certificate authority; nil before bootstrap.
	CA *ClusterCA `json:"ca,omitempty"`
	// MasterAPIs maps each master's Raft ID to its API URL, so followers
	// can forward what only the leader may do.
	MasterAPIs map[string]string `json:"masterAPIs"`
	// PodNetwork is where pods take their addresses; nil before bootstrap
	// and in clusters made before it was configurable (see Network).
	PodNetwork *PodNetwork `json:"podNetwork,omitempty"`
	// Jobs are the runs of batch/v1 Jobs by namespace/name, and
	// CronSchedules each CronJob's last schedule time.
	Jobs          map[string]*Job      `json:"jobs,omitempty"`
	CronSchedules map[string]time.Time `json:"cronSchedules,omitempty"`
	// Claims are the local-path claims by namespace/name.
	Claims map[string]*Claim `json:"claims,omitempty"`
	// Terminating holds, by namespace, the Services, ConfigMaps and
	// Secrets of each Namespace that left the repository, until its last
	// pod is gone (see namespaces.go).
	Terminating map[string][]Object `json:"terminating,omitempty"`
	// Convergence counts the revisions' outcomes and convergence times.
	Convergence *ConvergenceStats `json:"convergence,omitempty"`
	// Events are the recent events, oldest first, bounded (events.go).
	Events []Event `json:"events,omitempty"`
}

// PodNetwork is the cluster's pod address range and each node's share of
// it, as kube-controller-manager's --cluster-cidr and --node-cidr-mask-size.
type PodNetwork struct {
	CIDR         string `json:"cidr"`
	NodeMaskBits int    `json:"nodeMaskBits"`
}

// DefaultPodNetwork is Kubernetes' usual (flannel's) range: 256 nodes of up
// to 254 pods.
var DefaultPodNetwork = PodNetwork{CIDR: "10.244.0.0/16", NodeMaskBits: 24}

// Network returns the pod network, DefaultPodNetwork if none was set.
func (s *State) Network() PodNetwork {
	if s.PodNetwork == nil {
		return DefaultPodNetwork
	}
	return *s.PodNetwork
}

// Check says what is wrong with a pod network: the range must be an IPv4
// prefix given by its first address, and each node's share at least a /28
// (14 pods) and no larger than the range.
func (pn PodNetwork) Check() error {
	p, err := netip.ParsePrefix(pn.CIDR)
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		return fmt.Errorf("pod network %q: want an IPv4 prefix such as 10.244.0.0/16", pn.CIDR)
	}
	if pn.NodeMaskBits < p.Bits() || pn.NodeMaskBits > 28 {
		return fmt.Errorf("per-node mask /%d: want between the range's /%d and /28", pn.NodeMaskBits, p.Bits())
	}
	if pn.NodeMaskBits-p.Bits() > 20 {
		return fmt.Errorf("per-node mask /%d in %s: over a million node ranges; use a longer range prefix", pn.NodeMaskBits, pn.CIDR)
	}
	return nil
}

// ClusterCA is the CA every master and agent trusts. Its private key is
// encrypted with the cluster secret that only masters hold (on disk, out of
// the Raft log), so neither a snapshot nor the log gives it away.
type ClusterCA struct {
	CertPEM      []byte `json:"certPEM"`
	EncryptedKey []byte `json:"encryptedKey"`
}

// RevisionStatus is where a commit stands.
type RevisionStatus string

const (
	// RevisionApplied is the revision the cluster is converging on; at most
	// one revision has it.
	RevisionApplied RevisionStatus = "applied"
	// RevisionRejected failed validation; Diagnostics say why.
	RevisionRejected RevisionStatus = "rejected"
	// RevisionSuperseded was applied once and has been replaced.
	RevisionSuperseded RevisionStatus = "superseded"
)

// Revision is one commit of the config repository and what it asked for.
type Revision struct {
	Commit      string            `json:"commit"`
	Author      string            `json:"author"`
	Message     string            `json:"message"`
	Time        time.Time         `json:"time"`
	Status      RevisionStatus    `json:"status"`
	Diagnostics []diag.Diagnostic `json:"diagnostics,omitempty"`
	Objects     []Object          `json:"objects,omitempty"`
	// HistoryLimit is how many revisions the state keeps once this one is
	// recorded (0: DefaultRevisionHistory). It travels in the entry, so
	// every member trims the same way whatever its own flags say.
	HistoryLimit int `json:"historyLimit,omitempty"`
	RevisionTiming
}

// DefaultRevisionHistory is how many revisions the state keeps: each holds
// every object of its commit, so an unbounded history grows the state, its
// snapshots and every restart by a commit's worth per push.
const DefaultRevisionHistory = 100

// Object is one validated object of a revision: its identity, the digest of
// its canonical JSON (equal objects have equal digests across revisions, so
// a `git revert` finds its earlier rollout), and the JSON itself.
type Object struct {
	ID     objects.ObjectID `json:"id"`
	Digest string           `json:"digest"`
	JSON   json.RawMessage  `json:"json"`
}

// Node is a worker that registered with the masters. Heartbeats stay in the
// leader's memory; only Ready transitions go through Raft.
type Node struct {
	Name        string            `json:"name"`
	Address     string            `json:"address"`
	Labels      map[string]string `json:"labels"`
	CPUMilli    int64             `json:"cpuMilli"`
	MemoryBytes int64             `json:"memoryBytes"`
	// EphemeralBytes is the size of the filesystem holding the node's
	// data (0: not reported, no limit).
	EphemeralBytes int64 `json:"ephemeralBytes,omitempty"`
	// FreeBytes is what is free there, as the node last reported it
	// (0: not reported); claims are bound against it.
	FreeBytes int64  `json:"freeBytes,omitempty"`
	PodCIDR   string `json:"podCIDR"`
	Ready     bool   `json:"ready"`
	// ClusterCIDR is the pod network PodCIDR is part of: the agent sends
	// traffic to it unmasqueraded.
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	// Reason says why the node is not ready.
	Reason string `json:"reason,omitempty"`
	// DiskPressure: the node's disk is (nearly) full; no new pod goes
	// there, as Kubernetes taints such a node.
	DiskPressure bool `json:"diskPressure,omitempty"`
	// Transition is when Ready last changed.
	Transition time.Time `json:"transition"`
	// Unschedulable: cordoned; no new pod goes there (berth cordon).
	Unschedulable bool `json:"unschedulable,omitempty"`
	// Draining: cordoned, and its Deployments' pods move to other nodes
	// within each Deployment's rolling-update bounds (berth drain).
	Draining bool `json:"draining,omitempty"`
}

// PodPhase follows Kubernetes.
type PodPhase string

const (
	PodPending   PodPhase = "Pending"
	PodRunning   PodPhase = "Running"
	PodSucceeded PodPhase = "Succeeded"
	PodFailed    PodPhase = "Failed"
)

// Pod is one instance of a workload's pod template.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// OwnerKind is the kind of the owner Deployment names: "" for a
	// Deployment (as pods were before other owners), or "Job".
	OwnerKind string `json:"ownerKind,omitempty"`
	// Deployment (the owner's name) and TemplateHash tie the pod to its
	// rollout: pods of one template hash are one "ReplicaSet".
	Deployment   string            `json:"deployment"`
	TemplateHash string            `json:"templateHash"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Spec         objects.PodSpec   `json:"spec"`
	// NodeName is empty until the scheduler binds the pod.
	NodeName string `json:"nodeName,omitempty"`
	// Terminating asks the agent to stop the pod; once it has, the agent
	// deletes it (DELETE /v1/pods/...), which proposes CmdDeletePod.
	Terminating bool      `json:"terminating,omitempty"`
	Created     time.Time `json:"created"`
	Status      PodStatus `json:"status"`
}

// PodStatus is what the node's agent last reported.
type PodStatus struct {
	Phase    PodPhase `json:"phase"`
	IP       string   `json:"ip,omitempty"`
	Ready    bool     `json:"ready"`
	Restarts int      `json:"restarts"`
	// Reason is a short machine word (ImagePullBackOff, CrashLoopBackOff,
	// ContainerCreating) and Message the human detail.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// ReadySince is when the pod last became ready, for minReadySeconds.
	ReadySince     time.Time         `json:"readySince,omitzero"`
	InitContainers []ContainerStatus `json:"initContainers,omitempty"`
	Containers     []ContainerStatus `json:"containers,omitempty"`
}

// ContainerStatus is one container of a pod as its agent sees it.
type ContainerStatus struct {
	Name     string `json:"name"`
	ID       string `json:"id,omitempty"`
	State    string `json:"state"` // waiting, running, exited
	Reason   string `json:"reason,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
	Restarts int    `json:"restarts"`
	Ready    bool   `json:"ready"`
}

// Finished says whether the pod ran to its end (a Job's pods).
func (p *Pod) Finished() bool {
	return p.Status.Phase == PodSucceeded || p.Status.Phase == PodFailed
}

// PodKey is the key of a pod in State.Pods.
func PodKey(namespace, name string) string { return namespace + "/" + name }

// Key returns the pod's PodKey.
func (p *Pod) Key() string { return PodKey(p.Namespace, p.Name) }

// Current returns the applied revision, or nil before the first one.
func (s *State) Current() *Revision {
	for i := len(s.Revisions) - 1; i >= 0; i-- {
		if s.Revisions[i].Status == RevisionApplied {
			return &s.Revisions[i]
		}
	}
	return nil
}

// New is an empty state, ready for Apply and readers.
func New() *State {
	s := &State{}
	s.init()
	return s
}

func (s *State) init() {
	if s.Nodes == nil {
		s.Nodes = map[string]*Node{}
	}
	if s.Pods.db == nil {
		s.Pods = emptyPods
	}
	if s.ServiceIPs == nil {
		s.ServiceIPs = map[string]string{}
	}
	if s.NodePorts == nil {
		s.NodePorts = map[string]ServiceNodePort{}
	}
	if s.Tokens == nil {
		s.Tokens = map[string]auth.Token{}
	}
	if s.MasterAPIs == nil {
		s.MasterAPIs = map[string]string{}
	}
	if s.Jobs == nil {
		s.Jobs = map[string]*Job{}
	}
	if s.CronSchedules == nil {
		s.CronSchedules = map[string]time.Time{}
	}
	if s.Claims == nil {
		s.Claims = map[string]*Claim{}
	}
	if s.Terminating == nil {
		s.Terminating = map[string][]Object{}
	}
}
