// Package objects holds the Go types of the objects berth accepts. They
// mirror the CUE schemas in schemas/cue field for field; the loader fills
// them from the checked value, which already carries every default, so zero
// values here mean "absent". It is apart from the loader so that what only
// reads objects (the agent, the controllers, the state) links no CUE.
package objects

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ObjectMeta is the metadata of every object.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// TypeMeta names an object's schema.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// Object is any of the kinds below.
type Object interface {
	GetTypeMeta() TypeMeta
	GetObjectMeta() *ObjectMeta
}

// Header is what every object starts with.
type Header struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
}

func (t TypeMeta) GetTypeMeta() TypeMeta     { return t }
func (h *Header) GetObjectMeta() *ObjectMeta { return &h.Metadata }

// Namespace groups namespaced objects.
type Namespace struct {
	Header
}

// ServiceAccount is an identity pods may name (see cue/serviceaccount.cue).
type ServiceAccount struct {
	Header
}

type ConfigMap struct {
	Header
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string]string `json:"binaryData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

type Secret struct {
	Header
	Type       string            `json:"type"`
	Data       map[string]string `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

type Service struct {
	Header
	Spec ServiceSpec `json:"spec"`
}

type ServiceSpec struct {
	Type      string            `json:"type"`
	Selector  map[string]string `json:"selector,omitempty"`
	ClusterIP string            `json:"clusterIP,omitempty"`
	// ClusterIPs, IPFamilies and IPFamilyPolicy only restate ClusterIP and
	// berth's single IPv4 family; the loader checks that they do.
	ClusterIPs                    []string               `json:"clusterIPs,omitempty"`
	IPFamilies                    []string               `json:"ipFamilies,omitempty"`
	IPFamilyPolicy                string                 `json:"ipFamilyPolicy,omitempty"`
	Ports                         []ServicePort          `json:"ports"`
	PublishNotReadyAddresses      bool                   `json:"publishNotReadyAddresses,omitempty"`
	SessionAffinity               string                 `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig         *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`
	InternalTrafficPolicy         string                 `json:"internalTrafficPolicy,omitempty"`
	ExternalTrafficPolicy         string                 `json:"externalTrafficPolicy,omitempty"`
	AllocateLoadBalancerNodePorts *bool                  `json:"allocateLoadBalancerNodePorts,omitempty"`
	LoadBalancerSourceRanges      []string               `json:"loadBalancerSourceRanges,omitempty"`
	// ExternalName is the DNS name an ExternalName Service stands for.
	ExternalName string `json:"externalName,omitempty"`
}

type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

type ClientIPConfig struct {
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
}

// DefaultAffinityTimeout is Kubernetes' sessionAffinityConfig.clientIP
// timeoutSeconds default: 3 hours.
const DefaultAffinityTimeout = 10800

// Headless: clusterIP None, no virtual IP.
func (s *ServiceSpec) Headless() bool { return s.ClusterIP == "None" }

// VirtualIP: the Service gets a ClusterIP (neither headless nor an alias
// of an ExternalName).
func (s *ServiceSpec) VirtualIP() bool { return !s.Headless() && s.Type != "ExternalName" }

// AffinityTimeout is how long, in seconds, a client stays with its
// endpoint: 0 without sessionAffinity ClientIP.
func (s *ServiceSpec) AffinityTimeout() int32 {
	if s.SessionAffinity != "ClientIP" {
		return 0
	}
	if c := s.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		return *c.ClientIP.TimeoutSeconds
	}
	return DefaultAffinityTimeout
}

// AllocatesNodePorts says whether ports without a nodePort get one: a
// NodePort Service's do, and a LoadBalancer's unless
// allocateLoadBalancerNodePorts is false.
func (s *ServiceSpec) AllocatesNodePorts() bool {
	switch s.Type {
	case "NodePort":
		return true
	case "LoadBalancer":
		return s.AllocateLoadBalancerNodePorts == nil || *s.AllocateLoadBalancerNodePorts
	}
	return false
}

type ServicePort struct {
	Name       string       `json:"name,omitempty"`
	Protocol   string       `json:"protocol"`
	Port       int32        `json:"port"`
	TargetPort *IntOrString `json:"targetPort,omitempty"`
	NodePort   int32        `json:"nodePort,omitempty"`
}

type Deployment struct {
	Header
	Spec DeploymentSpec `json:"spec"`
}

