package main

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// This file shapes what the API lists as the Kubernetes API would show it
// (apiVersion, kind, metadata, spec, status), so that jq and jsonpath
// written for kubectl work on berth get -o json too.

// kubeObject is one object as Kubernetes writes it. Kinds without a spec
// (ConfigMap, Secret) are their declared JSON as is.
type kubeObject struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   kubeMeta `json:"metadata"`
	Spec       any      `json:"spec,omitempty"`
	Status     any      `json:"status,omitempty"`
}

type kubeMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	CreationTimestamp *kubeTime         `json:"creationTimestamp,omitempty"`
	OwnerReferences   []ownerRef        `json:"ownerReferences,omitempty"`
}

type ownerRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Controller bool   `json:"controller"`
}

// kubeTime is written as Kubernetes' metav1.Time: RFC 3339, in seconds.
type kubeTime time.Time

func (t kubeTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339))
}

// timeOf is nil for a zero time, which Kubernetes leaves out.
func timeOf(t time.Time) *kubeTime {
	if t.IsZero() {
		return nil
	}
	k := kubeTime(t)
	return &k
}

type condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime *kubeTime `json:"lastTransitionTime,omitempty"`
}

func cond(typ string, ok bool, reason string) condition {
	c := condition{Type: typ, Status: "False", Reason: reason}
	if ok {
		c.Status = "True"
	}
	return c
}

// revObject is an object of the applied revision as /v1/objects lists it.
type revObject struct {
	Kind     string             `json:"kind"`
	Metadata objects.ObjectMeta `json:"metadata"`
	Spec     json.RawMessage    `json:"spec"`
}

// revObjects indexes the applied revision's objects by kind/namespace/name.
type revObjects map[string]revObject

func indexObjects(raws []json.RawMessage) (revObjects, error) {
	out := revObjects{}
	for _, raw := range raws {
		var o revObject
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("an applied object: %w", err)
		}
		out[o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name] = o
	}
	return out, nil
}

// meta is the metadata of the declared object of kind, namespace, name;
// the name alone when the revision has no such object.
func (r revObjects) meta(kind, namespace, name string) kubeMeta {
	m := r[kind+"/"+namespace+"/"+name].Metadata
	return kubeMeta{Name: name, Namespace: namespace, Labels: m.Labels, Annotations: m.Annotations}
}

// spec is the declared object's spec, decoded generically so it can be
// completed with what the cluster allocated.
func (r revObjects) spec(kind, namespace, name string) map[string]any {
	var m map[string]any
	if s := r[kind+"/"+namespace+"/"+name].Spec; len(s) > 0 {
		json.Unmarshal(s, &m) // it decoded as JSON once already
	}
	return m
}

// workload is the part of a workload's spec the wide tables show.
type workload struct {
	Selector objects.LabelSelector   `json:"selector"`
	Template objects.PodTemplateSpec `json:"template"`
}

func (r revObjects) workload(kind, namespace, name string) workload {
	var w workload
	if s := r[kind+"/"+namespace+"/"+name].Spec; len(s) > 0 {
		json.Unmarshal(s, &w) // it decoded as JSON once already
	}
	return w
}

// shaper makes the Kubernetes objects of one listing; nodes and pods are
// read when a kind's status needs them (a pod's hostIP, a Deployment's
// replicas).
type shaper struct {
	objs        revObjects
	nodes       map[string]state.Node
	pods        []state.Pod
	terminating []string // namespaces
}

