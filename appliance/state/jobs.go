package state

import (
	"time"

	"github.com/berth/berth/schemas/objects"
)

// Job is one run of a batch/v1 Job: a Job of the applied revision, or one
// a CronJob made (those exist only here, as Kubernetes keeps them).
type Job struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// CronJob names the CronJob that made it, "" for a Job from git.
	CronJob string `json:"cronJob,omitempty"`
	// ScheduledTime is the CronJob's schedule time it runs for.
	ScheduledTime time.Time `json:"scheduledTime,omitzero"`
	// Hash identifies Spec: a Job from git whose spec changes starts over.
	Hash   string          `json:"hash"`
	Spec   objects.JobSpec `json:"spec"`
	Status JobStatus       `json:"status"`
}

// Key returns the job's key in State.Jobs (namespace/name).
func (j *Job) Key() string { return PodKey(j.Namespace, j.Name) }

// Job conditions, as Kubernetes names them.
const (
	JobComplete = "Complete"
	JobFailed   = "Failed"
)

// JobStatus is what the Job controller last recorded of a run.
type JobStatus struct {
	Start time.Time `json:"start"`
	// Succeeded counts pods that succeeded; Failed counts pods that failed
	// and, under restartPolicy OnFailure, container restarts, which are
	// both what backoffLimit bounds.
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// LastFailure is when Failed last grew: the back-off counts from it.
	LastFailure time.Time `json:"lastFailure,omitzero"`
	// Condition is "" while the Job runs, JobComplete or JobFailed after.
	Condition string    `json:"condition,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Finished  time.Time `json:"finished,omitzero"`
	// Cleaned: ttlSecondsAfterFinished passed and the pods were removed.
	Cleaned bool `json:"cleaned,omitempty"`
}

// Done reports whether the run is over.
func (s JobStatus) Done() bool { return s.Condition != "" }

// JobRef names a Job by its key.
type JobRef struct {
	Key string `json:"key"`
}

// CronSchedule is the last schedule time a CronJob ran for (or, for a new
// CronJob, the time it was first seen: no run before it is due).
type CronSchedule struct {
	Key  string    `json:"key"`
	Time time.Time `json:"time"`
}