type DeploymentSpec struct {
	Replicas             int32              `json:"replicas"`
	Selector             LabelSelector      `json:"selector"`
	Template             PodTemplateSpec    `json:"template"`
	Strategy             DeploymentStrategy `json:"strategy"`
	RevisionHistoryLimit int32              `json:"revisionHistoryLimit"`
	MinReadySeconds      int32              `json:"minReadySeconds"`
	// ProgressDeadlineSeconds is nil for Kubernetes' default, 600.
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
	// Paused holds the rollout: the pods keep their template.
	Paused bool `json:"paused,omitempty"`
}

type DeploymentStrategy struct {
	Type          string                   `json:"type"`
	RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
}

type RollingUpdateDeployment struct {
	MaxSurge       IntOrString `json:"maxSurge"`
	MaxUnavailable IntOrString `json:"maxUnavailable"`
}

// DaemonSet runs one pod on every node that matches (cue/daemonset.cue).
type DaemonSet struct {
	Header
	Spec DaemonSetSpec `json:"spec"`
}

type DaemonSetSpec struct {
	Selector       LabelSelector   `json:"selector"`
	Template       PodTemplateSpec `json:"template"`
	UpdateStrategy struct {
		Type string `json:"type"`
		// RollingUpdate is nil under OnDelete.
		RollingUpdate *RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
	} `json:"updateStrategy"`
	RevisionHistoryLimit int32 `json:"revisionHistoryLimit"`
	MinReadySeconds      int32 `json:"minReadySeconds"`
}

// StatefulSet runs pods with stable names and claims (cue/statefulset.cue).
type StatefulSet struct {
	Header
	Spec StatefulSetSpec `json:"spec"`
}

type StatefulSetSpec struct {
	Replicas            int32           `json:"replicas"`
	Selector            LabelSelector   `json:"selector"`
	Template            PodTemplateSpec `json:"template"`
	ServiceName         string          `json:"serviceName,omitempty"`
	PodManagementPolicy string          `json:"podManagementPolicy"`
	UpdateStrategy      struct {
		Type string `json:"type"`
		// RollingUpdate is nil under OnDelete.
		RollingUpdate *struct {
			Partition int32 `json:"partition"`
		} `json:"rollingUpdate,omitempty"`
	} `json:"updateStrategy"`
	VolumeClaimTemplates []ClaimTemplate `json:"volumeClaimTemplates,omitempty"`
	// PersistentVolumeClaimRetentionPolicy may only restate what berth
	// does (the schema allows that alone).
	PersistentVolumeClaimRetentionPolicy *struct {
		WhenDeleted string `json:"whenDeleted,omitempty"`
		WhenScaled  string `json:"whenScaled,omitempty"`
	} `json:"persistentVolumeClaimRetentionPolicy,omitempty"`
	RevisionHistoryLimit int32 `json:"revisionHistoryLimit"`
	MinReadySeconds      int32 `json:"minReadySeconds"`
}

// Partition is the ordinal below which a rolling update leaves the pods.
func (s *StatefulSetSpec) Partition() int {
	if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
		return int(ru.Partition)
	}
	return 0
}

// ClaimTemplate is one of a StatefulSet's volumeClaimTemplates.
type ClaimTemplate struct {
	Metadata struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec ClaimSpec `json:"spec"`
}

// ClaimName is the claim of the StatefulSet's pod ordinal, as Kubernetes
// names it.
func (t *ClaimTemplate) ClaimName(statefulSet string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", t.Metadata.Name, statefulSet, ordinal)
}

// PersistentVolumeClaim asks for a local-path volume (cue/storage.cue).
type PersistentVolumeClaim struct {
	Header
	Spec ClaimSpec `json:"spec"`
}

type ClaimSpec struct {
	AccessModes []string `json:"accessModes"`
	Resources   struct {
		Requests struct {
			Storage Quantity `json:"storage"`
		} `json:"requests"`
	} `json:"resources"`
	StorageClassName *string `json:"storageClassName,omitempty"`
	VolumeMode       string  `json:"volumeMode,omitempty"`
}

// Job runs pods to completion (see cue/job.cue).
type Job struct {
	Header
	Spec JobSpec `json:"spec"`
}

