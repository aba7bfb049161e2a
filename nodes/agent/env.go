// Package agent is berth's node agent (the kubelet's job): it registers the
// node, heartbeats, watches the pods bound to it, runs them through the
// container runtime, probes them and reports their status.
package agent

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// configError is a pod that cannot start because of its configuration (a
// missing ConfigMap key, say): Kubernetes' CreateContainerConfigError.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// resolveEnv turns a container's envFrom and env into NAME=value pairs,
// reading ConfigMap and Secret references from the node's assignment and
// the downward API's fields from the pod and its node. As the kubelet:
// envFrom's keys come first, sorted per source, a later source overriding
// an earlier one; env overrides them all; a key that is no valid variable
// name is left out. The pod's IP is not known before its network is up:
// podIP names the variables the runtime sets to it.
func resolveEnv(a *api.NodeAssignment, p *state.Pod, c *objects.Container, node *state.Node) (env, podIP []string, err error) {
	var names []string
	values := map[string]string{}
	set := func(name, v string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = v
	}
	for _, src := range c.EnvFrom {
		data, err := envFromData(a, p.Namespace, src)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if name := src.Prefix + k; envName.MatchString(name) {
				set(name, data[k])
			}
		}
	}
	for _, e := range c.Env {
		vf := e.ValueFrom
		switch {
		case vf == nil:
			set(e.Name, e.Value)
		case vf.FieldRef != nil && (vf.FieldRef.FieldPath == "status.podIP" || vf.FieldRef.FieldPath == "status.podIPs"):
			podIP = append(podIP, e.Name)
		case vf.FieldRef != nil:
			set(e.Name, podField(p, node, vf.FieldRef.FieldPath))
		case vf.ResourceFieldRef != nil:
			v, err := resourceField(p, c, node, vf.ResourceFieldRef)
			if err != nil {
				return nil, nil, &configError{fmt.Sprintf("env %s: %v", e.Name, err)}
			}
			set(e.Name, v)
		default:
			v, ok, err := lookupKey(a, p.Namespace, vf)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				set(e.Name, v)
			}
		}
	}
	for _, n := range podIP {
		delete(values, n) // a later env entry of the same name wins
		names = slices.DeleteFunc(names, func(x string) bool { return x == n })
	}
	env = make([]string, len(names))
	for i, n := range names {
		env[i] = n + "=" + values[n]
	}
	return env, podIP, nil
}

// podField is a field of the pod as the downward API names it (the loader
// admits no other path); a label or annotation the pod lacks is "".
func podField(p *state.Pod, node *state.Node, path string) string {
	switch path {
	case "metadata.name":
		return p.Name
	case "metadata.namespace":
		return p.Namespace
	case "metadata.uid":
		return podUID(p)
	case "spec.nodeName":
		return p.NodeName
	case "spec.serviceAccountName":
		if sa := cmp.Or(p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount); sa != "" {
			return sa
		}
		return "default"
	case "status.hostIP", "status.hostIPs":
		return nodeIP(node)
	}
	if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return p.Labels[strings.TrimSuffix(key, "']")]
	}
	if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return p.Annotations[strings.TrimSuffix(key, "']")]
	}
	return ""
}

// nodeIP is the node's address without its port.
func nodeIP(node *state.Node) string {
	if host, _, err := net.SplitHostPort(node.Address); err == nil {
		return host
	}
	return node.Address
}

