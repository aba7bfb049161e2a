package reconcile

import (
	"fmt"
	"strings"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// workloadKinds are the kinds whose rollouts a revision's convergence
// waits for. Jobs are not among them: a Job runs to its end, which may
// be hours or a failure, and that says nothing of whether the revision
// rolled out.
var workloadKinds = map[string]bool{"Deployment": true, KindStatefulSet: true, KindDaemonSet: true}

// Convergence settles the applied revision once the rollouts it started
// are over: Converged at now when every workload it created or changed
// has completed its rollout and every one it removed has no pod left;
// ProgressDeadlineExceeded as soon as one of its Deployments' rollouts
// has. A revision replaced first is settled Superseded by the FSM itself
// when the newer one is applied. A revision that changed no workload
// converges at once.
func Convergence(s *state.State, d *Desired, now time.Time) []state.Command {
	rev := s.Current()
	if rev == nil || rev.Outcome != "" {
		return nil
	}
	changed := changedWorkloads(s)
	settle := func(outcome state.RevisionOutcome, detail string) []state.Command {
		return []state.Command{state.NewCommand(state.CmdMarkRevision, state.RevisionMark{Commit: rev.Commit, Outcome: outcome, Settled: now, Detail: detail})}
	}
	waiting := false
	for _, v := range Rollouts(s, d, now) {
		if changed != nil && !changed[v.ID()] {
			continue
		}
		delete(changed, v.ID())
		if v.Reason == ProgressDeadlineExceeded {
			return settle(state.OutcomeDeadlineExceeded, fmt.Sprintf("%s %s/%s", strings.ToLower(v.Kind), v.Namespace, v.Name))
		}
		waiting = waiting || !v.Done
	}
	// What is left of changed was removed: converged once its pods are.
	for id := range changed {
		kind := id.Kind
		if kind == "Deployment" {
			kind = "" // the OwnerKind of a Deployment's pods
		}
		for range s.Pods.OfOwner(kind, id.Namespace, id.Name) {
			waiting = true
			break
		}
	}
	if waiting {
		return nil
	}
	return settle(state.OutcomeConverged, "")
}

// changedWorkloads are the workloads the applied revision created,
// changed or removed against the revision applied before it; nil when
// there is none kept: all of the applied one's count then.
func changedWorkloads(s *state.State) map[objects.ObjectID]bool {
	cur := len(s.Revisions) - 1
	for cur >= 0 && s.Revisions[cur].Status != state.RevisionApplied {
		cur--
	}
	prev := cur - 1
	for prev >= 0 && s.Revisions[prev].Status == state.RevisionRejected {
		prev--
	}
	if prev < 0 {
		return nil // the first revision, or the one before is trimmed
	}
	digests := func(r state.Revision) map[objects.ObjectID]string {
		m := map[objects.ObjectID]string{}
		for _, o := range r.Objects {
			if workloadKinds[o.ID.Kind] {
				m[o.ID] = o.Digest
			}
		}
		return m
	}
	before, after := digests(s.Revisions[prev]), digests(s.Revisions[cur])
	out := map[objects.ObjectID]bool{}
	for id, d := range after {
		if before[id] != d {
			out[id] = true
		}
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			out[id] = true
		}
	}
	return out
}