type JobSpec struct {
	Completions  int32 `json:"completions"`
	Parallelism  int32 `json:"parallelism"`
	BackoffLimit int32 `json:"backoffLimit"`
	// ActiveDeadlineSeconds and TTLSecondsAfterFinished are nil when unset.
	ActiveDeadlineSeconds   *int64          `json:"activeDeadlineSeconds,omitempty"`
	TTLSecondsAfterFinished *int32          `json:"ttlSecondsAfterFinished,omitempty"`
	Template                PodTemplateSpec `json:"template"`
}

// CronJob makes Jobs on a schedule (see cue/cronjob.cue).
type CronJob struct {
	Header
	Spec CronJobSpec `json:"spec"`
}

type CronJobSpec struct {
	Schedule string `json:"schedule"`
	// TimeZone is an IANA name; "" is the masters' local time zone.
	TimeZone                   string `json:"timeZone,omitempty"`
	ConcurrencyPolicy          string `json:"concurrencyPolicy"`
	StartingDeadlineSeconds    *int64 `json:"startingDeadlineSeconds,omitempty"`
	Suspend                    bool   `json:"suspend"`
	SuccessfulJobsHistoryLimit int32  `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     int32  `json:"failedJobsHistoryLimit"`
	JobTemplate                struct {
		Metadata *TemplateMeta `json:"metadata,omitempty"`
		Spec     JobSpec       `json:"spec"`
	} `json:"jobTemplate"`
}

type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

type PodTemplateSpec struct {
	Metadata *TemplateMeta `json:"metadata,omitempty"`
	Spec     PodSpec       `json:"spec"`
}

// TemplateMeta is the metadata a pod template may carry.
type TemplateMeta struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type PodSpec struct {
	// InitContainers run one at a time, each to completion, before the
	// Containers start.
	InitContainers                []Container                `json:"initContainers,omitempty"`
	Containers                    []Container                `json:"containers"`
	Volumes                       []Volume                   `json:"volumes,omitempty"`
	NodeSelector                  map[string]string          `json:"nodeSelector,omitempty"`
	Affinity                      *Affinity                  `json:"affinity,omitempty"`
	Tolerations                   []Toleration               `json:"tolerations,omitempty"`
	TopologySpreadConstraints     []TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	RestartPolicy                 string                     `json:"restartPolicy"`
	TerminationGracePeriodSeconds int64                      `json:"terminationGracePeriodSeconds"`
	SecurityContext               *PodSecurityContext        `json:"securityContext,omitempty"`
	ImagePullSecrets              []LocalObjectReference     `json:"imagePullSecrets,omitempty"`
	ServiceAccountName            string                     `json:"serviceAccountName,omitempty"`
	DeprecatedServiceAccount      string                     `json:"serviceAccount,omitempty"`
	// DNSPolicy "" is ClusterFirst, Kubernetes' default.
	DNSPolicy string        `json:"dnsPolicy,omitempty"`
	DNSConfig *PodDNSConfig `json:"dnsConfig,omitempty"`
	// EnableServiceLinks nil is true, Kubernetes' default.
	EnableServiceLinks *bool       `json:"enableServiceLinks,omitempty"`
	Hostname           string      `json:"hostname,omitempty"`
	Subdomain          string      `json:"subdomain,omitempty"`
	HostAliases        []HostAlias `json:"hostAliases,omitempty"`
}

// HostAlias is a line of the pod's /etc/hosts.
type HostAlias struct {
	IP        string   `json:"ip"`
	Hostnames []string `json:"hostnames,omitempty"`
}

// PodDNSConfig adds to (or, with dnsPolicy None, makes) the pod's
// resolv.conf.
type PodDNSConfig struct {
	Nameservers []string             `json:"nameservers,omitempty"`
	Searches    []string             `json:"searches,omitempty"`
	Options     []PodDNSConfigOption `json:"options,omitempty"`
}

type PodDNSConfigOption struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

// AllContainers is the init containers, then the others: everything of the
// pod that reads env, volumes and images.
func (s *PodSpec) AllContainers() []Container {
	return append(slices.Clip(s.InitContainers), s.Containers...)
}

// Affinity constrains and prefers nodes by their labels and by the pods
// they run, as kube-scheduler does.
type Affinity struct {
	NodeAffinity    *NodeAffinity `json:"nodeAffinity,omitempty"`
	PodAffinity     *PodAffinity  `json:"podAffinity,omitempty"`
	PodAntiAffinity *PodAffinity  `json:"podAntiAffinity,omitempty"`
}

type NodeAffinity struct {
	Required  *NodeSelector             `json:"requiredDuringSchedulingIgnoredDuringExecution,omitempty"`
	Preferred []PreferredSchedulingTerm `json:"preferredDuringSchedulingIgnoredDuringExecution,omitempty"`
}

type NodeSelector struct {
	NodeSelectorTerms []NodeSelectorTerm `json:"nodeSelectorTerms"`
}

type NodeSelectorTerm struct {
	MatchExpressions []NodeSelectorRequirement `json:"matchExpressions,omitempty"`
	MatchFields      []NodeSelectorRequirement `json:"matchFields,omitempty"`
}

type NodeSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

type PreferredSchedulingTerm struct {
	Weight     int32            `json:"weight"`
	Preference NodeSelectorTerm `json:"preference"`
}

type PodAffinity struct {
	Required  []PodAffinityTerm         `json:"requiredDuringSchedulingIgnoredDuringExecution,omitempty"`
	Preferred []WeightedPodAffinityTerm `json:"preferredDuringSchedulingIgnoredDuringExecution,omitempty"`
}

type PodAffinityTerm struct {
	LabelSelector *LabelSelector `json:"labelSelector,omitempty"`
	Namespaces    []string       `json:"namespaces,omitempty"`
	TopologyKey   string         `json:"topologyKey"`
}

type WeightedPodAffinityTerm struct {
	Weight          int32           `json:"weight"`
	PodAffinityTerm PodAffinityTerm `json:"podAffinityTerm"`
}

type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"`
}

