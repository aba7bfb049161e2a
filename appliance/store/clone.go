package store

import (
	"bytes"
	"maps"
	"slices"

	"github.com/berth/berth/schemas"
)

// The deep copies below are written out by hand because State.Clone runs on
// every read and every applied batch; a JSON round trip was the bottleneck.
// TestCloneSharesNothing fills every field by reflection, so a field added
// here or in schemas without a copy line fails that test.

// Clone returns a deep copy that shares nothing with s; its maps are never
// nil.
func (s *State) Clone() *State {
	out := &State{
		Index:      s.Index,
		Revisions:  cloneEach(s.Revisions, cloneRevision),
		Nodes:      make(map[string]*Node, len(s.Nodes)),
		Pods:       make(map[string]*Pod, len(s.Pods)),
		ServiceIPs: maps.Clone(s.ServiceIPs),
		// auth.Token holds no references, so a shallow map copy is deep.
		Tokens:     maps.Clone(s.Tokens),
		MasterAPIs: maps.Clone(s.MasterAPIs),
	}
	if s.CA != nil {
		out.CA = &ClusterCA{CertPEM: bytes.Clone(s.CA.CertPEM), EncryptedKey: bytes.Clone(s.CA.EncryptedKey)}
	}
	for k, n := range s.Nodes {
		out.Nodes[k] = cloneNode(n)
	}
	for k, p := range s.Pods {
		out.Pods[k] = clonePod(p)
	}
	out.init()
	return out
}

// cloneEach copies s element by element, keeping nil and empty apart.
func cloneEach[T any](s []T, f func(T) T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// clonePtr copies what p points to; T must hold no references.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneRevision(r Revision) Revision {
	r.Diagnostics = cloneEach(r.Diagnostics, func(d schemas.Diagnostic) schemas.Diagnostic {
		d.Related = slices.Clone(d.Related)
		return d
	})
	r.Objects = cloneEach(r.Objects, func(o Object) Object {
		o.JSON = slices.Clone(o.JSON)
		return o
	})
	return r
}

func cloneNode(n *Node) *Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Labels = maps.Clone(n.Labels)
	return &c
}

func clonePod(p *Pod) *Pod {
	if p == nil {
		return nil
	}
	c := *p
	c.Labels = maps.Clone(p.Labels)
	c.Spec = clonePodSpec(p.Spec)
	c.Status.Containers = slices.Clone(p.Status.Containers)
	return &c
}

func clonePodSpec(s schemas.PodSpec) schemas.PodSpec {
	s.Containers = cloneEach(s.Containers, cloneContainer)
	s.Volumes = cloneEach(s.Volumes, func(v schemas.Volume) schemas.Volume {
		if v.ConfigMap != nil {
			cm := *v.ConfigMap
			cm.Items = slices.Clone(cm.Items)
			cm.DefaultMode = clonePtr(cm.DefaultMode)
			v.ConfigMap = &cm
		}
		if v.Secret != nil {
			sec := *v.Secret
			sec.Items = slices.Clone(sec.Items)
			sec.DefaultMode = clonePtr(sec.DefaultMode)
			v.Secret = &sec
		}
		v.EmptyDir = clonePtr(v.EmptyDir)
		return v
	})
	s.NodeSelector = maps.Clone(s.NodeSelector)
	return s
}

func cloneContainer(c schemas.Container) schemas.Container {
	c.Command = slices.Clone(c.Command)
	c.Args = slices.Clone(c.Args)
	c.Env = cloneEach(c.Env, func(e schemas.EnvVar) schemas.EnvVar {
		if e.ValueFrom != nil {
			src := *e.ValueFrom
			src.ConfigMapKeyRef = clonePtr(src.ConfigMapKeyRef)
			src.SecretKeyRef = clonePtr(src.SecretKeyRef)
			e.ValueFrom = &src
		}
		return e
	})
	c.Ports = slices.Clone(c.Ports)
	c.LivenessProbe = cloneProbe(c.LivenessProbe)
	c.ReadinessProbe = cloneProbe(c.ReadinessProbe)
	c.VolumeMounts = slices.Clone(c.VolumeMounts)
	if c.SecurityContext != nil {
		sc := *c.SecurityContext
		sc.RunAsUser = clonePtr(sc.RunAsUser)
		sc.RunAsGroup = clonePtr(sc.RunAsGroup)
		sc.RunAsNonRoot = clonePtr(sc.RunAsNonRoot)
		sc.ReadOnlyRootFilesystem = clonePtr(sc.ReadOnlyRootFilesystem)
		sc.Privileged = clonePtr(sc.Privileged)
		if sc.Capabilities != nil {
			caps := *sc.Capabilities
			caps.Add = slices.Clone(caps.Add)
			caps.Drop = slices.Clone(caps.Drop)
			sc.Capabilities = &caps
		}
		c.SecurityContext = &sc
	}
	return c
}

func cloneProbe(p *schemas.Probe) *schemas.Probe {
	if p == nil {
		return nil
	}
	c := *p
	if p.HTTPGet != nil {
		h := *p.HTTPGet
		h.HTTPHeaders = slices.Clone(h.HTTPHeaders)
		c.HTTPGet = &h
	}
	c.TCPSocket = clonePtr(p.TCPSocket)
	if p.Exec != nil {
		e := *p.Exec
		e.Command = slices.Clone(e.Command)
		c.Exec = &e
	}
	return &c
}
