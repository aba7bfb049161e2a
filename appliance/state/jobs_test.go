package state

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// Jobs and CronJob schedules go through Apply and the snapshot; the owner
// index tells a Job's pods from a Deployment's of the same name, and a pod
// stored before owners had kinds is a Deployment's.
func TestJobsApplyAndSnapshot(t *testing.T) {
	s := New()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := Apply(s, []Command{
		NewCommand(CmdPutJob, Job{Namespace: "ns", Name: "x", Hash: "h", Status: JobStatus{Start: now}}),
		NewCommand(CmdSetCronSchedule, CronSchedule{Key: "ns/c", Time: now}),
		NewCommand(CmdCreatePod, Pod{Namespace: "ns", Name: "x-1", OwnerKind: "Job", Deployment: "x"}),
		NewCommand(CmdCreatePod, Pod{Namespace: "ns", Name: "x-2", Deployment: "x"}),
	}); err != nil {
		t.Fatal(err)
	}
	names := func(it func(func(*Pod) bool)) []string {
		var out []string
		for p := range it {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(s.Pods.OfOwner("Job", "ns", "x")); !slices.Equal(got, []string{"x-1"}) {
		t.Errorf("the Job's pods: %v", got)
	}
	if got := names(s.Pods.OfDeployment("ns", "x")); !slices.Equal(got, []string{"x-2"}) {
		t.Errorf("the Deployment's pods: %v", got)
	}
	var old Pod
	if err := json.Unmarshal([]byte(`{"namespace":"ns","name":"p","deployment":"web"}`), &old); err != nil || old.OwnerKind != "" {
		t.Errorf("a pod stored before owner kinds: %+v %v", old, err)
	}

	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if back.Jobs["ns/x"].Hash != "h" || !back.CronSchedules["ns/c"].Equal(now) || back.Pods.Len() != 2 {
		t.Errorf("after a snapshot: jobs %v schedules %v pods %d", back.Jobs, back.CronSchedules, back.Pods.Len())
	}

	if err := Apply(s, []Command{NewCommand(CmdDeleteJob, JobRef{Key: "ns/x"}), NewCommand(CmdSetCronSchedule, CronSchedule{Key: "ns/c"})}); err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 0 || len(s.CronSchedules) != 0 {
		t.Errorf("after deleting: jobs %v schedules %v", s.Jobs, s.CronSchedules)
	}
	buf.Reset()
	WriteSnapshot(&buf, s)
	if bytes.Contains(buf.Bytes(), []byte(`"jobs"`)) {
		t.Error("a state without jobs writes them: older masters could not read its snapshots")
	}
}
