// Package api is the masters' HTTP/JSON API under /v1 as its clients see
// it: the wire types and the Go client. The server is appliance/apiserver;
// keeping them apart lets agents and the CLI link neither Raft nor CUE.
package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// Status is /v1/status: what runs, and how the sync goes.
type Status struct {
	Index      uint64     `json:"index"`
	Commit     string     `json:"commit,omitempty"`
	Sync       SyncStatus `json:"sync"`
	Nodes      int        `json:"nodes"`
	ReadyNodes int        `json:"readyNodes"`
	Pods       int        `json:"pods"`
	ReadyPods  int        `json:"readyPods"`
	// Host is set on masters booted from the appliance image.
	Host *HostStatus `json:"host,omitempty"`
	// Stalled names the Deployments (namespace/name) whose rollout exceeded
	// its progress deadline.
	Stalled []string `json:"stalled,omitempty"`
	// TerminatingNamespaces are the namespaces whose Namespace left the
	// repository and whose pods are still stopping.
	TerminatingNamespaces []string `json:"terminatingNamespaces,omitempty"`
	// RejectedHead is the newest revision when it was rejected, with its
	// first errors: the branch head does not run.
	RejectedHead *RevisionSummary `json:"rejectedHead,omitempty"`
	// Rollouts are the workloads whose rollout is not done.
	Rollouts []reconcile.RolloutView `json:"rollouts,omitempty"`
	// LastSettled is the newest revision whose rollout ended.
	LastSettled *RevisionSummary `json:"lastSettled,omitempty"`
}

// RevisionSummary is a revision without its objects' JSON.
type RevisionSummary struct {
	Commit      string               `json:"commit"`
	Author      string               `json:"author"`
	Message     string               `json:"message"`
	Time        time.Time            `json:"time"`
	Status      state.RevisionStatus `json:"status"`
	Objects     int                  `json:"objects"`
	Diagnostics []diag.Diagnostic    `json:"diagnostics,omitempty"`
	state.RevisionTiming
}

// DeploymentStatus is a Deployment of the applied revision and its pods.
type DeploymentStatus struct {
	Namespace    string   `json:"namespace"`
	Name         string   `json:"name"`
	Replicas     int32    `json:"replicas"`
	Ready        int      `json:"ready"`
	UpToDate     int      `json:"upToDate"`
	Terminating  int      `json:"terminating"`
	TemplateHash string   `json:"templateHash"`
	Images       []string `json:"images"`
	// Reason is ProgressDeadlineExceeded for a rollout that stopped
	// progressing, as Kubernetes' Progressing condition says it.
	Reason string `json:"reason,omitempty"`
}

// NodeAssignment is everything an agent needs to run its pods: the pods
// bound to it and the ConfigMaps and Secrets they reference, by
// namespace/name. It carries no index (the X-Berth-Index header does), so
// that equal assignments are equal answers.
type NodeAssignment struct {
	Pods       []state.Pod                   `json:"pods"`
	ConfigMaps map[string]*objects.ConfigMap `json:"configMaps"`
	Secrets    map[string]*objects.Secret    `json:"secrets"`
	// Routes lead to the other nodes' pods: each node's pod CIDR through
	// its address.
	Routes []PodRoute `json:"routes"`
	// Claims are the claims bound to the node; the released ones' data
	// are to be deleted (then ForgetClaim).
	Claims []state.Claim `json:"claims,omitempty"`
}

// PodRoute is where another node's pods are reached.
type PodRoute struct {
	Node    string `json:"node"`
	PodCIDR string `json:"podCIDR"`
	Via     string `json:"via"`
}

// Heartbeat is what an agent's heartbeat says besides that it is alive.
type Heartbeat struct {
	// Problem, when set, is why the node cannot run pods now (its
	// container runtime is down): the node is NotReady with it as the
	// reason, as the kubelet reports a runtime that is down, though it is
	// alive. Agents send a stable text, so that it is written once.
	Problem string `json:"problem,omitempty"`
	// DiskPressure: the node's disk is nearly full, or a write on it
	// failed for lack of space; no new pod is placed there.
	DiskPressure bool `json:"diskPressure,omitempty"`
	// FreeBytes is the free space of the data dir's filesystem, where
	// claims live (0: unknown).
	FreeBytes int64 `json:"freeBytes,omitempty"`
}