func (s *shaper) pod(p state.Pod) kubeObject {
	spec := toMap(p.Spec)
	if p.NodeName != "" {
		spec["nodeName"] = p.NodeName
	}
	st := map[string]any{"phase": podPhase(p)}
	if p.Status.IP != "" {
		st["podIP"], st["podIPs"] = p.Status.IP, []map[string]string{{"ip": p.Status.IP}}
	}
	if host := nodeIP(s.nodes[p.NodeName]); host != "" {
		st["hostIP"], st["hostIPs"] = host, []map[string]string{{"ip": host}}
	}
	if p.Status.Reason != "" {
		st["reason"], st["message"] = p.Status.Reason, p.Status.Message
	}
	if !p.Created.IsZero() {
		st["startTime"] = timeOf(p.Created)
	}
	all := true
	for _, c := range p.Status.Containers {
		all = all && c.Ready
	}
	all = all && len(p.Status.Containers) == len(p.Spec.Containers)
	st["conditions"] = []condition{cond("PodScheduled", p.NodeName != "", ""), cond("ContainersReady", all, ""), cond("Ready", p.Status.Ready, "")}
	if cs := containerStatuses(p.Spec.InitContainers, p.Status.InitContainers); len(cs) > 0 {
		st["initContainerStatuses"] = cs
	}
	if cs := containerStatuses(p.Spec.Containers, p.Status.Containers); len(cs) > 0 {
		st["containerStatuses"] = cs
	}
	m := kubeMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, Annotations: p.Annotations, CreationTimestamp: timeOf(p.Created)}
	if p.Deployment != "" {
		kind, name := p.OwnerKind, p.Deployment
		if kind == "" { // a Deployment's pods belong to the ReplicaSet of its template
			kind, name = "ReplicaSet", p.Deployment+"-"+p.TemplateHash
		}
		m.OwnerReferences = []ownerRef{{APIVersion: apiVersions[kind], Kind: kind, Name: name, Controller: true}}
	}
	return kubeObject{APIVersion: "v1", Kind: "Pod", Metadata: m, Spec: spec, Status: st}
}

var apiVersions = map[string]string{"ReplicaSet": "apps/v1", reconcile.KindDaemonSet: "apps/v1", reconcile.KindStatefulSet: "apps/v1",
	reconcile.KindJob: "batch/v1", "CronJob": "batch/v1"}

func containerStatuses(spec []objects.Container, st []state.ContainerStatus) []map[string]any {
	var out []map[string]any
	for _, c := range st {
		cs := map[string]any{"name": c.Name, "ready": c.Ready, "restartCount": c.Restarts, "started": c.State == "running"}
		if i := slices.IndexFunc(spec, func(sc objects.Container) bool { return sc.Name == c.Name }); i >= 0 {
			cs["image"] = spec[i].Image
		}
		if c.ID != "" {
			cs["containerID"] = "containerd://" + c.ID
		}
		switch c.State {
		case "running":
			cs["state"] = map[string]any{"running": map[string]any{}}
		case "exited":
			cs["state"] = map[string]any{"terminated": map[string]any{"exitCode": c.ExitCode, "reason": c.Reason}}
		default:
			cs["state"] = map[string]any{"waiting": map[string]any{"reason": c.Reason}}
		}
		out = append(out, cs)
	}
	return out
}

func nodeIP(n state.Node) string {
	host, _, err := net.SplitHostPort(n.Address)
	if err != nil {
		return n.Address
	}
	return host
}