// resourceField is a container's request or limit divided by the divisor,
// rounded up, as the kubelet computes it: an unset limit is the node's
// capacity, an unset request the limit if one is set (the API server's
// default), else 0.
func resourceField(p *state.Pod, self *objects.Container, node *state.Node, rf *objects.ResourceFieldSelector) (string, error) {
	c := self
	if rf.ContainerName != "" {
		i := slices.IndexFunc(p.Spec.Containers, func(x objects.Container) bool { return x.Name == rf.ContainerName })
		if i < 0 {
			return "", fmt.Errorf("the pod has no container %q", rf.ContainerName)
		}
		c = &p.Spec.Containers[i]
	}
	kind, resource, _ := strings.Cut(rf.Resource, ".")
	var limit, request objects.Quantity
	var capacity int64
	switch resource {
	case "cpu":
		limit, request, capacity = c.Resources.Limits.CPU, c.Resources.Requests.CPU, node.CPUMilli
	case "memory":
		limit, request, capacity = c.Resources.Limits.Memory, c.Resources.Requests.Memory, node.MemoryBytes
	case "ephemeral-storage":
		limit, request, capacity = c.Resources.Limits.EphemeralStorage, c.Resources.Requests.EphemeralStorage, node.EphemeralBytes
	default:
		return "", fmt.Errorf("berth does not offer %s", rf.Resource)
	}
	q := limit
	if kind == "requests" && request != "" {
		q = request
	}
	// cpu in millicores, memory in bytes; the divisor in the same unit.
	scaled := objects.Quantity.Value
	if resource == "cpu" {
		scaled = objects.Quantity.Milli
	}
	var v int64
	switch {
	case q != "":
		n, err := scaled(q)
		if err != nil {
			return "", err
		}
		v = n
	case kind == "limits":
		v = capacity
	}
	div := int64(1)
	if resource == "cpu" {
		div = 1000
	}
	if rf.Divisor != "" {
		d, err := scaled(rf.Divisor)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("divisor %q is no quantity above zero", rf.Divisor)
		}
		div = d
	}
	return strconv.FormatInt((v+div-1)/div, 10), nil
}

// envName is Kubernetes' rule for a variable name (#EnvVarName).
var envName = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// envFromData is the data of one envFrom source; an optional one that is
// missing has none.
func envFromData(a *api.NodeAssignment, namespace string, src objects.EnvFromSource) (map[string]string, error) {
	out := map[string]string{}
	if ref := src.ConfigMapRef; ref != nil {
		cm := a.ConfigMaps[namespace+"/"+ref.Name]
		if cm == nil && !ref.Optional {
			return nil, &configError{fmt.Sprintf("envFrom: ConfigMap %s/%s not found", namespace, ref.Name)}
		}
		if cm != nil {
			maps.Copy(out, cm.Data)
		}
		return out, nil
	}
	ref := src.SecretRef
	s := a.Secrets[namespace+"/"+ref.Name]
	if s == nil && !ref.Optional {
		return nil, &configError{fmt.Sprintf("envFrom: Secret %s/%s not found", namespace, ref.Name)}
	}
	if s != nil {
		for k, v := range objects.SecretData(s) {
			out[k] = string(v)
		}
	}
	return out, nil
}

func lookupKey(a *api.NodeAssignment, namespace string, vf *objects.EnvVarSource) (string, bool, error) {
	if ref := vf.ConfigMapKeyRef; ref != nil {
		cm := a.ConfigMaps[namespace+"/"+ref.Name]
		if cm != nil {
			if v, ok := cm.Data[ref.Key]; ok {
				return v, true, nil
			}
		}
		if ref.Optional {
			return "", false, nil
		}
		return "", false, &configError{fmt.Sprintf("ConfigMap %s/%s has no key %q", namespace, ref.Name, ref.Key)}
	}
	ref := vf.SecretKeyRef
	s := a.Secrets[namespace+"/"+ref.Name]
	if s != nil {
		if v, ok := objects.SecretData(s)[ref.Key]; ok {
			return string(v), true, nil
		}
	}
	if ref.Optional {
		return "", false, nil
	}
	return "", false, &configError{fmt.Sprintf("Secret %s/%s has no key %q", namespace, ref.Name, ref.Key)}
}

// configMapData merges data and binaryData of a ConfigMap.
func configMapData(cm *objects.ConfigMap) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			out[k] = b
		}
	}
	return out
}
