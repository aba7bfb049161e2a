package reconcile

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// RolloutView is where one workload's rollout of its current template
// stands, in the terms kubectl's rollout status uses.
type RolloutView struct {
	Kind      string `json:"kind"` // Deployment, StatefulSet or DaemonSet
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Revision is the newest kept revision that changed the object.
	Revision string `json:"revision,omitempty"`
	// Strategy is RollingUpdate, Recreate or OnDelete.
	Strategy string `json:"strategy"`
	// Desired is replicas (a DaemonSet's: the ready nodes it selects);
	// Current the live pods, Ready those ready; Updated the live pods of
	// the current template, Available those available (ready for
	// minReadySeconds). Partition is a StatefulSet's.
	Desired   int `json:"desired"`
	Current   int `json:"current"`
	Ready     int `json:"ready"`
	Updated   int `json:"updated"`
	Available int `json:"available"`
	Partition int `json:"partition,omitempty"`
	// Done: the rollout is complete.
	Done bool `json:"done"`
	// Reason is why it does not progress: ProgressDeadlineExceeded or
	// DeploymentPaused (Deployments only, as in Kubernetes).
	Reason string `json:"reason,omitempty"`
}

// ID is the workload's object identity.
func (v RolloutView) ID() objects.ObjectID {
	return objects.ObjectID{Kind: v.Kind, Namespace: v.Namespace, Name: v.Name}
}

// Rollouts are the rollouts of every Deployment, StatefulSet and
// DaemonSet of the applied revision, in its order by kind.
func Rollouts(s *state.State, d *Desired, now time.Time) []RolloutView {
	var out []RolloutView
	for _, dep := range d.Deployments {
		out = append(out, deploymentRollout(s, dep, now))
	}
	for _, ss := range d.StatefulSets {
		out = append(out, statefulSetRollout(s, ss, now))
	}
	for _, ds := range d.DaemonSets {
		out = append(out, daemonSetRollout(s, ds, now))
	}
	return out
}

// count fills in a view's pod counts from an owner's pods; counted
// filters out pods that are not the owner's to count (a StatefulSet's
// beyond its replicas are Current but never Updated).
func (v *RolloutView) count(pods []*state.Pod, hash string, minReady time.Duration, now time.Time, counted func(*state.Pod) bool) {
	for _, p := range pods {
		if p.Terminating {
			continue
		}
		v.Current++
		if p.Status.Ready {
			v.Ready++
		}
		if p.TemplateHash != hash || !counted(p) {
			continue
		}
		v.Updated++
		if p.Status.Ready && !p.Status.ReadySince.IsZero() && now.Sub(p.Status.ReadySince) >= minReady {
			v.Available++
		}
	}
}

func all(*state.Pod) bool { return true }

func deploymentRollout(s *state.State, dep *objects.Deployment, now time.Time) RolloutView {
	v := RolloutView{Kind: "Deployment", Namespace: dep.Metadata.Namespace, Name: dep.Metadata.Name,
		Strategy: orDefault(dep.Spec.Strategy.Type, "RollingUpdate"), Desired: int(dep.Spec.Replicas)}
	pods := slices.Collect(s.Pods.OfDeployment(v.Namespace, v.Name))
	v.count(pods, TemplateHash(dep.Spec.Template), time.Duration(dep.Spec.MinReadySeconds)*time.Second, now, all)
	// kubectl's test: every replica updated and available, no old one.
	v.Done = v.Updated == v.Desired && v.Available == v.Desired && v.Current == v.Updated
	if !v.Done {
		v.Reason = RolloutReason(dep, pods, now)
	}
	return v
}