func (s *shaper) node(n state.Node) kubeObject {
	res := map[string]string{"cpu": milli(n.CPUMilli), "memory": bytesQuantity(n.MemoryBytes)}
	if n.EphemeralBytes > 0 {
		res["ephemeral-storage"] = bytesQuantity(n.EphemeralBytes)
	}
	// Reasons and messages as the kubelet words them; berth's own reason
	// (containerd is down) is the message.
	ready := cond("Ready", n.Ready, "KubeletReady")
	ready.LastTransitionTime, ready.Message = timeOf(n.Transition), "kubelet is posting ready status"
	if !n.Ready {
		ready.Reason, ready.Message = "KubeletNotReady", n.Reason
	}
	disk := cond("DiskPressure", n.DiskPressure, "KubeletHasNoDiskPressure")
	disk.Message = "kubelet has no disk pressure"
	if n.DiskPressure {
		disk.Reason, disk.Message = "KubeletHasDiskPressure", "kubelet has disk pressure"
	}
	st := map[string]any{"capacity": res, "allocatable": res, "conditions": []condition{ready, disk}}
	if ip := nodeIP(n); ip != "" {
		st["addresses"] = []map[string]string{{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": n.Name}}
	}
	spec := map[string]any{}
	if n.PodCIDR != "" {
		spec["podCIDR"], spec["podCIDRs"] = n.PodCIDR, []string{n.PodCIDR}
	}
	if n.Unschedulable {
		spec["unschedulable"] = true
	}
	return kubeObject{APIVersion: "v1", Kind: "Node", Metadata: kubeMeta{Name: n.Name, Labels: n.Labels}, Spec: spec, Status: st}
}

func (s *shaper) deployment(d apiDeployment) kubeObject {
	replicas := 0
	for _, p := range s.pods {
		if p.OwnerKind == "" && p.Namespace == d.Namespace && p.Deployment == d.Name && !p.Terminating {
			replicas++
		}
	}
	progressing := cond("Progressing", d.Reason == "", d.Reason)
	if d.Reason == "" {
		progressing.Reason = "NewReplicaSetAvailable"
	}
	available := cond("Available", d.Ready >= int(d.Replicas), "MinimumReplicasAvailable")
	if available.Status == "False" {
		available.Reason = "MinimumReplicasUnavailable"
	}
	st := map[string]any{"replicas": replicas, "readyReplicas": d.Ready, "updatedReplicas": d.UpToDate, "availableReplicas": d.Ready,
		"unavailableReplicas": max(0, int(d.Replicas)-d.Ready),
		"conditions":          []condition{available, progressing}}
	return s.declared("apps/v1", "Deployment", d.Namespace, d.Name, st)
}

func (s *shaper) declared(apiVersion, kind, namespace, name string, status any) kubeObject {
	return kubeObject{APIVersion: apiVersion, Kind: kind, Metadata: s.objs.meta(kind, namespace, name), Spec: s.objs.spec(kind, namespace, name), Status: status}
}

func (s *shaper) daemonSet(d api.DaemonSetStatus) kubeObject {
	return s.declared("apps/v1", "DaemonSet", d.Namespace, d.Name, map[string]any{"desiredNumberScheduled": d.Desired,
		"currentNumberScheduled": d.Current, "numberReady": d.Ready, "numberAvailable": d.Ready, "updatedNumberScheduled": d.UpToDate, "numberMisscheduled": 0})
}

func (s *shaper) statefulSet(d api.StatefulSetStatus) kubeObject {
	return s.declared("apps/v1", "StatefulSet", d.Namespace, d.Name, map[string]any{"replicas": d.Current,
		"readyReplicas": d.Ready, "availableReplicas": d.Ready, "currentReplicas": d.Current, "updatedReplicas": d.UpToDate})
}

func (s *shaper) service(v apiService) kubeObject {
	spec := s.objs.spec("Service", v.Namespace, v.Name)
	if spec == nil {
		spec = map[string]any{}
	}
	if v.ClusterIP != "" {
		spec["clusterIP"], spec["clusterIPs"] = v.ClusterIP, []string{v.ClusterIP}
	}
	// The node ports the cluster allocated, on the declared ports.
	ports, _ := spec["ports"].([]any)
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		for _, pv := range v.Ports {
			if pm != nil && pm["port"] == float64(pv.Port) && (pm["protocol"] == nil || pm["protocol"] == pv.Protocol) && pv.NodePort != 0 {
				pm["nodePort"] = pv.NodePort
			}
		}
	}
	st := map[string]any{"loadBalancer": map[string]any{}}
	if len(v.Ingress) > 0 {
		var ing []map[string]string
		for _, ip := range v.Ingress {
			ing = append(ing, map[string]string{"ip": ip})
		}
		st["loadBalancer"] = map[string]any{"ingress": ing}
	}
	return kubeObject{APIVersion: "v1", Kind: "Service", Metadata: s.objs.meta("Service", v.Namespace, v.Name), Spec: spec, Status: st}
}

func (s *shaper) job(j state.Job) kubeObject {
	st := map[string]any{"succeeded": j.Status.Succeeded, "failed": j.Status.Failed}
	if !j.Status.Start.IsZero() {
		st["startTime"] = timeOf(j.Status.Start)
	}
	if j.Status.Done() {
		c := cond(j.Status.Condition, true, j.Status.Reason)
		c.LastTransitionTime = timeOf(j.Status.Finished)
		st["conditions"] = []condition{c}
		if j.Status.Condition == state.JobComplete {
			st["completionTime"] = timeOf(j.Status.Finished)
		}
	}
	m := s.objs.meta("Job", j.Namespace, j.Name)
	if j.CronJob != "" {
		m.OwnerReferences = []ownerRef{{APIVersion: "batch/v1", Kind: "CronJob", Name: j.CronJob, Controller: true}}
	}
	m.CreationTimestamp = timeOf(j.Status.Start)
	return kubeObject{APIVersion: "batch/v1", Kind: "Job", Metadata: m, Spec: j.Spec, Status: st}
}

func (s *shaper) cronJob(c api.CronJobStatus) kubeObject {
	st := map[string]any{}
	if !c.LastSchedule.IsZero() {
		st["lastScheduleTime"] = timeOf(c.LastSchedule)
	}
	return s.declared("batch/v1", "CronJob", c.Namespace, c.Name, st)
}

func (s *shaper) claim(c api.ClaimStatus) kubeObject {
	size := map[string]string{"storage": bytesQuantity(c.Bytes)}
	spec := map[string]any{"accessModes": c.AccessModes, "resources": map[string]any{"requests": size}, "storageClassName": "local-path"}
	st := map[string]any{"phase": c.Phase}
	if c.Phase == "Bound" {
		st["accessModes"], st["capacity"] = c.AccessModes, size
	}
	return kubeObject{APIVersion: "v1", Kind: "PersistentVolumeClaim", Metadata: s.objs.meta("PersistentVolumeClaim", c.Namespace, c.Name), Spec: spec, Status: st}
}

// revision is berth's own kind: no Kubernetes type has its fields.
func (s *shaper) revision(r apiRevision) kubeObject {
	return kubeObject{APIVersion: "berth/v1", Kind: "Revision", Metadata: kubeMeta{Name: r.Commit, CreationTimestamp: timeOf(r.Time)},
		Spec:   map[string]any{"author": r.Author, "message": r.Message},
		Status: map[string]any{"phase": r.Status, "objects": r.Objects, "diagnostics": r.Diagnostics}}
}

func (s *shaper) namespace(n apiNamespace) kubeObject {
	return kubeObject{APIVersion: "v1", Kind: "Namespace", Metadata: s.objs.meta("Namespace", "", n.Name), Status: map[string]string{"phase": n.Phase}}
}

// toMap is v's JSON as a map, to be completed.
func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // schemas types are JSON-safe
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// milli writes millicores as a Kubernetes quantity: whole cores plain.
func milli(m int64) string {
	if m%1000 == 0 {
		return fmt.Sprint(m / 1000)
	}
	return fmt.Sprintf("%dm", m)
}

// bytesQuantity writes bytes with the largest binary suffix that divides them.
func bytesQuantity(b int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if b != 0 && b%u.n == 0 {
			return fmt.Sprintf("%d%s", b/u.n, u.s)
		}
	}
	return fmt.Sprint(b)
}

// dataKeys counts a Secret's or ConfigMap's keys, as kubectl's DATA.
func dataKeys(raw json.RawMessage) int {
	var v struct {
		Data       map[string]any `json:"data"`
		BinaryData map[string]any `json:"binaryData"`
	}
	json.Unmarshal(raw, &v)
	return len(v.Data) + len(v.BinaryData)
}