type TopologySpreadConstraint struct {
	MaxSkew           int32          `json:"maxSkew"`
	TopologyKey       string         `json:"topologyKey"`
	WhenUnsatisfiable string         `json:"whenUnsatisfiable"`
	LabelSelector     *LabelSelector `json:"labelSelector,omitempty"`
}

// LocalObjectReference names an object of the same namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

type Container struct {
	Name            string               `json:"name"`
	Image           string               `json:"image"`
	ImagePullPolicy string               `json:"imagePullPolicy,omitempty"`
	Command         []string             `json:"command,omitempty"`
	Args            []string             `json:"args,omitempty"`
	WorkingDir      string               `json:"workingDir,omitempty"`
	Env             []EnvVar             `json:"env,omitempty"`
	EnvFrom         []EnvFromSource      `json:"envFrom,omitempty"`
	Ports           []ContainerPort      `json:"ports,omitempty"`
	Resources       ResourceRequirements `json:"resources,omitzero"`
	LivenessProbe   *Probe               `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe               `json:"readinessProbe,omitempty"`
	// StartupProbe, until it succeeds, holds back the other two; failing
	// failureThreshold times in a row, it restarts the container.
	StartupProbe    *Probe           `json:"startupProbe,omitempty"`
	Lifecycle       *Lifecycle       `json:"lifecycle,omitempty"`
	VolumeMounts    []VolumeMount    `json:"volumeMounts,omitempty"`
	SecurityContext *SecurityContext `json:"securityContext,omitempty"`
}

type ResourceRequirements struct {
	Requests ResourceList `json:"requests,omitzero"`
	Limits   ResourceList `json:"limits,omitzero"`
}

// ResourceList holds quantities as written ("500m", "128Mi"); ParseQuantity
// turns them into numbers.
type ResourceList struct {
	CPU              Quantity `json:"cpu,omitempty"`
	Memory           Quantity `json:"memory,omitempty"`
	EphemeralStorage Quantity `json:"ephemeral-storage,omitempty"`
	// Extended are the resources named domain/name (nvidia.com/gpu).
	Extended map[string]Quantity `json:"-"`
}

// resourceList is ResourceList's JSON without its extended resources.
type resourceList struct {
	CPU              Quantity `json:"cpu,omitempty"`
	Memory           Quantity `json:"memory,omitempty"`
	EphemeralStorage Quantity `json:"ephemeral-storage,omitempty"`
}

// MarshalJSON writes the extended resources beside cpu and memory, as
// Kubernetes does.
func (r ResourceList) MarshalJSON() ([]byte, error) {
	m := map[string]Quantity{}
	maps.Copy(m, r.Extended)
	if r.CPU != "" {
		m["cpu"] = r.CPU
	}
	if r.Memory != "" {
		m["memory"] = r.Memory
	}
	if r.EphemeralStorage != "" {
		m["ephemeral-storage"] = r.EphemeralStorage
	}
	return json.Marshal(m)
}

func (r *ResourceList) UnmarshalJSON(b []byte) error {
	var known resourceList
	if err := json.Unmarshal(b, &known); err != nil {
		return err
	}
	var all map[string]Quantity
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*r = ResourceList{CPU: known.CPU, Memory: known.Memory, EphemeralStorage: known.EphemeralStorage}
	for k, v := range all {
		if strings.Contains(k, "/") {
			if r.Extended == nil {
				r.Extended = map[string]Quantity{}
			}
			r.Extended[k] = v
		}
	}
	return nil
}

// EnvFromSource makes every key of a ConfigMap or Secret a variable.
type EnvFromSource struct {
	Prefix       string         `json:"prefix,omitempty"`
	ConfigMapRef *EnvFromObject `json:"configMapRef,omitempty"`
	SecretRef    *EnvFromObject `json:"secretRef,omitempty"`
}

type EnvFromObject struct {
	Name     string `json:"name"`
	Optional bool   `json:"optional,omitempty"`
}

type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

type EnvVarSource struct {
	ConfigMapKeyRef  *KeySelector           `json:"configMapKeyRef,omitempty"`
	SecretKeyRef     *KeySelector           `json:"secretKeyRef,omitempty"`
	FieldRef         *ObjectFieldSelector   `json:"fieldRef,omitempty"`
	ResourceFieldRef *ResourceFieldSelector `json:"resourceFieldRef,omitempty"`
}

// ObjectFieldSelector names a field of the pod (the downward API).
type ObjectFieldSelector struct {
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// ResourceFieldSelector names a container's request or limit.
type ResourceFieldSelector struct {
	ContainerName string   `json:"containerName,omitempty"`
	Resource      string   `json:"resource"`
	Divisor       Quantity `json:"divisor,omitempty"`
}

type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional bool   `json:"optional,omitempty"`
}

type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostPort      int32  `json:"hostPort,omitempty"`
}

// Handler is what a probe checks or a lifecycle hook does: exactly one
// action. GRPC is for probes, Sleep for hooks.
type Handler struct {
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	Exec      *ExecAction      `json:"exec,omitempty"`
	GRPC      *GRPCAction      `json:"grpc,omitempty"`
	Sleep     *SleepAction     `json:"sleep,omitempty"`
}

// Probe embeds its Handler first, so its JSON (and the spec hashes of
// containers started before GRPC existed) stays as it was.
type Probe struct {
	Handler
	InitialDelaySeconds int32 `json:"initialDelaySeconds"`
	PeriodSeconds       int32 `json:"periodSeconds"`
	TimeoutSeconds      int32 `json:"timeoutSeconds"`
	SuccessThreshold    int32 `json:"successThreshold"`
	FailureThreshold    int32 `json:"failureThreshold"`
}

// GRPCAction asks the grpc.health.v1 service on Port about Service ("":
// the server as a whole).
type GRPCAction struct {
	Port    int32  `json:"port"`
	Service string `json:"service,omitempty"`
}

// SleepAction pauses, as a hook.
type SleepAction struct {
	Seconds int64 `json:"seconds"`
}

// Lifecycle holds a container's hooks: PostStart runs once it has started,
// PreStop before it is sent SIGTERM, within its grace period.
type Lifecycle struct {
	PostStart *Handler `json:"postStart,omitempty"`
	PreStop   *Handler `json:"preStop,omitempty"`
}

type HTTPGetAction struct {
	Path        string       `json:"path"`
	Port        IntOrString  `json:"port"`
	Scheme      string       `json:"scheme"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type TCPSocketAction struct {
	Port IntOrString `json:"port"`
}

type ExecAction struct {
	Command []string `json:"command"`
}

type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	SubPath   string `json:"subPath,omitempty"`
}

