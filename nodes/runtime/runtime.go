// Package runtime runs pods on containerd through its Go client, in a
// containerd namespace of berth's own. A pod is a network namespace (from
// nodes/network) that its containers join, plus one containerd container
// per pod container. Everything is labelled with the pod's identity, so a
// restarted agent finds and adopts what it created before: the state lives
// in containerd, not in the agent.
//
// The package knows nothing of the cluster store: the agent turns a
// state.Pod into a Pod here (resolving env and volumes) and the statuses
// returned here into its own.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/sirupsen/logrus"

	"github.com/berth/berth/nodes/network"
	"github.com/berth/berth/schemas/objects"
)

// DefaultNamespace is the containerd namespace berth's containers live in.
const DefaultNamespace = "berth"

// Restart back-off defaults, the kubelet's.
const (
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffMax  = 5 * time.Minute
)

// Container states, as the cluster store spells them.
const (
	StateWaiting = "waiting"
	StateRunning = "running"
	StateExited  = "exited"
)

// Reasons a container is waiting or exited, Kubernetes' words.
const (
	ReasonContainerCreating  = "ContainerCreating"
	ReasonErrImagePull       = "ErrImagePull"
	ReasonImagePullBackOff   = "ImagePullBackOff"
	ReasonErrImageNeverPull  = "ErrImageNeverPull"
	ReasonInvalidImageName   = "InvalidImageName"
	ReasonCreateConfigError  = "CreateContainerConfigError"
	ReasonCreateError        = "CreateContainerError"
	ReasonStartError         = "StartError"
	ReasonCrashLoopBackOff   = "CrashLoopBackOff"
	ReasonCompleted          = "Completed"
	ReasonError              = "Error"
	ReasonPodInitializing    = "PodInitializing"
	ReasonPostStartHookError = "PostStartHookError"
)

// Restart policies, as in a pod spec.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// PodRef names a pod. UID is optional; when set it tells apart two pods
// that had the same namespace and name at different times.
type PodRef struct {
	Namespace string
	Name      string
	UID       string
}

func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// Pod is what the agent asks the runtime to run.
type Pod struct {
	PodRef
	// Hostname defaults to the pod name.
	Hostname string
	// FQDN, when set, names the pod in its /etc/hosts beside Hostname
	// (hostname.subdomain.namespace.svc.domain, as the kubelet writes it).
	FQDN string
	// HostAliases are more lines of its /etc/hosts ("IP name...").
	HostAliases []string
	// ResolvConf is the pod's /etc/resolv.conf; nil: the host's.
	ResolvConf []byte
	// RestartPolicy is Always (the default), OnFailure or Never.
	RestartPolicy string
	// GracePeriod is how long a container that must be replaced (its spec
	// changed) gets between SIGTERM and SIGKILL; default 30 s.
	GracePeriod time.Duration
	// InitContainers run one at a time, each to completion, before the
	// Containers start.
	InitContainers []Container
	Containers     []Container
	// Sysctls are namespaced kernel parameters set in its containers.
	Sysctls map[string]string
	// RegistryAuth are the pod's image pull secrets' credentials.
	RegistryAuth []objects.RegistryAuth
	// HostPorts are published on the node (needs network.Config.PortMap).
	HostPorts []network.PortMapping
	// ImageEvent, when set, is told of image pulls as they happen
	// (Pulling, Pulled), for the pod's events: a pull blocks EnsurePod, so
	// the status it returns comes too late to say a pull began.
	ImageEvent func(reason, message string)
}

// Container is one container of a Pod: its spec as written, with what the
// agent resolved from the cluster: Env replaces Spec.Env (ConfigMap and
// Secret references already read, NAME=value in order) and Mounts are the
// host paths of its volumes.
type Container struct {
	Spec objects.Container
	Env  []string
	// PodIPEnv names variables set to the pod's IP (the downward API's
	// status.podIP), which only the runtime knows, once the network is up.
	PodIPEnv []string
	// ServiceEnv are the Services' variables (enableServiceLinks); Env
	// overrides them. Apart from Env since they change with the cluster:
	// as the kubelet, a new Service restarts no container, and a container
	// created later gets the variables of then.
	ServiceEnv []string
	Mounts     []Mount
	init       bool // one of the pod's InitContainers
	// SupplementalGroups are added to the process's groups (the pod's
	// securityContext.supplementalGroups).
	SupplementalGroups []int64
}

// Mount bind-mounts HostPath (a file or directory the agent prepared for a
// configMap, secret or emptyDir volume) at ContainerPath.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// PodStatus is what the runtime finds of a pod.
type PodStatus struct {
	PodRef
	IP    string
	NetNS string
	// Created is when the pod's sandbox (network) was set up.
	Created time.Time
	// InitContainers are those that ran or run while the pod initializes;
	// the other Containers are absent until it has.
	InitContainers []ContainerStatus
	Containers     []ContainerStatus
}

