package ui

import (
	"context"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

// clusterView is what the dashboard shows, as the API answers it.
type clusterView struct {
	Status       api.Status
	Revisions    []api.RevisionSummary
	Deployments  []api.DeploymentStatus
	DaemonSets   []api.DaemonSetStatus
	StatefulSets []api.StatefulSetStatus
	Jobs         []state.Job
	CronJobs     []api.CronJobStatus
	Pods         []state.Pod
	Nodes        []nodeView
	Services     []reconcile.ServiceView
	Secrets      []api.SecretSummary
	// Events are the newest of the cluster's events, newest first.
	Events []state.Event
	// Me is who is signed in (set for a whole page, not its updates).
	Me api.WhoAmI
}

// dashboardEvents is how many of the newest events the dashboard lists;
// the log keeps up to 1000 (berth get events lists them all).
const dashboardEvents = 50

// nodeView is a node with the pods bound to it.
type nodeView struct {
	state.Node
	Pods []state.Pod
}

// dashboardSections are the dashboard's live parts, each a template of
// that name (templates/dashboard.html) and an element with that id.
var dashboardSections = []string{"live-summary", "live-revisions", "live-workloads", "live-pods", "live-nodes", "live-services", "live-secrets", "live-events"}

// podSections are a pod page's (templates/pod.html).
var podSections = []string{"live-pod", "live-pod-events"}

func loadCluster(ctx context.Context, c *api.Client) (*clusterView, error) {
	v := &clusterView{}
	var err error
	var nodes []state.Node
	// One read after another: each is an in-process call on the same
	// state, and the first refusal (a token gone) ends the page.
	for _, read := range []func(){
		func() { v.Status, err = c.Status(ctx) },
		func() { v.Revisions, err = c.Revisions(ctx) },
		func() { v.Deployments, err = c.Deployments(ctx) },
		func() { v.DaemonSets, err = c.DaemonSets(ctx) },
		func() { v.StatefulSets, err = c.StatefulSets(ctx) },
		func() { v.Jobs, err = c.Jobs(ctx) },
		func() { v.CronJobs, err = c.CronJobs(ctx) },
		func() { v.Pods, _, err = c.Pods(ctx, "", nil) },
		func() { nodes, err = c.Nodes(ctx) },
		func() { v.Services, _, err = c.Services(ctx, nil) },
		func() { v.Secrets, err = c.Secrets(ctx) },
		func() { v.Events, _, err = c.Events(ctx, api.EventFilter{}, nil) },
	} {
		if read(); err != nil {
			return nil, err
		}
	}
	// The log is oldest first: the newest, newest first.
	v.Events = v.Events[max(len(v.Events)-dashboardEvents, 0):]
	slices.Reverse(v.Events)
	for _, n := range nodes {
		nv := nodeView{Node: n}
		for _, p := range v.Pods {
			if p.NodeName == n.Name {
				nv.Pods = append(nv.Pods, p)
			}
		}
		v.Nodes = append(v.Nodes, nv)
	}
	return v, nil
}

var funcs = template.FuncMap{
	"short": func(commit string) string { return commit[:min(len(commit), 12)] },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return fmt.Sprintf("%d B", n)
		}
		div, exp := int64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	},
	"cpu":  func(milli int64) string { return fmt.Sprintf("%g", float64(milli)/1000) },
	"join": strings.Join,
	// A revision's timing in the CLI's words (berth get revisions, berth
	// status).
	"seenToCommitted": api.SeenToCommitted,
	"outcome":         api.Outcome,
	// lastSeen is an event's age as kubectl says it: "20s (x3 over 2m)".
	"lastSeen": func(e state.Event) string { return api.LastSeen(&e, time.Now()) },
	"lower":    strings.ToLower,
	"first":    func(s string) string { s, _, _ = strings.Cut(s, "\n"); return s },
	// podState is a pod's state in a word, as kubectl's STATUS column.
	"podState": func(p state.Pod) string {
		switch {
		case p.Terminating:
			return "Terminating"
		case p.Status.Reason != "":
			return p.Status.Reason
		case p.Status.Phase == "":
			return "Pending"
		}
		return string(p.Status.Phase)
	},
	"endpoints": func(ports []reconcile.PortView) int {
		n := 0
		for _, p := range ports {
			n += len(p.Endpoints)
		}
		return n
	},
}
