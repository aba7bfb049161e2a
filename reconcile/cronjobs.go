package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// maxMissed bounds the schedule times walked to find the latest missed
// one: a per-minute schedule over more than two months.
const maxMissed = 100_000

// CronJobs makes the Jobs of every CronJob of the applied revision, as
// Kubernetes' CronJob controller does: at each schedule time in the
// CronJob's timeZone, one Job run recorded in the state (named
// <cronjob>-<minutes since 1970>). Of the times missed since the last
// run (a leader change, suspend, Forbid), only the latest runs, and not
// if it is more than startingDeadlineSeconds late. A CronJob first seen
// runs at its next schedule time. concurrencyPolicy Forbid waits for the
// active run to end; Replace ends it. Finished runs beyond the history
// limits are removed, oldest first.
func CronJobs(s *state.State, d *Desired, now time.Time) []state.Command {
	var cmds []state.Command
	wanted := map[string]bool{}
	byCron := map[string][]*state.Job{}
	for _, j := range s.Jobs {
		if j.CronJob != "" {
			k := state.PodKey(j.Namespace, j.CronJob)
			byCron[k] = append(byCron[k], j)
		}
	}
	for _, cj := range d.CronJobs {
		key := state.PodKey(cj.Metadata.Namespace, cj.Metadata.Name)
		wanted[key] = true
		runs := byCron[key]
		sort.Slice(runs, func(i, j int) bool { return runs[i].ScheduledTime.Before(runs[j].ScheduledTime) })
		cmds = append(cmds, cronJob(s, cj, key, runs, now)...)
	}
	for _, key := range slices.Sorted(maps.Keys(byCron)) {
		if !wanted[key] {
			for _, j := range byCron[key] {
				cmds = append(cmds, state.NewCommand(state.CmdDeleteJob, state.JobRef{Key: j.Key()}))
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.CronSchedules)) {
		if !wanted[key] {
			cmds = append(cmds, state.NewCommand(state.CmdSetCronSchedule, state.CronSchedule{Key: key}))
		}
	}
	return cmds
}

func cronJob(s *state.State, cj *objects.CronJob, key string, runs []*state.Job, now time.Time) []state.Command {
	var cmds []state.Command
	spec := cj.Spec
	last, seen := s.CronSchedules[key]
	if !seen {
		return []state.Command{state.NewCommand(state.CmdSetCronSchedule, state.CronSchedule{Key: key, Time: now})}
	}
	var active, succeeded, failed []*state.Job
	for _, j := range runs {
		switch j.Status.Condition {
		case "":
			active = append(active, j)
		case state.JobComplete:
			succeeded = append(succeeded, j)
		default:
			failed = append(failed, j)
		}
	}
	for _, h := range []struct {
		runs  []*state.Job
		limit int32
	}{{succeeded, spec.SuccessfulJobsHistoryLimit}, {failed, spec.FailedJobsHistoryLimit}} {
		for _, j := range h.runs[:max(0, len(h.runs)-int(h.limit))] {
			cmds = append(cmds, state.NewCommand(state.CmdDeleteJob, state.JobRef{Key: j.Key()}))
		}
	}
	sched, err := CronSchedule(spec)
	if err != nil || spec.Suspend {
		return cmds // the loader refused bad schedules; a suspended one waits
	}
	due := latestDue(sched, last, now)
	if due.IsZero() {
		return cmds
	}
	if dl := spec.StartingDeadlineSeconds; dl != nil && now.Sub(due) > time.Duration(*dl)*time.Second {
		return cmds // too late: the next schedule time runs
	}
	switch spec.ConcurrencyPolicy {
	case "Forbid":
		if len(active) > 0 {
			return cmds // runs once the active one ends, if still in time
		}
	case "Replace":
		for _, j := range active {
			cmds = append(cmds, state.NewCommand(state.CmdDeleteJob, state.JobRef{Key: j.Key()}))
		}
	}
	name := fmt.Sprintf("%s-%d", cj.Metadata.Name, due.Unix()/60)
	if s.Jobs[state.PodKey(cj.Metadata.Namespace, name)] == nil {
		js := spec.JobTemplate.Spec
		cmds = append(cmds, state.NewCommand(state.CmdPutJob, state.Job{Namespace: cj.Metadata.Namespace, Name: name,
			CronJob: cj.Metadata.Name, ScheduledTime: due, Hash: JobHash(js), Spec: js, Status: state.JobStatus{Start: now}}))
	}
	return append(cmds, state.NewCommand(state.CmdSetCronSchedule, state.CronSchedule{Key: key, Time: due}))
}

// CronSchedule parses a CronJob's schedule in its time zone (the masters'
// local one when it names none, as Kubernetes' controller manager's).
func CronSchedule(spec objects.CronJobSpec) (cron.Schedule, error) {
	sched := spec.Schedule
	if spec.TimeZone != "" {
		sched = "CRON_TZ=" + spec.TimeZone + " " + sched
	}
	return cron.ParseStandard(sched)
}

// latestDue is the latest schedule time after last and at or before now,
// zero if there is none.
func latestDue(sched cron.Schedule, last, now time.Time) time.Time {
	var due time.Time
	for t, i := sched.Next(last), 0; !t.IsZero() && !t.After(now) && i < maxMissed; t, i = sched.Next(t), i+1 {
		due = t
	}
	return due
}