// Container returns the status of the named container, or nil.
func (p *PodStatus) Container(name string) *ContainerStatus {
	for _, list := range [][]ContainerStatus{p.InitContainers, p.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// ContainerStatus is one container of a pod.
type ContainerStatus struct {
	Name string
	// ID is the containerd container ID, empty while the image is pulled.
	ID       string
	Image    string
	ImageRef string // the image's manifest digest
	// State is StateWaiting, StateRunning or StateExited.
	State string
	// Reason is a Reason* word, Message the human detail.
	Reason  string
	Message string
	// ExitCode is the last exit's: 128 when the process could not start.
	ExitCode int
	// LastReason is why the last run ended (Completed, Error, StartError)
	// while the container waits in CrashLoopBackOff.
	LastReason string
	Restarts   int
	PID        uint32
	StartedAt  time.Time
	FinishedAt time.Time
	// NextRestart is when a container in CrashLoopBackOff may restart.
	NextRestart time.Time
}

// ContainerError is a container the runtime could not bring to the state
// asked for in this call.
type ContainerError struct {
	Pod       PodRef
	Container string
	Reason    string
	Err       error
}

func (e *ContainerError) Error() string {
	return fmt.Sprintf("pod %s container %s: %s: %v", e.Pod, e.Container, e.Reason, e.Err)
}

func (e *ContainerError) Unwrap() error { return e.Err }

// Runtime runs pods on one containerd.
type Runtime struct {
	client      *containerd.Client
	ns          string
	net         *network.Network
	dataDir     string
	snapshotter string
	plainHTTP   []string
	log         *slog.Logger
	logrus      *logrus.Logger
	backoffBase time.Duration
	backoffMax  time.Duration
	now         func() time.Time

	mu       sync.Mutex
	podLocks map[string]*podLock
	pulls    map[string]*pullFailure // by container ID
}

type podLock struct {
	sync.Mutex
	users int
}

// Option configures a Runtime.
type Option func(*Runtime)

// WithNamespace uses another containerd namespace than "berth".
func WithNamespace(ns string) Option { return func(r *Runtime) { r.ns = ns } }

// WithPlainHTTPRegistries lists registries (host or host:port) pulled from
// over plain HTTP. Loopback registries with a port use HTTP anyway.
func WithPlainHTTPRegistries(hosts ...string) Option {
	return func(r *Runtime) { r.plainHTTP = append(r.plainHTTP, hosts...) }
}

// WithLogger logs to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(r *Runtime) { r.log = l } }

// WithSnapshotter uses another snapshotter than overlayfs (e.g. "native"
// where overlayfs can not be mounted).
func WithSnapshotter(name string) Option { return func(r *Runtime) { r.snapshotter = name } }

// WithBackoff sets the restart back-off: base doubled per restart, capped
// at max. Tests shorten it.
func WithBackoff(base, max time.Duration) Option {
	return func(r *Runtime) { r.backoffBase, r.backoffMax = base, max }
}

// New connects to containerd at address. dataDir keeps what containerd does
// not: container logs and each pod's /etc/hosts. net gives pods their
// network and must be the same for every Runtime on the node.
func New(ctx context.Context, address, dataDir string, net *network.Network, opts ...Option) (*Runtime, error) {
	if net == nil {
		return nil, errors.New("runtime: a network is required")
	}
	r := &Runtime{
		ns:          DefaultNamespace,
		net:         net,
		snapshotter: containerd.DefaultSnapshotter,
		log:         slog.Default(),
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
		now:         time.Now,
		podLocks:    map[string]*podLock{},
		pulls:       map[string]*pullFailure{},
	}
	for _, opt := range opts {
		opt(r)
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	r.dataDir = dir
	r.logrus = newLogrus(r.log)
	if err := os.MkdirAll(filepath.Join(dir, "pods"), 0o711); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	client, err := containerd.New(address, containerd.WithDefaultNamespace(r.ns), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("runtime: connect to containerd at %s: %w", address, err)
	}
	if _, err := client.Version(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("runtime: containerd at %s: %w", address, err)
	}
	r.client = client
	return r, nil
}

// Close closes the connection to containerd; pods keep running.
func (r *Runtime) Close() error { return r.client.Close() }

// Serving fails while containerd does not answer.
func (r *Runtime) Serving(ctx context.Context) error {
	ok, err := r.client.IsServing(ctx)
	if err == nil && !ok {
		err = errors.New("containerd is not serving")
	}
	return err
}

// Client is the containerd client, for callers that need more.
func (r *Runtime) Client() *containerd.Client { return r.client }

// Namespace is the containerd namespace in use.
func (r *Runtime) Namespace() string { return r.ns }

// lockPod serializes work on one pod; different pods proceed in parallel.
func (r *Runtime) lockPod(key string) func() {
	r.mu.Lock()
	l := r.podLocks[key]
	if l == nil {
		l = &podLock{}
		r.podLocks[key] = l
	}
	l.users++
	r.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		r.mu.Lock()
		if l.users--; l.users == 0 {
			delete(r.podLocks, key)
		}
		r.mu.Unlock()
	}
}
