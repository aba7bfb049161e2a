// Package agent is berth's node agent (the kubelet's job): it registers the
// node, heartbeats, watches the pods bound to it, runs them through the
// container runtime, probes them and reports their status.
package agent

import (
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// configError is a pod that cannot start because of its configuration (a
// missing ConfigMap key, say): Kubernetes' CreateContainerConfigError.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// resolveEnv turns a container's envFrom and env into NAME=value pairs,
// reading ConfigMap and Secret references from the node's assignment. As
// the kubelet: envFrom's keys come first, sorted per source, a later source
// overriding an earlier one; env overrides them all; a key that is no valid
// variable name is left out.
func resolveEnv(a *api.NodeAssignment, p *state.Pod, c *objects.Container) ([]string, error) {
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
			return nil, err
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if name := src.Prefix + k; envName.MatchString(name) {
				set(name, data[k])
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, e.Value)
			continue
		}
		v, ok, err := lookupKey(a, p.Namespace, e.ValueFrom)
		if err != nil {
			return nil, err
		}
		if ok {
			set(e.Name, v)
		}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "=" + values[n]
	}
	return out, nil
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
		for k, v := range secretData(s) {
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
		if v, ok := secretData(s)[ref.Key]; ok {
			return string(v), true, nil
		}
	}
	if ref.Optional {
		return "", false, nil
	}
	return "", false, &configError{fmt.Sprintf("Secret %s/%s has no key %q", namespace, ref.Name, ref.Key)}
}

// secretData merges data (base64, validated by the loader) and stringData,
// which wins as in Kubernetes.
func secretData(s *objects.Secret) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range s.Data {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			out[k] = b
		}
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
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
