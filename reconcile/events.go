package reconcile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Component is the event source of a controller of the loop, named as
// Kubernetes names its own (default-scheduler, deployment-controller).
func Component(controller string) string {
	if controller == "scheduler" {
		return "default-scheduler"
	}
	return strings.TrimSuffix(controller, "s") + "-controller"
}

// Events are the events of a controller's batch: what its commands do to
// the state s they were planned from, said as Kubernetes' controllers say
// it. They are read off the commands rather than recorded by each
// controller, so that every change a controller makes is told the same
// way and none is told that did not commit (the loop records them in the
// same batch). Controllers propose a command only when something changes,
// so a pod that stays unschedulable is told once per reason, not at every
// pass. d is the revision for controllers that read it, else nil.
func Events(s *state.State, d *Desired, component string, cmds []state.Command, now time.Time) []state.Event {
	src := state.EventSource{Component: component}
	var out []state.Event
	add := func(typ, reason string, obj state.ObjectRef, format string, args ...any) {
		out = append(out, state.NewEvent(typ, reason, obj, src, now, format, args...))
	}
	type replicaSet struct{ namespace, deployment, hash string }
	scaled := map[replicaSet]int{} // pods created (+) and stopped (-) per template
	for _, c := range cmds {
		switch c.Type {
		case state.CmdCreatePod:
			var p state.Pod
			if json.Unmarshal(c.Payload, &p) != nil {
				continue
			}
			if p.OwnerKind == "" {
				scaled[replicaSet{p.Namespace, p.Deployment, p.TemplateHash}]++
			} else {
				add(state.EventNormal, "SuccessfulCreate", state.ObjectRef{Kind: p.OwnerKind, Namespace: p.Namespace, Name: p.Deployment}, "Created pod: %s", p.Name)
			}
		case state.CmdBindPod:
			var b state.PodBinding
			if json.Unmarshal(c.Payload, &b) == nil {
				add(state.EventNormal, "Scheduled", podRef(b.Key), "Successfully assigned %s to %s", b.Key, b.NodeName)
			}
		case state.CmdSetPodStatus:
			var u state.PodStatusUpdate
			if json.Unmarshal(c.Payload, &u) != nil {
				continue
			}
			switch u.Status.Reason {
			case "Unschedulable":
				add(state.EventWarning, "FailedScheduling", podRef(u.Key), "%s", u.Status.Message)
			case "NodeLost":
				add(state.EventWarning, "NodeLost", podRef(u.Key), "%s", u.Status.Message)
			}
		case state.CmdPutJob:
			var j state.Job
			if json.Unmarshal(c.Payload, &j) != nil {
				continue
			}
			old := s.Jobs[j.Key()]
			switch {
			case old == nil && j.CronJob != "":
				add(state.EventNormal, "SuccessfulCreate", state.ObjectRef{Kind: "CronJob", Namespace: j.Namespace, Name: j.CronJob}, "Created job %s", j.Name)
			case (old == nil || !old.Status.Done()) && j.Status.Condition == state.JobComplete:
				add(state.EventNormal, "Completed", state.ObjectRef{Kind: KindJob, Namespace: j.Namespace, Name: j.Name}, "Job completed")
			case (old == nil || !old.Status.Done()) && j.Status.Condition == state.JobFailed:
				reason := cmp.Or(j.Status.Reason, "Failed")
				add(state.EventWarning, reason, state.ObjectRef{Kind: KindJob, Namespace: j.Namespace, Name: j.Name}, "Job has reached its limit: %s", reason)
			}
		case state.CmdSetNodeReady:
			var r state.NodeReady
			if json.Unmarshal(c.Payload, &r) == nil && !r.Ready {
				add(state.EventWarning, "NodeNotReady", state.ObjectRef{Kind: "Node", Name: r.Name}, "Node %s status is now: NodeNotReady (%s)", r.Name, r.Reason)
			}
		case state.CmdTerminatePod, state.CmdDeletePod:
			var r state.PodRef
			if json.Unmarshal(c.Payload, &r) != nil {
				continue
			}
			p := s.Pods.Get(r.Key)
			if p == nil || p.Terminating || p.Finished() {
				continue // told when it was stopped, or it had ended
			}
			if p.OwnerKind == "" && p.Deployment != "" {
				scaled[replicaSet{p.Namespace, p.Deployment, p.TemplateHash}]--
			}
			if n := s.Nodes[p.NodeName]; component == Component("nodes") && n != nil {
				add(state.EventWarning, "Evicted", podRef(r.Key), "Node %s has been NotReady since %s (%s): deleting the pod so that its owner replaces it",
					n.Name, n.Transition.UTC().Format(time.RFC3339), n.Reason)
				continue
			}
			add(state.EventNormal, "Killing", podRef(r.Key), "Stopping pod: %s", whyStopped(s, d, p))
		}
	}
	// One ScalingReplicaSet per template hash, as the Deployment
	// controller tells each step of a rollout.
	for _, rs := range slices.SortedFunc(maps.Keys(scaled), func(a, b replicaSet) int {
		return strings.Compare(a.namespace+"/"+a.deployment+"/"+a.hash, b.namespace+"/"+b.deployment+"/"+b.hash)
	}) {
		delta := scaled[rs]
		if delta == 0 {
			continue
		}
		live := 0
		for p := range s.Pods.OfDeployment(rs.namespace, rs.deployment) {
			if p.OwnerKind == "" && p.TemplateHash == rs.hash && !p.Terminating {
				live++
			}
		}
		dir := "up"
		if delta < 0 {
			dir = "down"
		}
		add(state.EventNormal, "ScalingReplicaSet", state.ObjectRef{Kind: "Deployment", Namespace: rs.namespace, Name: rs.deployment},
			"Scaled %s replica set %s-%s to %d", dir, rs.deployment, rs.hash, live+delta)
	}
	return out
}

func podRef(key string) state.ObjectRef {
	ns, name, _ := strings.Cut(key, "/")
	return state.ObjectRef{Kind: "Pod", Namespace: ns, Name: name}
}

// whyStopped says why a controller stops pod p.
func whyStopped(s *state.State, d *Desired, p *state.Pod) string {
	owner := p.OwnerKind
	if owner == "" {
		owner = "Deployment"
	}
	if n := s.Nodes[p.NodeName]; n != nil && n.Draining {
		return fmt.Sprintf("node %s is being drained", n.Name)
	}
	if d == nil || owner != "Deployment" {
		return fmt.Sprintf("stopped by its %s %s", owner, p.Deployment)
	}
	i := slices.IndexFunc(d.Deployments, func(dep *objects.Deployment) bool {
		return dep.Metadata.Namespace == p.Namespace && dep.Metadata.Name == p.Deployment
	})
	switch {
	case i < 0:
		return fmt.Sprintf("Deployment %s is no longer in the applied revision", p.Deployment)
	case TemplateHash(d.Deployments[i].Spec.Template) != p.TemplateHash:
		return fmt.Sprintf("replaced by the rollout of Deployment %s", p.Deployment)
	}
	return fmt.Sprintf("Deployment %s scaled down to %d replicas", p.Deployment, d.Deployments[i].Spec.Replicas)
}

// recordEvents is the commands recording events, in batches the FSM takes.
func recordEvents(events []state.Event) []state.Command {
	var out []state.Command
	for batch := range slices.Chunk(events, state.MaxEventBatch) {
		out = append(out, state.RecordEvents(batch...))
	}
	return out
}