type Volume struct {
	Name      string                 `json:"name"`
	ConfigMap *ConfigMapVolumeSource `json:"configMap,omitempty"`
	Secret    *SecretVolumeSource    `json:"secret,omitempty"`
	EmptyDir  *EmptyDirVolumeSource  `json:"emptyDir,omitempty"`
	// PersistentVolumeClaim mounts a claim's local directory.
	PersistentVolumeClaim *ClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
	// HostPath mounts a path of the node, where berth.yaml allows it.
	HostPath *HostPathVolumeSource `json:"hostPath,omitempty"`
}

type HostPathVolumeSource struct {
	Path string `json:"path"`
	// Type is checked (and for the ...OrCreate types, made) before the
	// mount, as the kubelet does; "" checks nothing.
	Type string `json:"type,omitempty"`
}

type ClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Claims lists the claims the pod's volumes name.
func (s *PodSpec) Claims() []string {
	var out []string
	for _, v := range s.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

type ConfigMapVolumeSource struct {
	Name        string      `json:"name"`
	Items       []KeyToPath `json:"items,omitempty"`
	Optional    bool        `json:"optional,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
}

type SecretVolumeSource struct {
	SecretName  string      `json:"secretName"`
	Items       []KeyToPath `json:"items,omitempty"`
	Optional    bool        `json:"optional,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
}

type EmptyDirVolumeSource struct {
	Medium    string   `json:"medium,omitempty"`
	SizeLimit Quantity `json:"sizeLimit,omitempty"`
}

type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

type SecurityContext struct {
	RunAsUser                *int64          `json:"runAsUser,omitempty"`
	RunAsGroup               *int64          `json:"runAsGroup,omitempty"`
	RunAsNonRoot             *bool           `json:"runAsNonRoot,omitempty"`
	ReadOnlyRootFilesystem   *bool           `json:"readOnlyRootFilesystem,omitempty"`
	Privileged               *bool           `json:"privileged,omitempty"`
	AllowPrivilegeEscalation *bool           `json:"allowPrivilegeEscalation,omitempty"`
	SeccompProfile           *SeccompProfile `json:"seccompProfile,omitempty"`
	Capabilities             *Capabilities   `json:"capabilities,omitempty"`
}

// PodSecurityContext is what every container of a pod runs with unless its
// own securityContext says otherwise.
type PodSecurityContext struct {
	RunAsUser           *int64          `json:"runAsUser,omitempty"`
	RunAsGroup          *int64          `json:"runAsGroup,omitempty"`
	RunAsNonRoot        *bool           `json:"runAsNonRoot,omitempty"`
	SupplementalGroups  []int64         `json:"supplementalGroups,omitempty"`
	SeccompProfile      *SeccompProfile `json:"seccompProfile,omitempty"`
	FSGroup             *int64          `json:"fsGroup,omitempty"`
	FSGroupChangePolicy string          `json:"fsGroupChangePolicy,omitempty"`
	Sysctls             []Sysctl        `json:"sysctls,omitempty"`
}

// Sysctl is a namespaced kernel parameter for the pod.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type SeccompProfile struct {
	Type string `json:"type"`
}

