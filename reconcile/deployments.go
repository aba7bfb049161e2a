package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Deployments returns the commands that move every Deployment's pods toward
// its template and replica count, as Kubernetes' Deployment controller does,
// with one set of pods per template hash standing in for a ReplicaSet:
//
//   - RollingUpdate: new pods are created while the total stays at most
//     replicas+maxSurge; old pods are stopped while at least
//     replicas-maxUnavailable pods stay available (ready for minReadySeconds).
//   - Recreate: all old pods stop before any new pod starts.
//   - Pods of Deployments no longer in the revision are stopped.
//   - Pods on a node being drained are replaced as pods of an older
//     template are, within the same bounds.
//
// A stopped pod is marked Terminating for its agent; a pod that no agent
// will ever stop (unbound, or on a node that is not ready) is deleted.
func Deployments(s *state.State, d *Desired, now time.Time) []state.Command {
	var cmds []state.Command
	owned := map[string][]*state.Pod{} // namespace/deployment -> pods
	for p := range s.Pods.All() {
		if p.OwnerKind == "" && p.Deployment != "" {
			k := p.Namespace + "/" + p.Deployment
			owned[k] = append(owned[k], p)
		}
	}
	wanted := map[string]bool{}
	planned := map[string]bool{} // keys of the pods this pass creates
	for _, dep := range d.Deployments {
		k := dep.Metadata.Namespace + "/" + dep.Metadata.Name
		wanted[k] = true
		cmds = append(cmds, rollout(s, dep, sortedPods(owned[k]), planned, now)...)
	}
	for k, pods := range owned {
		if !wanted[k] {
			for _, p := range pods {
				cmds = append(cmds, stop(s, p)...)
			}
		}
	}
	return cmds
}

func rollout(s *state.State, dep *objects.Deployment, pods []*state.Pod, planned map[string]bool, now time.Time) []state.Command {
	hash := TemplateHash(dep.Spec.Template)
	replicas := int(dep.Spec.Replicas)
	var live, current, old []*state.Pod
	for _, p := range pods {
		if p.Terminating {
			continue
		}
		live = append(live, p)
		if p.TemplateHash == hash && !draining(s, p) {
			current = append(current, p)
		} else {
			old = append(old, p)
		}
	}
	minReady := time.Duration(dep.Spec.MinReadySeconds) * time.Second
	available := func(p *state.Pod) bool {
		return p.Status.Ready && !p.Status.ReadySince.IsZero() && now.Sub(p.Status.ReadySince) >= minReady
	}
	var cmds []state.Command
	terminate := func(p *state.Pod) { cmds = append(cmds, stop(s, p)...) }

	if dep.Spec.Paused {
		return pausedScale(s, dep, live, replicas, planned, now)
	}
	if dep.Spec.Strategy.Type == "Recreate" {
		for _, p := range old {
			terminate(p)
		}
		if len(old) > 0 || terminatingOf(pods) > 0 {
			return cmds // new pods wait until every old one is gone
		}
		return append(cmds, scale(s, dep, hash, current, replicas, planned, now)...)
	}

	surge, unavailable := rollingBounds(dep, replicas)
	if len(old) == 0 {
		return append(cmds, scale(s, dep, hash, current, replicas, planned, now)...)
	}
	// Create new pods within the surge budget.
	if room := min(replicas+surge-len(live), replicas-len(current)); room > 0 {
		cmds = append(cmds, create(s, dep.Metadata, templateOf(dep, hash), room, planned, now)...)
	}
	// Old pods that are not available cost nothing to stop; available ones
	// only while enough stay available.
	availableNow := 0
	for _, p := range live {
		if available(p) {
			availableNow++
		}
	}
	canStop := availableNow - (replicas - unavailable)
	for _, p := range old {
		if !available(p) {
			terminate(p)
		}
	}
	for i := len(old) - 1; i >= 0 && canStop > 0; i-- {
		if available(old[i]) {
			terminate(old[i])
			canStop--
		}
	}
	return cmds
}

