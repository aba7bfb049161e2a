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

// KindStatefulSet is the OwnerKind of a StatefulSet's pods.
const KindStatefulSet = "StatefulSet"

// StatefulSets keeps each StatefulSet's pods <name>-0 ... <name>-(replicas-1),
// as Kubernetes' StatefulSet controller does. A pod is named by its
// ordinal, is its own hostname under the subdomain serviceName, and mounts
// the claims of its ordinal. A pod replaced keeps its name: the new one is
// created once the old one is gone.
//
//   - OrderedReady: pods are created one at a time in ordinal order, each
//     available (ready for minReadySeconds) before the next, and stopped
//     one at a time from the highest ordinal, while all below are
//     available. Parallel: all at once, without waiting.
//   - RollingUpdate: once every pod is available, the highest ordinal at
//     or above partition still of an older template is stopped (and then
//     created anew); one at a time. Pods below partition keep their
//     template, even when created again (copied from another pod below
//     partition; with none left, the new one: berth keeps no history).
//     OnDelete: a pod takes the new
//     template only when it is deleted.
//   - A pod on a node being drained is stopped, to start again elsewhere
//     (or, pinned by its claim, once its node is uncordoned).
func StatefulSets(s *state.State, d *Desired, now time.Time) []state.Command {
	var cmds []state.Command
	wanted := map[string]bool{}
	for _, ss := range d.StatefulSets {
		wanted[state.PodKey(ss.Metadata.Namespace, ss.Metadata.Name)] = true
		cmds = append(cmds, statefulSet(s, ss, now)...)
	}
	for p := range s.Pods.All() {
		if p.OwnerKind == KindStatefulSet && !wanted[state.PodKey(p.Namespace, p.Deployment)] {
			cmds = append(cmds, stop(s, p)...)
		}
	}
	return cmds
}

func statefulSet(s *state.State, ss *objects.StatefulSet, now time.Time) []state.Command {
	var cmds []state.Command
	meta, spec := ss.Metadata, &ss.Spec
	hash := TemplateHash(spec.Template)
	replicas := int(spec.Replicas)
	parallel := spec.PodManagementPolicy == "Parallel"
	minReady := time.Duration(spec.MinReadySeconds) * time.Second
	available := func(p *state.Pod) bool {
		return p != nil && !p.Terminating && p.Status.Ready && !p.Status.ReadySince.IsZero() && now.Sub(p.Status.ReadySince) >= minReady
	}
	pods := map[int]*state.Pod{}
	// The lowest pod of another template: pods below partition are created
	// again from it.
	var older *state.Pod
	olderOrd := 0
	for p := range s.Pods.OfOwner(KindStatefulSet, meta.Namespace, meta.Name) {
		ord, err := strconv.Atoi(strings.TrimPrefix(p.Name, meta.Name+"-"))
		if err != nil || ord < 0 || p.Name != podName(meta.Name, ord) {
			cmds = append(cmds, stop(s, p)...) // not a name of this StatefulSet's
			continue
		}
		if draining(s, p) && !p.Terminating {
			cmds = append(cmds, stop(s, p)...)
			c := *p
			c.Terminating = true
			p = &c
		}
		pods[ord] = p
		if p.TemplateHash != hash && (older == nil || ord < olderOrd) {
			older, olderOrd = p, ord
		}
	}
	partition := -1 // RollingUpdate's; OnDelete leaves every pod
	if spec.UpdateStrategy.RollingUpdate != nil {
		partition = spec.Partition()
	}
	// Scale up, in ordinal order.
	for ord := range replicas {
		p := pods[ord]
		if p == nil {
			t := statefulTemplate(ss, hash, spec.Template.Metadata, spec.Template.Spec)
			if ord < partition && older != nil {
				t = statefulTemplate(ss, older.TemplateHash, &objects.TemplateMeta{Labels: older.Labels, Annotations: older.Annotations}, older.Spec)
			}
			cmds = append(cmds, createPod(meta, t.forOrdinal(ss, ord), podName(meta.Name, ord), now))
		}
		if !parallel && !available(p) {
			return cmds
		}
	}
	// Scale down, from the highest ordinal.
	condemned := slices.Sorted(maps.Keys(pods))
	slices.Reverse(condemned)
	for _, ord := range condemned {
		p := pods[ord]
		if ord < replicas {
			break
		}
		if !parallel && p.Terminating {
			return cmds
		}
		cmds = append(cmds, stop(s, p)...)
		if !parallel {
			return cmds
		}
	}
	if partition < 0 || len(pods) != replicas {
		return cmds
	}
	// Roll, from the highest ordinal, once every pod is available.
	for ord := range replicas {
		if !available(pods[ord]) {
			return cmds
		}
	}
	for ord := replicas - 1; ord >= partition; ord-- {
		if p := pods[ord]; p.TemplateHash != hash {
			return append(cmds, stop(s, p)...)
		}
	}
	return cmds
}

func podName(statefulSet string, ordinal int) string {
	return statefulSet + "-" + strconv.Itoa(ordinal)
}

// statefulTemplate is a template of the StatefulSet's pods, labelled with
// its hash.
func statefulTemplate(ss *objects.StatefulSet, hash string, m *objects.TemplateMeta, spec objects.PodSpec) podTemplate {
	t := podTemplate{Kind: KindStatefulSet, Hash: hash, Labels: map[string]string{}, Spec: spec}
	if m != nil {
		maps.Copy(t.Labels, m.Labels)
		t.Annotations = m.Annotations
	}
	t.Labels["controller-revision-hash"] = hash
	return t
}

// forOrdinal is the template as the pod of ordinal ord has it: its name
// as hostname and label, serviceName as subdomain, the claims of its
// ordinal as the volumes named after the claim templates.
func (t podTemplate) forOrdinal(ss *objects.StatefulSet, ord int) podTemplate {
	name := podName(ss.Metadata.Name, ord)
	t.Labels = maps.Clone(t.Labels)
	t.Labels["statefulset.kubernetes.io/pod-name"] = name
	t.Labels["apps.kubernetes.io/pod-index"] = strconv.Itoa(ord)
	t.Spec.Hostname, t.Spec.Subdomain = name, ss.Spec.ServiceName
	var volumes []objects.Volume
	templates := map[string]bool{}
	for i := range ss.Spec.VolumeClaimTemplates {
		ct := &ss.Spec.VolumeClaimTemplates[i]
		templates[ct.Metadata.Name] = true
		volumes = append(volumes, objects.Volume{Name: ct.Metadata.Name, PersistentVolumeClaim: &objects.ClaimVolumeSource{ClaimName: ct.ClaimName(ss.Metadata.Name, ord)}})
	}
	for _, v := range t.Spec.Volumes {
		if !templates[v.Name] { // another ordinal's claim, when copied from its pod
			volumes = append(volumes, v)
		}
	}
	t.Spec.Volumes = volumes
	return t
}
