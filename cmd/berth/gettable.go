package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// tableKind is how berth get tables a kind: its header, and the rows of
// one item (name is its NAME column, kind/name in `get all`).
type tableKind struct {
	header func(wide bool) []any
	rows   func(it item, name string, objs revObjects, wide bool) [][]any
}

// printTable writes a listing as a table; header false for a watch's
// changed rows, kindNames for `get all` (NAME as kind/name, as kubectl).
func printTable(w io.Writer, l listing, wide, header, kindNames bool) error {
	tk := tables[l.kind]
	t := newTable(w)
	if header {
		t.row(tk.header(wide)...)
	}
	for _, it := range l.items {
		name := it.name
		if kindNames {
			name = nameKinds[l.kind] + "/" + name
		}
		for _, r := range tk.rows(it, name, l.objs, wide) {
			t.row(r...)
		}
	}
	return t.flush()
}

// cols returns the default columns, and with wide the wide ones after.
func cols(wide bool, def []any, extra ...any) []any {
	if wide {
		return append(def, extra...)
	}
	return def
}

func one(r ...any) [][]any { return [][]any{r} }

// workloadCols are the wide columns kubectl adds to workloads.
func workloadCols(wl workload, selector bool) []any {
	var names, images []string
	for _, c := range wl.Template.Spec.Containers {
		names, images = append(names, c.Name), append(images, c.Image)
	}
	out := []any{orNone(strings.Join(names, ",")), orNone(strings.Join(images, ","))}
	if selector {
		out = append(out, orNone(labelSelector(wl.Selector)))
	}
	return out
}

