package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

var kindAliases = map[string]string{
	"node": "nodes", "no": "nodes",
	"pod": "pods", "po": "pods",
	"deployment": "deployments", "deploy": "deployments",
	"service": "services", "svc": "services",
	"revision": "revisions", "rev": "revisions",
	"job": "jobs", "cronjob": "cronjobs", "cj": "cronjobs",
	"daemonset": "daemonsets", "ds": "daemonsets",
	"statefulset": "statefulsets", "sts": "statefulsets",
	"pvc": "claims", "persistentvolumeclaim": "claims", "persistentvolumeclaims": "claims", "claim": "claims",
}

// nameKinds are the kinds as -o name writes them, kubectl's way.
var nameKinds = map[string]string{
	"nodes": "node", "pods": "pod", "services": "service", "revisions": "revision",
	"deployments": "deployment.apps", "daemonsets": "daemonset.apps", "statefulsets": "statefulset.apps",
	"jobs": "job.batch", "cronjobs": "cronjob.batch", "claims": "persistentvolumeclaim",
}

func resourceKind(arg string) (string, error) {
	k := strings.ToLower(arg)
	if a, ok := kindAliases[k]; ok {
		k = a
	}
	switch k {
	case "nodes", "pods", "deployments", "services", "revisions", "jobs", "cronjobs", "daemonsets", "statefulsets", "claims":
		return k, nil
	}
	return "", &exitError{2, fmt.Errorf("unknown resource %q (want nodes, pods, deployments, daemonsets, statefulsets, jobs, cronjobs, services, pvc or revisions)", arg)}
}

func newGetCmd() *cobra.Command {
	var output, namespace string
	var all bool
	cmd := &cobra.Command{
		Use:   "get nodes|pods|deployments|daemonsets|statefulsets|jobs|cronjobs|services|pvc|revisions [NAME...]",
		Short: "List cluster objects, all of a kind or those named",
		Args:  cobra.MinimumNArgs(1),
	}
	client := clientFlag(cmd)
	cmd.AddCommand(newGetEventsCmd())
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, json, yaml or name")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace's objects (default: every namespace's)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace's objects (the default; as kubectl's -A)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kind, err := resourceKind(args[0])
		if err != nil {
			return err
		}
		if output != "" && output != "wide" && output != "json" && output != "yaml" && output != "name" {
			return &exitError{2, fmt.Errorf("unknown --output %q (want wide, json, yaml or name)", output)}
		}
		if all && namespace != "" {
			return &exitError{2, fmt.Errorf("--namespace and --all-namespaces ask for different things: give one")}
		}
		c, err := client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		var items any
		switch kind {
		case "nodes":
			items, err = c.Nodes(ctx)
		case "pods":
			items, _, err = c.Pods(ctx, "", nil)
		case "deployments":
			items, err = c.Deployments(ctx)
		case "services":
			items, _, err = c.Services(ctx, nil)
		case "revisions":
			items, err = c.Revisions(ctx)
		case "daemonsets":
			items, err = c.DaemonSets(ctx)
		case "statefulsets":
			items, err = c.StatefulSets(ctx)
		case "claims":
			items, err = c.Claims(ctx)
		case "jobs":
			items, err = c.Jobs(ctx)
		case "cronjobs":
			items, err = c.CronJobs(ctx)
		}
		if err != nil {
			return &exitError{1, err}
		}
		items, missing := selectItems(items, args[1:], namespace)
		if err := printItems(cmd.OutOrStdout(), kind, output, items); err != nil {
			return err
		}
		if len(missing) > 0 {
			return &exitError{1, fmt.Errorf("%s not found: %s", kind, strings.Join(missing, ", "))}
		}
		return nil
	}
	return cmd
}

// selectItems keeps the items named (all when names is empty) in
// namespace (every one when ""), and says which names were not found, as
// kubectl does. An item's name is its Name field (a revision's, its
// commit or a prefix of it), its namespace its Namespace field.
func selectItems(items any, names []string, namespace string) (any, []string) {
	v := reflect.ValueOf(items)
	out := reflect.MakeSlice(v.Type(), 0, v.Len())
	found := map[string]bool{}
	for i := range v.Len() {
		it := v.Index(i)
		if ns := it.FieldByName("Namespace"); namespace != "" && ns.IsValid() && ns.String() != namespace {
			continue
		}
		name := itemName(it)
		if len(names) > 0 {
			match := slices.IndexFunc(names, func(n string) bool {
				return n == name || it.FieldByName("Commit").IsValid() && n != "" && strings.HasPrefix(name, n)
			})
			if match < 0 {
				continue
			}
			found[names[match]] = true
		}
		out = reflect.Append(out, it)
	}
	var missing []string
	for _, n := range names {
		if !found[n] {
			missing = append(missing, n)
		}
	}
	return out.Interface(), missing
}

