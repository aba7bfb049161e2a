package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// berth get jobs says whether each run completed or failed, and why.
func TestGetJobsAndCronJobs(t *testing.T) {
	var out bytes.Buffer
	now := time.Now()
	jobs := []state.Job{
		{Namespace: "ns", Name: "migrate", Spec: objects.JobSpec{Completions: 1}, Status: state.JobStatus{Start: now, Succeeded: 1, Condition: state.JobComplete}},
		{Namespace: "ns", Name: "flaky", Spec: objects.JobSpec{Completions: 2}, Status: state.JobStatus{Start: now, Failed: 7, Condition: state.JobFailed, Reason: "BackoffLimitExceeded"}},
		{Namespace: "ns", Name: "report-1", CronJob: "report", Spec: objects.JobSpec{Completions: 1}, Status: state.JobStatus{Start: now}},
	}
	if err := printItems(&out, "jobs", "", jobs); err != nil {
		t.Fatal(err)
	}
	got := squeeze(out.String())
	for _, want := range []string{"ns migrate Complete 1/1 0 0s <none>", "ns flaky Failed 0/2 7 0s BackoffLimitExceeded", "ns report-1 Running 0/1 0 0s <none>"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := printItems(&out, "cronjobs", "", []api.CronJobStatus{{Namespace: "ns", Name: "report", Schedule: "* * * * *", Active: 1}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(squeeze(out.String()), "ns report * * * * * <none> false 1 <none>") {
		t.Errorf("cronjobs:\n%s", out.String())
	}
}

// squeeze writes each line's columns one space apart.
func squeeze(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}
