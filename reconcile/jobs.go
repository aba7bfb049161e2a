package reconcile

import (
	"maps"
	"slices"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// KindJob is the OwnerKind of a Job's pods.
const KindJob = "Job"

// Kubernetes' Job back-off: a new pod after a failed one waits 10 s,
// doubling with each failure, at most 6 min.
const (
	jobBackoffBase = 10 * time.Second
	jobBackoffMax  = 6 * time.Minute
)

// jobBackoff is how long after its last failure a Job with failed failed
// pods waits before it starts another.
func jobBackoff(failed int) time.Duration {
	d := jobBackoffBase
	for i := 1; i < failed && d < jobBackoffMax; i++ {
		d *= 2
	}
	return min(d, jobBackoffMax)
}

// Jobs runs every Job as Kubernetes' Job controller does: the Jobs of the
// applied revision and those CronJobs made. Each run is a record in the
// state (state.Job) with the hash of its spec: a Job whose spec changes in
// git starts over as a new run, its old pods stopped, since a Job's
// template cannot change in Kubernetes and what a new spec asks for is a
// new run (as `kubectl replace --force` gives). A run keeps parallelism
// pods going until completions have succeeded, or fails once more than
// backoffLimit pods have failed (counting restarts under OnFailure) or
// activeDeadlineSeconds has passed; a pod after a failure waits out the
// back-off. A finished run's pods stay until ttlSecondsAfterFinished.
func Jobs(s *state.State, d *Desired, now time.Time) []state.Command {
	var cmds []state.Command
	runs := map[string]*state.Job{}
	for _, j := range s.Jobs {
		if j.CronJob != "" { // the CronJob controller ends those
			runs[j.Key()] = j
		}
	}
	for _, j := range d.Jobs {
		key := state.PodKey(j.Metadata.Namespace, j.Metadata.Name)
		hash := JobHash(j.Spec)
		run := s.Jobs[key]
		if run == nil || run.CronJob != "" || run.Hash != hash {
			run = &state.Job{Namespace: j.Metadata.Namespace, Name: j.Metadata.Name, Hash: hash, Spec: j.Spec, Status: state.JobStatus{Start: now}}
			cmds = append(cmds, state.NewCommand(state.CmdPutJob, run))
		}
		runs[key] = run
	}
	for _, key := range slices.Sorted(maps.Keys(s.Jobs)) {
		if runs[key] == nil {
			cmds = append(cmds, state.NewCommand(state.CmdDeleteJob, state.JobRef{Key: key}))
		}
	}
	planned := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(runs)) {
		cmds = append(cmds, runJob(s, runs[key], planned, now)...)
	}
	// Pods of runs that are gone or replaced.
	for p := range s.Pods.All() {
		if run := runs[state.PodKey(p.Namespace, p.Deployment)]; p.OwnerKind == KindJob && (run == nil || run.Hash != p.TemplateHash) {
			cmds = append(cmds, stop(s, p)...)
		}
	}
	return cmds
}

func runJob(s *state.State, run *state.Job, planned map[string]bool, now time.Time) []state.Command {
	var cmds []state.Command
	var pods, active []*state.Pod
	for p := range s.Pods.OfOwner(KindJob, run.Namespace, run.Name) {
		if p.TemplateHash == run.Hash {
			pods = append(pods, p)
			if !p.Finished() && !p.Terminating {
				active = append(active, p)
			}
		}
	}
	spec := run.Spec
	st := run.Status
	if st.Cleaned {
		return nil
	}
	if st.Done() {
		for _, p := range active {
			cmds = append(cmds, stop(s, p)...)
		}
		if ttl := spec.TTLSecondsAfterFinished; ttl != nil && !now.Before(st.Finished.Add(time.Duration(*ttl)*time.Second)) {
			for _, p := range pods {
				cmds = append(cmds, stop(s, p)...)
			}
			if run.CronJob != "" {
				return append(cmds, state.NewCommand(state.CmdDeleteJob, state.JobRef{Key: run.Key()}))
			}
			// A Job from git stays recorded, so that it does not run again.
			st.Cleaned = true
			cmds = append(cmds, putStatus(run, st))
		}
		return cmds
	}

	succeeded, failed, restarts := 0, 0, 0
	for _, p := range pods {
		switch p.Status.Phase {
		case state.PodSucceeded:
			succeeded++
		case state.PodFailed:
			failed++
		default:
			if spec.Template.Spec.RestartPolicy == "OnFailure" {
				restarts += p.Status.Restarts
			}
		}
	}
	// Counts never go down: a finished pod lost with its node still ran.
	succeeded, failed = max(succeeded, st.Succeeded), max(failed, st.Failed)
	if failed > st.Failed {
		st.LastFailure = now
	}
	st.Succeeded, st.Failed = succeeded, failed
	deadline := spec.ActiveDeadlineSeconds
	switch {
	case succeeded >= int(spec.Completions):
		st.Condition, st.Finished = state.JobComplete, now
	case failed+restarts > int(spec.BackoffLimit):
		st.Condition, st.Reason, st.Finished = state.JobFailed, "BackoffLimitExceeded", now
	case deadline != nil && now.Sub(st.Start) >= time.Duration(*deadline)*time.Second:
		st.Condition, st.Reason, st.Finished = state.JobFailed, "DeadlineExceeded", now
	}
	if st != run.Status {
		cmds = append(cmds, putStatus(run, st))
	}
	if st.Done() {
		for _, p := range active {
			cmds = append(cmds, stop(s, p)...)
		}
		return cmds
	}
	// A drained node's pods stop and start again elsewhere.
	running := 0
	for _, p := range active {
		if draining(s, p) {
			cmds = append(cmds, stop(s, p)...)
		} else {
			running++
		}
	}
	want := min(int(spec.Parallelism), int(spec.Completions)-succeeded) - running
	if want <= 0 || failed > 0 && now.Before(st.LastFailure.Add(jobBackoff(failed))) {
		return cmds
	}
	return append(cmds, create(s, objects.ObjectMeta{Namespace: run.Namespace, Name: run.Name}, jobTemplate(run), want, planned, now)...)
}

func putStatus(run *state.Job, st state.JobStatus) state.Command {
	next := *run
	next.Status = st
	return state.NewCommand(state.CmdPutJob, next)
}

// jobTemplate is a run's pod template, labelled with its Job's name as
// Kubernetes labels a Job's pods.
func jobTemplate(run *state.Job) podTemplate {
	t := podTemplate{Kind: KindJob, Prefix: run.Name, Hash: run.Hash, Spec: run.Spec.Template.Spec,
		Labels: map[string]string{}}
	if m := run.Spec.Template.Metadata; m != nil {
		maps.Copy(t.Labels, m.Labels)
		t.Annotations = m.Annotations
	}
	t.Labels["job-name"] = run.Name
	t.Labels["batch.kubernetes.io/job-name"] = run.Name
	return t
}