var tables = map[string]tableKind{
	"nodes": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAME", "STATUS", "ADDRESS", "POD CIDR", "CPU", "MEMORY", "REASON"}, "INTERNAL-IP", "EXTERNAL-IP")
		},
		rows: func(it item, name string, _ revObjects, wide bool) [][]any {
			n := it.api.(state.Node)
			status := "Ready"
			if !n.Ready {
				status = "NotReady"
			}
			if n.DiskPressure {
				status += ",DiskPressure" // as kubectl shows a cordoned node
			}
			if n.Unschedulable {
				status += ",SchedulingDisabled"
			}
			return one(cols(wide, []any{name, status, n.Address, n.PodCIDR, fmt.Sprintf("%dm", n.CPUMilli), fmt.Sprintf("%dMi", n.MemoryBytes>>20), orNone(n.Reason)},
				orNone(nodeIP(n)), "<none>")...)
		},
	},
	"pods": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"}, "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
		},
		rows: func(it item, name string, _ revObjects, wide bool) [][]any {
			p := it.api.(state.Pod)
			ready := 0
			for _, c := range p.Status.Containers {
				if c.Ready {
					ready++
				}
			}
			return one(cols(wide, []any{p.Namespace, name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podStatusWord(p), p.Status.Restarts, age(p.Created)},
				orNone(p.Status.IP), orNone(p.NodeName), "<none>", "<none>")...)
		},
	},
	"deployments": {
		header: func(wide bool) []any {
			if wide {
				return []any{"NAMESPACE", "NAME", "READY", "UP-TO-DATE", "TEMPLATE", "REASON", "CONTAINERS", "IMAGES", "SELECTOR"}
			}
			return []any{"NAMESPACE", "NAME", "READY", "UP-TO-DATE", "TEMPLATE", "IMAGES", "REASON"}
		},
		rows: func(it item, name string, objs revObjects, wide bool) [][]any {
			d := it.api.(apiDeployment)
			r := []any{d.Namespace, name, fmt.Sprintf("%d/%d", d.Ready, d.Replicas), d.UpToDate, d.TemplateHash}
			if wide {
				return one(append(append(r, orNone(d.Reason)), workloadCols(objs.workload("Deployment", d.Namespace, d.Name), true)...)...)
			}
			return one(append(r, strings.Join(d.Images, ","), orNone(d.Reason))...)
		},
	},
	"daemonsets": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "NODE SELECTOR"}, "CONTAINERS", "IMAGES", "SELECTOR")
		},
		rows: func(it item, name string, objs revObjects, wide bool) [][]any {
			d := it.api.(api.DaemonSetStatus)
			return one(cols(wide, []any{d.Namespace, name, d.Desired, d.Current, d.Ready, d.UpToDate, orNone(showSelector(d.NodeSelector))},
				workloadCols(objs.workload("DaemonSet", d.Namespace, d.Name), true)...)...)
		},
	},
	"statefulsets": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "READY", "CURRENT", "UP-TO-DATE", "SERVICE"}, "CONTAINERS", "IMAGES")
		},
		rows: func(it item, name string, objs revObjects, wide bool) [][]any {
			s := it.api.(api.StatefulSetStatus)
			return one(cols(wide, []any{s.Namespace, name, fmt.Sprintf("%d/%d", s.Ready, s.Replicas), s.Current, s.UpToDate, orNone(s.ServiceName)},
				workloadCols(objs.workload("StatefulSet", s.Namespace, s.Name), false)...)...)
		},
	},
	"claims": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "STATUS", "NODE", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "USED BY"}, "VOLUMEMODE")
		},
		rows: func(it item, name string, _ revObjects, wide bool) [][]any {
			c := it.api.(api.ClaimStatus)
			return one(cols(wide, []any{c.Namespace, name, c.Phase, orNone(c.NodeName), c.Bytes, strings.Join(c.AccessModes, ","), "local-path", orNone(strings.Join(c.Pods, ","))},
				"Filesystem")...)
		},
	},
	"jobs": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "STATUS", "COMPLETIONS", "FAILED", "AGE", "REASON"}, "CONTAINERS", "IMAGES", "SELECTOR")
		},
		rows: func(it item, name string, _ revObjects, wide bool) [][]any {
			j := it.api.(state.Job)
			status := "Running"
			if j.Status.Done() {
				status = j.Status.Condition
			}
			// A Job's pods are selected by the job-name label, as Kubernetes labels them.
			wl := workload{Template: j.Spec.Template, Selector: objects.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/job-name": j.Name}}}
			return one(cols(wide, []any{j.Namespace, name, status, fmt.Sprintf("%d/%d", j.Status.Succeeded, j.Spec.Completions), j.Status.Failed, age(j.Status.Start), orNone(j.Status.Reason)},
				workloadCols(wl, true)...)...)
		},
	},
	"cronjobs": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE"}, "CONTAINERS", "IMAGES")
		},
		rows: func(it item, name string, objs revObjects, wide bool) [][]any {
			c := it.api.(api.CronJobStatus)
			last := "<none>"
			if !c.LastSchedule.IsZero() {
				last = age(c.LastSchedule)
			}
			var cj struct {
				JobTemplate struct {
					Spec workload `json:"spec"`
				} `json:"jobTemplate"`
			}
			json.Unmarshal(objs["CronJob/"+c.Namespace+"/"+c.Name].Spec, &cj) // decoded once already; none: empty
			return one(cols(wide, []any{c.Namespace, name, c.Schedule, orNone(c.TimeZone), c.Suspend, c.Active, last},
				workloadCols(cj.JobTemplate.Spec, false)...)...)
		},
	},
	"services": {
		header: func(wide bool) []any {
			return cols(wide, []any{"NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORTS", "ENDPOINTS"}, "SELECTOR")
		},
		rows: func(it item, name string, objs revObjects, wide bool) [][]any {
			s := it.api.(apiService)
			external := "<none>" // as kubectl shows it
			if s.Type == "LoadBalancer" {
				external = strings.Join(s.Ingress, ",")
				if external == "" {
					external = "<pending>"
				}
			}
			clusterIP := s.ClusterIP
			if s.Type == "ExternalName" {
				clusterIP, external = "<none>", s.ExternalName
			}
			var ports []string
			eps := 0
			for _, p := range s.Ports {
				port := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
				if p.NodePort != 0 {
					port = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
				}
				ports = append(ports, port)
				eps = max(eps, len(p.Endpoints))
			}
			var spec struct {
				Selector map[string]string `json:"selector"`
			}
			json.Unmarshal(objs["Service/"+s.Namespace+"/"+s.Name].Spec, &spec) // decoded once already; none: empty
			return one(cols(wide, []any{s.Namespace, name, s.Type, clusterIP, external, orNone(strings.Join(ports, ",")), eps}, orNone(showSelector(spec.Selector)))...)
		},
	},
	"revisions": {
		header: func(bool) []any {
			return []any{"COMMIT", "STATUS", "OBJECTS", "AGE", "SEEN→COMMITTED", "CONVERGED", "AUTHOR", "MESSAGE"}
		},
		rows: func(it item, _ string, _ revObjects, _ bool) [][]any {
			r := it.api.(apiRevision)
			rows := [][]any{{short(r.Commit), r.Status, r.Objects, age(r.Time), api.SeenToCommitted(r.RevisionTiming), api.Converged(r.RevisionTiming, r.Status), r.Author, firstLine(r.Message)}}
			for _, d := range r.Diagnostics {
				rows = append(rows, []any{"", "", "", "", "", "", "", "  " + d.String()})
			}
			return rows
		},
	},
	"configmaps": {
		header: func(bool) []any { return []any{"NAMESPACE", "NAME", "DATA"} },
		rows: func(it item, name string, _ revObjects, _ bool) [][]any {
			return one(it.namespace, name, dataKeys(it.api.(json.RawMessage)))
		},
	},
	"secrets": {
		header: func(bool) []any { return []any{"NAMESPACE", "NAME", "TYPE", "DATA"} },
		rows: func(it item, name string, _ revObjects, _ bool) [][]any {
			var s struct {
				Type string `json:"type"`
			}
			json.Unmarshal(it.api.(json.RawMessage), &s) // decoded once already
			return one(it.namespace, name, s.Type, dataKeys(it.api.(json.RawMessage)))
		},
	},
	"namespaces": {
		header: func(bool) []any { return []any{"NAME", "STATUS"} },
		rows: func(it item, name string, _ revObjects, _ bool) [][]any {
			return one(name, it.api.(apiNamespace).Phase)
		},
	},
}

func showSelector(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// labelSelector writes a selector as kubectl does: k=v,k in (a,b),!k.
func labelSelector(s objects.LabelSelector) string {
	parts := []string{}
	if m := showSelector(s.MatchLabels); m != "" {
		parts = append(parts, m)
	}
	for _, e := range s.MatchExpressions {
		switch e.Operator {
		case "Exists":
			parts = append(parts, e.Key)
		case "DoesNotExist":
			parts = append(parts, "!"+e.Key)
		default:
			parts = append(parts, fmt.Sprintf("%s %s (%s)", e.Key, strings.ToLower(e.Operator), strings.Join(e.Values, ",")))
		}
	}
	return strings.Join(parts, ",")
}

func podStatusWord(p state.Pod) string {
	switch {
	case p.Terminating:
		return "Terminating"
	case p.Status.Reason != "" && !p.Status.Ready:
		return p.Status.Reason
	}
	return string(podPhase(p))
}

// podPhase is Pending for a pod no agent has reported on yet.
func podPhase(p state.Pod) state.PodPhase {
	if p.Status.Phase == "" {
		return state.PodPending
	}
	return p.Status.Phase
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