func statefulSetRollout(s *state.State, ss *objects.StatefulSet, now time.Time) RolloutView {
	v := RolloutView{Kind: KindStatefulSet, Namespace: ss.Metadata.Namespace, Name: ss.Metadata.Name,
		Strategy: "OnDelete", Desired: int(ss.Spec.Replicas)}
	if ss.Spec.UpdateStrategy.RollingUpdate != nil {
		v.Strategy, v.Partition = "RollingUpdate", ss.Spec.Partition()
	}
	inRange := func(p *state.Pod) bool {
		ord, err := strconv.Atoi(strings.TrimPrefix(p.Name, v.Name+"-"))
		return err == nil && ord < v.Desired
	}
	pods := slices.Collect(s.Pods.OfOwner(KindStatefulSet, v.Namespace, v.Name))
	v.count(pods, TemplateHash(ss.Spec.Template), time.Duration(ss.Spec.MinReadySeconds)*time.Second, now, inRange)
	// Every replica ready, none beyond; under RollingUpdate every one from
	// the partition up of the current template. OnDelete takes a template
	// only as pods are deleted by hand, so readiness is all it promises.
	v.Done = v.Ready == v.Desired && v.Current == v.Desired
	if v.Strategy == "RollingUpdate" {
		v.Done = v.Done && v.Updated >= v.Desired-v.Partition
	}
	return v
}

func daemonSetRollout(s *state.State, ds *objects.DaemonSet, now time.Time) RolloutView {
	v := RolloutView{Kind: KindDaemonSet, Namespace: ds.Metadata.Namespace, Name: ds.Metadata.Name, Strategy: "OnDelete"}
	if ds.Spec.UpdateStrategy.RollingUpdate != nil {
		v.Strategy = "RollingUpdate"
	}
	eligible := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(s.Nodes)) {
		if n := s.Nodes[name]; n.Ready && selects(ds.Spec.Template.Spec.NodeSelector, n.Labels) {
			eligible[name] = true
		}
	}
	v.Desired = len(eligible)
	pods := slices.Collect(s.Pods.OfOwner(KindDaemonSet, v.Namespace, v.Name))
	v.count(pods, TemplateHash(ds.Spec.Template), time.Duration(ds.Spec.MinReadySeconds)*time.Second, now,
		func(p *state.Pod) bool { return eligible[p.NodeName] })
	// kubectl's test: a pod of the current template available on every
	// node. A node that is not ready keeps its old pod; it does not count.
	v.Done = v.Updated == v.Desired && v.Available == v.Desired
	if v.Strategy == "OnDelete" {
		v.Done = v.Ready >= v.Desired
	}
	return v
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// HistoryEntry is one kept revision that changed an object: created it
// (Change "created"), changed its spec ("changed") or removed it
// ("deleted").
type HistoryEntry struct {
	Commit  string               `json:"commit"`
	Author  string               `json:"author"`
	Message string               `json:"message"`
	Time    time.Time            `json:"time"`
	Status  state.RevisionStatus `json:"status"`
	Change  string               `json:"change"`
	state.RevisionTiming
}

// History lists the kept revisions that changed the object, oldest
// first. Only revisions that were applied count: a rejected one never
// ran. With older revisions trimmed, the oldest kept one holding the
// object reads "created".
func History(s *state.State, id objects.ObjectID) []HistoryEntry {
	var out []HistoryEntry
	prev := "" // the object's digest in the last applied revision
	for _, r := range s.Revisions {
		if r.Status == state.RevisionRejected {
			continue
		}
		digest := digestOf(r, id)
		change := ""
		switch {
		case digest == prev:
		case prev == "":
			change = "created"
		case digest == "":
			change = "deleted"
		default:
			change = "changed"
		}
		prev = digest
		if change != "" {
			out = append(out, HistoryEntry{Commit: r.Commit, Author: r.Author, Message: r.Message, Time: r.Time, Status: r.Status,
				Change: change, RevisionTiming: r.RevisionTiming})
		}
	}
	return out
}

func digestOf(r state.Revision, id objects.ObjectID) string {
	for _, o := range r.Objects {
		if o.ID == id {
			return o.Digest
		}
	}
	return ""
}
