// Package reconcile holds the leader's controllers. Each is a pure function
// of a state snapshot (and the time): it returns the commands that move the
// cluster toward the applied revision, and never performs I/O itself, in the
// manner of Nomad's scheduler. Loop runs them against a store.
package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Desired is the applied revision, decoded.
type Desired struct {
	Commit       string
	Deployments  []*objects.Deployment
	DaemonSets   []*objects.DaemonSet
	StatefulSets []*objects.StatefulSet
	Claims       []*objects.PersistentVolumeClaim
	Jobs         []*objects.Job
	CronJobs     []*objects.CronJob
	Services     []*objects.Service
	ConfigMaps   map[string]*objects.ConfigMap // by namespace/name
	Secrets      map[string]*objects.Secret    // by namespace/name
}

// decoded holds the last revision DesiredState decoded: every controller
// pass and every blocking query of every agent asks for the same one, and
// decoding a large revision each time cost more than the answers.
var decoded struct {
	sync.Mutex
	objects *state.Object // the first of the revision's objects
	d       *Desired
}

// DesiredState decodes the applied revision of s; with none, it is empty.
// The Services, ConfigMaps and Secrets of terminating namespaces are added:
// their pods may need them until they stop. The result is shared by every
// caller of the same revision: it must not be changed.
func DesiredState(s *state.State) (*Desired, error) {
	d, err := revisionState(s)
	if err != nil || len(s.Terminating) == 0 {
		return d, err
	}
	return withTerminating(d, s.Terminating)
}

// withTerminating is a copy of d with the objects of terminating
// namespaces; the revision's own win where both name one.
func withTerminating(d *Desired, terminating map[string][]state.Object) (*Desired, error) {
	var objs []state.Object
	for _, ns := range slices.Sorted(maps.Keys(terminating)) {
		objs = append(objs, terminating[ns]...)
	}
	t, err := decode(&state.Revision{Commit: d.Commit, Objects: objs})
	if err != nil {
		return nil, err
	}
	out := *d
	out.ConfigMaps, out.Secrets = maps.Clone(d.ConfigMaps), maps.Clone(d.Secrets)
	out.Services = slices.Clone(d.Services)
	for k, v := range t.ConfigMaps {
		if _, ok := out.ConfigMaps[k]; !ok {
			out.ConfigMaps[k] = v
		}
	}
	for k, v := range t.Secrets {
		if _, ok := out.Secrets[k]; !ok {
			out.Secrets[k] = v
		}
	}
	for _, svc := range t.Services {
		if !slices.ContainsFunc(d.Services, func(o *objects.Service) bool {
			return o.Metadata.Namespace == svc.Metadata.Namespace && o.Metadata.Name == svc.Metadata.Name
		}) {
			out.Services = append(out.Services, svc)
		}
	}
	return &out, nil
}

// revisionState decodes the applied revision alone, once per revision.
func revisionState(s *state.State) (*Desired, error) {
	rev := s.Current()
	if rev == nil {
		return &Desired{ConfigMaps: map[string]*objects.ConfigMap{}, Secrets: map[string]*objects.Secret{}}, nil
	}
	if len(rev.Objects) == 0 {
		return decode(rev)
	}
	decoded.Lock()
	defer decoded.Unlock()
	// A revision's objects never change once recorded, and every state
	// after shares them: the same array is the same revision.
	if first := &rev.Objects[0]; decoded.objects == first {
		return decoded.d, nil
	}
	d, err := decode(rev)
	if err != nil {
		return nil, err
	}
	decoded.objects, decoded.d = &rev.Objects[0], d
	return d, nil
}

func decode(rev *state.Revision) (*Desired, error) {
	d := &Desired{ConfigMaps: map[string]*objects.ConfigMap{}, Secrets: map[string]*objects.Secret{}}
	d.Commit = rev.Commit
	for _, o := range rev.Objects {
		key := o.ID.Namespace + "/" + o.ID.Name
		var err error
		switch o.ID.Kind {
		case "Deployment":
			v := &objects.Deployment{}
			err = json.Unmarshal(o.JSON, v)
			d.Deployments = append(d.Deployments, v)
		case "DaemonSet":
			v := &objects.DaemonSet{}
			err = json.Unmarshal(o.JSON, v)
			d.DaemonSets = append(d.DaemonSets, v)
		case "StatefulSet":
			v := &objects.StatefulSet{}
			err = json.Unmarshal(o.JSON, v)
			d.StatefulSets = append(d.StatefulSets, v)
		case "PersistentVolumeClaim":
			v := &objects.PersistentVolumeClaim{}
			err = json.Unmarshal(o.JSON, v)
			d.Claims = append(d.Claims, v)
		case "Job":
			v := &objects.Job{}
			err = json.Unmarshal(o.JSON, v)
			d.Jobs = append(d.Jobs, v)
		case "CronJob":
			v := &objects.CronJob{}
			err = json.Unmarshal(o.JSON, v)
			d.CronJobs = append(d.CronJobs, v)
		case "Service":
			v := &objects.Service{}
			err = json.Unmarshal(o.JSON, v)
			d.Services = append(d.Services, v)
		case "ConfigMap":
			v := &objects.ConfigMap{}
			err = json.Unmarshal(o.JSON, v)
			d.ConfigMaps[key] = v
		case "Secret":
			v := &objects.Secret{}
			err = json.Unmarshal(o.JSON, v)
			d.Secrets[key] = v
		}
		if err != nil {
			return nil, fmt.Errorf("revision %s: %s: %w", rev.Commit, o.ID, err)
		}
	}
	return d, nil
}

// TemplateHash identifies a pod template: equal templates hash equally in
// every revision, so reverting a commit brings back the earlier rollout's
// pods by identity. Like Kubernetes' pod-template-hash, 10 hex digits.
func TemplateHash(t objects.PodTemplateSpec) string { return hashOf(t) }

// JobHash identifies a Job's spec: a Job from git whose spec changes is a
// new run.
func JobHash(spec objects.JobSpec) string { return hashOf(spec) }

func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // schemas types are JSON-safe
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

func sortedPods(pods []*state.Pod) []*state.Pod {
	sort.Slice(pods, func(i, j int) bool {
		if !pods[i].Created.Equal(pods[j].Created) {
			return pods[i].Created.Before(pods[j].Created)
		}
		return pods[i].Name < pods[j].Name
	})
	return pods
}
