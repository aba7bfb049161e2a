package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// EXTERNAL-IP is a LoadBalancer's ingress, <pending> without a ready node,
// and <none> for the other types, as kubectl prints it.
func TestGetServicesExternalIP(t *testing.T) {
	var out bytes.Buffer
	err := printItems(&out, "services", "", []apiService{
		{Namespace: "shop", Name: "lb", Type: "LoadBalancer", ClusterIP: "10.96.0.5", Ingress: []string{"10.0.0.2", "10.0.0.3"},
			Ports: []reconcile.PortView{{Protocol: "TCP", Port: 80, NodePort: 30080}}},
		{Namespace: "shop", Name: "waiting", Type: "LoadBalancer", ClusterIP: "10.96.0.6", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 81}}},
		{Namespace: "shop", Name: "db", Type: "ClusterIP", ClusterIP: "None", Ports: []reconcile.PortView{{Protocol: "TCP", Port: 5432,
			Endpoints: []reconcile.Endpoint{{IP: "10.244.0.5", Port: 5432, Pod: "db-0", Node: "n1"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"NAMESPACE NAME TYPE CLUSTER-IP EXTERNAL-IP PORTS ENDPOINTS",
		"shop lb LoadBalancer 10.96.0.5 10.0.0.2,10.0.0.3 80:30080/TCP 0",
		"shop waiting LoadBalancer 10.96.0.6 <pending> 81/TCP 0",
		"shop db ClusterIP None <none> 5432/TCP 1",
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant columns\n%s", out.String(), strings.Join(want, "\n"))
	}
}

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

// berth get KIND NAME... keeps those named, -n one namespace's, and says
// which names it did not find; -o name writes kind/name as kubectl does.
func TestGetSelectsAndNames(t *testing.T) {
	pods := []state.Pod{{Namespace: "shop", Name: "web-1"}, {Namespace: "shop", Name: "api-1"}, {Namespace: "default", Name: "web-1"}}
	got, missing := selectItems(pods, []string{"web-1", "nope"}, "shop")
	if ps := got.([]state.Pod); len(ps) != 1 || ps[0].Namespace != "shop" || ps[0].Name != "web-1" || !slices.Equal(missing, []string{"nope"}) {
		t.Errorf("selected %+v, missing %v", got, missing)
	}
	got, _ = selectItems(pods, nil, "")
	var out bytes.Buffer
	if err := printItems(&out, "pods", "name", got); err != nil || out.String() != "pod/web-1\npod/api-1\npod/web-1\n" {
		t.Errorf("-o name: %q %v", out.String(), err)
	}
	revs := []apiRevision{{Commit: "0123456789abcdef"}, {Commit: "fedcba9876543210"}}
	if got, missing := selectItems(revs, []string{"0123"}, ""); len(got.([]apiRevision)) != 1 || len(missing) != 0 {
		t.Errorf("a revision by its commit's prefix: %+v %v", got, missing)
	}
}