// SyncStatus reports the Git source's state for /v1/status.
type SyncStatus struct {
	Repo   string `json:"repo,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Path is the repository's directory the master loads ("" the root).
	Path      string    `json:"path,omitempty"`
	State     string    `json:"state"` // synced, syncing, error, no-repo
	LastSync  time.Time `json:"lastSync,omitzero"`
	LastError string    `json:"lastError,omitempty"`
	// Commit is the newest commit recorded as a revision.
	Commit string `json:"commit,omitempty"`
}

// HostStatus is what a master booted from the appliance image says about
// its machine.
type HostStatus struct {
	// Storage is "disk" or "ram" (no data disk: state is lost on reboot).
	Storage    string `json:"storage"`
	DataDevice string `json:"dataDevice,omitempty"`
	Warning    string `json:"warning,omitempty"`
}

// JoinRequest is what a joining master or agent sends with its join token.
type JoinRequest struct {
	// Name is the master's Raft ID or the agent's node name.
	Name string `json:"name"`
	// Hosts are the addresses (IPs or DNS names) its certificate must
	// name: where a master serves its API and Raft, where an agent serves
	// its log endpoint.
	Hosts []string `json:"hosts"`
	// CSRPEM is a certificate request for the joiner's key, made by the
	// joiner (pki.NewKeyAndCSR) so that the key never leaves its machine.
	CSRPEM []byte `json:"csrPEM"`
}

// JoinResponse is what the joiner needs to speak mutual TLS with the
// cluster from then on.
type JoinResponse struct {
	CAPEM   []byte `json:"caPEM"`
	CertPEM []byte `json:"certPEM"`
	// ClusterSecret decrypts the CA's key: masters only.
	ClusterSecret string `json:"clusterSecret,omitempty"`
	// Masters are the masters' API URLs.
	Masters []string `json:"masters"`
}

// MemberRequest asks the leader to add the master presenting it as a
// Raft voter.
type MemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raftAddr"`
	APIURL   string `json:"apiURL"`
}

// Member is one master, as /v1/members lists them.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raftAddr"`
	APIURL   string `json:"apiURL,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	Role        auth.Role `json:"role"`
	Description string    `json:"description,omitempty"`
	// TTL is how long the token is valid, e.g. "24h", or "0" for until
	// revoked (kubeadm's --ttl 0); empty: the role's default (auth.DefaultLimits).
	TTL string `json:"ttl,omitempty"`
	// Uses is how many joins a join token allows, 0 for any number;
	// absent: the role's default (one for master-join, any number for
	// agent-join).
	Uses *int `json:"uses,omitempty"`
}

// WhoAmI is /v1/whoami: who the API takes the caller for. It never
// carries a secret: a token holder learns the token's ID and role.
type WhoAmI struct {
	// Role is a token's role (admin, read-only...), or node or master for
	// a client certificate.
	Role auth.Role `json:"role"`
	// TokenID is the public half of the bearer token, as berth token list
	// shows it.
	TokenID string `json:"tokenID,omitempty"`
	// Certificate is a client certificate's name (a node's, a master's).
	Certificate string `json:"certificate,omitempty"`
}

// NewToken is a created token: Secret is shown this once and never kept.
type NewToken struct {
	Secret string     `json:"secret"`
	Token  auth.Token `json:"token"`
}

// Signature is the value of X-Berth-Signature-256 (and GitHub's header)
// for body under secret.
func Signature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// EventFilter narrows GET /v1/events to one namespace, kind or object;
// empty fields match everything.
type EventFilter struct {
	Namespace, Kind, Name string
}

// EventReport is an agent's batch of events (POST /v1/nodes/NAME/events).
type EventReport struct {
	Events []state.Event `json:"events"`
}

// EventReportResult says how many events of a report were recorded, and
// how many dropped because their pod was gone.
type EventReportResult struct {
	Recorded int `json:"recorded"`
	Dropped  int `json:"dropped"`
}

// AgentComponent is the source component of the events agents report,
// which the masters set whatever the agent sent, with the node as host.
const AgentComponent = "kubelet"