func itemName(it reflect.Value) string {
	for _, f := range []string{"Name", "Commit"} {
		if v := it.FieldByName(f); v.IsValid() && v.Kind() == reflect.String {
			return v.String()
		}
	}
	return ""
}

func printItems(w io.Writer, kind, output string, items any) error {
	switch output {
	case "name":
		// As kubectl writes it: kind.group/name, for scripts.
		v := reflect.ValueOf(items)
		for i := range v.Len() {
			fmt.Fprintf(w, "%s/%s\n", nameKinds[kind], itemName(v.Index(i)))
		}
		return nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	case "yaml":
		b, err := yaml.Marshal(items)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	t := newTable(w)
	defer t.flush()
	wide := output == "wide"
	row := t.row
	switch kind {
	case "nodes":
		row("NAME", "STATUS", "ADDRESS", "POD CIDR", "CPU", "MEMORY", "REASON")
		for _, n := range items.([]state.Node) {
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
			row(n.Name, status, n.Address, n.PodCIDR, fmt.Sprintf("%dm", n.CPUMilli), fmt.Sprintf("%dMi", n.MemoryBytes>>20), orNone(n.Reason))
		}
	case "pods":
		if wide {
			row("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE")
		} else {
			row("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE")
		}
		for _, p := range items.([]state.Pod) {
			ready := 0
			for _, c := range p.Status.Containers {
				if c.Ready {
					ready++
				}
			}
			cols := []any{p.Namespace, p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podStatusWord(p), p.Status.Restarts, age(p.Created)}
			if wide {
				cols = append(cols, orNone(p.Status.IP), orNone(p.NodeName))
			}
			row(cols...)
		}
	case "deployments":
		row("NAMESPACE", "NAME", "READY", "UP-TO-DATE", "TEMPLATE", "IMAGES", "REASON")
		for _, d := range items.([]apiDeployment) {
			row(d.Namespace, d.Name, fmt.Sprintf("%d/%d", d.Ready, d.Replicas), d.UpToDate, d.TemplateHash, strings.Join(d.Images, ","), orNone(d.Reason))
		}
	case "daemonsets":
		row("NAMESPACE", "NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "NODE SELECTOR")
		for _, d := range items.([]api.DaemonSetStatus) {
			row(d.Namespace, d.Name, d.Desired, d.Current, d.Ready, d.UpToDate, orNone(showSelector(d.NodeSelector)))
		}
	case "statefulsets":
		row("NAMESPACE", "NAME", "READY", "CURRENT", "UP-TO-DATE", "SERVICE")
		for _, s := range items.([]api.StatefulSetStatus) {
			row(s.Namespace, s.Name, fmt.Sprintf("%d/%d", s.Ready, s.Replicas), s.Current, s.UpToDate, orNone(s.ServiceName))
		}
	case "claims":
		row("NAMESPACE", "NAME", "STATUS", "NODE", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "USED BY")
		for _, c := range items.([]api.ClaimStatus) {
			row(c.Namespace, c.Name, c.Phase, orNone(c.NodeName), c.Bytes, strings.Join(c.AccessModes, ","), "local-path", orNone(strings.Join(c.Pods, ",")))
		}
	case "jobs":
		row("NAMESPACE", "NAME", "STATUS", "COMPLETIONS", "FAILED", "AGE", "REASON")
		for _, j := range items.([]state.Job) {
			status := "Running"
			if j.Status.Done() {
				status = j.Status.Condition
			}
			row(j.Namespace, j.Name, status, fmt.Sprintf("%d/%d", j.Status.Succeeded, j.Spec.Completions), j.Status.Failed, age(j.Status.Start), orNone(j.Status.Reason))
		}
	case "cronjobs":
		row("NAMESPACE", "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE")
		for _, c := range items.([]api.CronJobStatus) {
			last := "<none>"
			if !c.LastSchedule.IsZero() {
				last = age(c.LastSchedule)
			}
			row(c.Namespace, c.Name, c.Schedule, orNone(c.TimeZone), c.Suspend, c.Active, last)
		}
	case "services":
		row("NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORTS", "ENDPOINTS")
		for _, s := range items.([]apiService) {
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
			row(s.Namespace, s.Name, s.Type, clusterIP, external, orNone(strings.Join(ports, ",")), eps)
		}
	case "revisions":
		row("COMMIT", "STATUS", "OBJECTS", "AGE", "AUTHOR", "MESSAGE")
		for _, r := range items.([]apiRevision) {
			row(short(r.Commit), r.Status, r.Objects, age(r.Time), r.Author, firstLine(r.Message))
			for _, d := range r.Diagnostics {
				row("", "", "", "", "", "  "+d.String())
			}
		}
	}
	return nil
}

func showSelector(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
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
	return string(p.Status.Phase)
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

// age prints a duration the way kubectl does: 45s, 12m, 3h, 5d.
func age(t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Local names for the API's list types, to keep the printers short.
type (
	apiDeployment = api.DeploymentStatus
	apiService    = reconcile.ServiceView
	apiRevision   = api.RevisionSummary
)