// draining says whether the pod's node is being drained (berth drain).
func draining(s *state.State, p *state.Pod) bool {
	n := s.Nodes[p.NodeName]
	return n != nil && n.Draining
}

func terminatingOf(pods []*state.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Terminating {
			n++
		}
	}
	return n
}

// rollingBounds resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against replicas, as Kubernetes does; both zero becomes one
// unavailable so a rollout can progress.
func rollingBounds(dep *objects.Deployment, replicas int) (surge, unavailable int) {
	ru := dep.Spec.Strategy.RollingUpdate
	if ru == nil {
		ru = &objects.RollingUpdateDeployment{
			MaxSurge:       objects.IntOrString{IsString: true, Str: "25%"},
			MaxUnavailable: objects.IntOrString{IsString: true, Str: "25%"},
		}
	}
	surge = resolve(ru.MaxSurge, replicas, true)
	unavailable = resolve(ru.MaxUnavailable, replicas, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

func resolve(v objects.IntOrString, total int, roundUp bool) int {
	if !v.IsString {
		return int(v.Int)
	}
	pct, _ := strconv.Atoi(strings.TrimSuffix(v.Str, "%"))
	f := float64(pct) * float64(total) / 100
	if roundUp {
		return int(math.Ceil(f))
	}
	return int(math.Floor(f))
}

// scale brings the pods of the current template to exactly replicas,
// stopping the least settled (not ready, then newest) first.
func scale(s *state.State, dep *objects.Deployment, hash string, current []*state.Pod, replicas int, planned map[string]bool, now time.Time) []state.Command {
	if n := replicas - len(current); n > 0 {
		return create(s, dep.Metadata, templateOf(dep, hash), n, planned, now)
	}
	return shrink(s, current, len(current)-replicas)
}

// shrink stops extra of pods, the least settled (not ready, then newest)
// first.
func shrink(s *state.State, pods []*state.Pod, extra int) []state.Command {
	var cmds []state.Command
	for _, ready := range []bool{false, true} {
		for i := len(pods) - 1; i >= 0 && extra > 0; i-- {
			if pods[i].Status.Ready == ready {
				cmds = append(cmds, stop(s, pods[i])...)
				extra--
			}
		}
	}
	return cmds
}

// pausedScale holds a paused Deployment's rollout, as Kubernetes does: no
// pod of a new template, none replaced, but the pods are scaled to
// replicas, new ones copying the newest pod's template. A Deployment
// paused before it had any pod gets none.
func pausedScale(s *state.State, dep *objects.Deployment, live []*state.Pod, replicas int, planned map[string]bool, now time.Time) []state.Command {
	if len(live) == 0 {
		return nil
	}
	if n := replicas - len(live); n > 0 {
		newest := live[0]
		for _, p := range live {
			if p.Created.After(newest.Created) {
				newest = p
			}
		}
		return create(s, dep.Metadata, podTemplate{Prefix: dep.Metadata.Name + "-" + newest.TemplateHash, Hash: newest.TemplateHash, Labels: newest.Labels, Annotations: newest.Annotations, Spec: newest.Spec}, n, planned, now)
	}
	return shrink(s, live, len(live)-replicas)
}

// suffixAlphabet is Kubernetes' for generated names: no vowels (no words)
// and none of 0, 1, 3 (no look-alikes).
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// create makes n pods of the template. Names are <prefix>-<id>,
// with a 5-character id (27^5, about 14 million) derived from the Raft index
// and a counter, so the leader's choice is stable for a given state. A name
// already in the state (perhaps a pod still being removed) or planned
// earlier in this pass is skipped for the next counter value, so every
// name in a batch is new by construction, however large the Deployment.
func create(s *state.State, dep objects.ObjectMeta, t podTemplate, n int, planned map[string]bool, now time.Time) []state.Command {
	var cmds []state.Command
	for i := 0; len(cmds) < n; i++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d/%d", dep.Namespace, t.Hash, s.Index, i))
		v := binary.BigEndian.Uint64(sum[:8])
		id := make([]byte, 5)
		for j := range id {
			id[j] = suffixAlphabet[v%uint64(len(suffixAlphabet))]
			v /= uint64(len(suffixAlphabet))
		}
		name := t.Prefix + "-" + string(id)
		key := state.PodKey(dep.Namespace, name)
		if s.Pods.Get(key) != nil || planned[key] {
			continue
		}
		planned[key] = true
		cmds = append(cmds, createPod(dep, t, name, now))
	}
	return cmds
}

// createPod makes the pod name of the template.
func createPod(owner objects.ObjectMeta, t podTemplate, name string, now time.Time) state.Command {
	return state.NewCommand(state.CmdCreatePod, state.Pod{
		Namespace: owner.Namespace, Name: name,
		OwnerKind: t.Kind, Deployment: owner.Name, TemplateHash: t.Hash,
		Labels: t.Labels, Annotations: t.Annotations, Spec: t.Spec, NodeName: t.Node,
		Created: now, Status: state.PodStatus{Phase: state.PodPending, Reason: "Scheduling"},
	})
}

// podTemplate is what an owner's pods of one template hash share.
type podTemplate struct {
	Kind        string // the owner's, "" for a Deployment
	Prefix      string // of the pods' names: <deployment>-<hash>, <job>
	Node        string // bound at creation (a DaemonSet's), or "" for the scheduler
	Hash        string
	Labels      map[string]string
	Annotations map[string]string
	Spec        objects.PodSpec
}

// templateOf is the Deployment's template, labelled with its hash.
func templateOf(dep *objects.Deployment, hash string) podTemplate {
	t := podTemplate{Prefix: dep.Metadata.Name + "-" + hash, Hash: hash, Labels: map[string]string{"pod-template-hash": hash}, Spec: dep.Spec.Template.Spec}
	if m := dep.Spec.Template.Metadata; m != nil {
		maps.Copy(t.Labels, m.Labels)
		t.Labels["pod-template-hash"] = hash
		t.Annotations = m.Annotations
	}
	return t
}

// stop asks the pod's agent to stop it, or deletes it outright when no
// agent will: unbound pods and pods on nodes that are not ready.
func stop(s *state.State, p *state.Pod) []state.Command {
	ref := state.PodRef{Key: p.Key()}
	if n, ok := s.Nodes[p.NodeName]; !ok || !n.Ready {
		return []state.Command{state.NewCommand(state.CmdDeletePod, ref)}
	}
	if p.Terminating {
		return nil
	}
	return []state.Command{state.NewCommand(state.CmdTerminatePod, ref)}
}

// Kubernetes' reasons of a Deployment's Progressing condition.
const (
	ProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	DeploymentPaused         = "DeploymentPaused"
)

// DefaultProgressDeadline is Kubernetes' progressDeadlineSeconds.
const DefaultProgressDeadline = 600 * time.Second

// RolloutReason is Kubernetes' reason for a rollout that has made no
// progress for the Deployment's progressDeadlineSeconds:
// ProgressDeadlineExceeded, DeploymentPaused, or "" while it progresses or
// is complete.
// Progress is a pod of the current template created or becoming ready; a
// rollout is complete when replicas pods of it are ready and no other
// pods remain.
func RolloutReason(dep *objects.Deployment, pods []*state.Pod, now time.Time) string {
	if dep.Spec.Paused {
		return DeploymentPaused // no deadline while paused, as in Kubernetes
	}
	hash := TemplateHash(dep.Spec.Template)
	ready, others := 0, 0
	var last time.Time
	for _, p := range pods {
		if p.TemplateHash != hash {
			others++
			continue
		}
		if p.Terminating {
			continue
		}
		if p.Status.Ready {
			ready++
		}
		last = maxTime(last, p.Created, p.Status.ReadySince)
	}
	if ready >= int(dep.Spec.Replicas) && others == 0 {
		return ""
	}
	deadline := DefaultProgressDeadline
	if d := dep.Spec.ProgressDeadlineSeconds; d != nil {
		deadline = time.Duration(*d) * time.Second
	}
	if !last.IsZero() && now.Sub(last) > deadline {
		return ProgressDeadlineExceeded
	}
	return ""
}

func maxTime(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