// Effective is a container's security context with its pod's filled in
// where the container says nothing, as the kubelet merges them.
func (p *PodSecurityContext) Effective(c *SecurityContext) *SecurityContext {
	if p == nil {
		return c
	}
	out := SecurityContext{}
	if c != nil {
		out = *c
	}
	if out.RunAsUser == nil {
		out.RunAsUser = p.RunAsUser
	}
	if out.RunAsGroup == nil {
		out.RunAsGroup = p.RunAsGroup
	}
	if out.RunAsNonRoot == nil {
		out.RunAsNonRoot = p.RunAsNonRoot
	}
	if out.SeccompProfile == nil {
		out.SeccompProfile = p.SeccompProfile
	}
	return &out
}

type Capabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// IntOrString is a port number or name, or a count or percentage.
type IntOrString struct {
	IsString bool
	Int      int32
	Str      string
}

func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.Str)
	}
	return json.Marshal(v.Int)
}

func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		return json.Unmarshal(b, &v.Str)
	}
	return json.Unmarshal(b, &v.Int)
}

func (v IntOrString) String() string {
	if v.IsString {
		return v.Str
	}
	return strconv.Itoa(int(v.Int))
}

// Quantity is a resource amount as written in the spec. YAML may give it as
// a number (cpu: 1); it is kept as its decimal text.
type Quantity string

func (q *Quantity) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("quantity: %w", err)
	}
	*q = Quantity(n.String())
	return nil
}

// ObjectID identifies an object: (kind, namespace, name).
type ObjectID struct {
	Kind, Namespace, Name string
}

func (id ObjectID) String() string {
	if id.Namespace == "" {
		return id.Kind + " " + id.Name
	}
	return id.Kind + " " + id.Namespace + "/" + id.Name
}

// Matches reports whether labels satisfy the selector, as Kubernetes does.
func (s LabelSelector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := labels[e.Key]
		switch e.Operator {
		case "In":
			if !ok || !slices.Contains(e.Values, v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		}
	}
	return true
}
