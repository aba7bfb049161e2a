package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/jsonpath"
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
	"configmap": "configmaps", "cm": "configmaps", "secret": "secrets",
	"namespace": "namespaces", "ns": "namespaces",
}

// nameKinds are the kinds as -o name writes them, kubectl's way; its keys
// are the kinds berth get knows.
var nameKinds = map[string]string{
	"nodes": "node", "pods": "pod", "services": "service", "revisions": "revision",
	"deployments": "deployment.apps", "daemonsets": "daemonset.apps", "statefulsets": "statefulset.apps",
	"jobs": "job.batch", "cronjobs": "cronjob.batch", "claims": "persistentvolumeclaim",
	"configmaps": "configmap", "secrets": "secret", "namespaces": "namespace",
}

// allKinds are what `get all` lists, as kubectl's `get all` does.
var allKinds = []string{"pods", "services", "daemonsets", "deployments", "statefulsets", "jobs", "cronjobs"}

func resourceKind(arg string) (string, error) {
	k := strings.ToLower(arg)
	if a, ok := kindAliases[k]; ok {
		k = a
	}
	if _, ok := nameKinds[k]; ok || k == "all" {
		return k, nil
	}
	return "", &exitError{2, fmt.Errorf("unknown resource %q (want nodes, pods, deployments, daemonsets, statefulsets, jobs, cronjobs, services, pvc, configmaps, secrets, namespaces, revisions or all)", arg)}
}

// getOptions are berth get's flags.
type getOptions struct {
	output, namespace, selector string
	watch                       bool
}

// getOutputs are get's -o values but the default table.
var getOutputs = []string{"wide", "json", "yaml", "name", "jsonpath="}

func newGetCmd() *cobra.Command {
	var o getOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...]",
		Short: "List cluster objects, all of a kind or those named",
		Long: "List cluster objects as kubectl get does. KIND is nodes, pods, deployments, daemonsets, statefulsets, jobs, cronjobs,\n" +
			"services, pvc, configmaps, secrets, namespaces, revisions or all (pods, services and the workloads).",
		Args: cobra.MinimumNArgs(1),
	}
	client := clientFlag(cmd)
	cmd.AddCommand(newGetEventsCmd())
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: wide, json, yaml, name or jsonpath=TEMPLATE")
	cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "", "only this namespace's objects (default: every namespace's)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace's objects (the default; as kubectl's -A)")
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "only objects whose labels match, e.g. app=web,tier!=db,env in (a,b),!canary")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "after the listing, print objects as they change, until interrupted")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if all && o.namespace != "" {
			return &exitError{2, fmt.Errorf("--namespace and --all-namespaces ask for different things: give one")}
		}
		c, err := client()
		if err != nil {
			return err
		}
		return runGet(cmd.Context(), c, cmd.OutOrStdout(), o, args)
	}
	return cmd
}

// runGet lists args[0]'s objects (those named by args[1:]) and, with
// --watch, their changes.
func runGet(ctx context.Context, c *api.Client, w io.Writer, o getOptions, args []string) error {
	kind, err := resourceKind(args[0])
	if err != nil {
		return err
	}
	kinds := []string{kind}
	if kind == "all" {
		kinds = allKinds
		if len(args) > 1 {
			return &exitError{2, fmt.Errorf("get all takes no names")}
		}
	}
	p, err := newPrinter(o.output)
	if err != nil {
		return err
	}
	sel, err := labels.Parse(o.selector)
	if err != nil {
		return &exitError{2, fmt.Errorf("--selector: %w", err)}
	}
	var index uint64
	if o.watch {
		// The state's index before the listing: a change after it is shown.
		if index, err = c.WaitIndex(ctx, 0, 0); err != nil {
			return &exitError{1, err}
		}
	}
	var lists []listing
	var missing []string
	for _, k := range kinds {
		l, err := list(ctx, c, k)
		if err != nil {
			return &exitError{1, err}
		}
		var miss []string
		l.items, miss = selectItems(l.items, args[1:], o.namespace, sel)
		missing = append(missing, miss...)
		lists = append(lists, l)
	}
	if err := p.print(w, lists, len(args) == 2 && len(missing) == 0); err != nil {
		return err
	}
	if len(missing) > 0 {
		return &exitError{1, fmt.Errorf("%s not found: %s", kind, strings.Join(missing, ", "))}
	}
	if o.watch {
		return watch(ctx, c, w, p, lists, index, args[1:], o.namespace, sel)
	}
	return nil
}

// item is one object: as the API lists it (for the tables) and as
// Kubernetes shows it (for -o json, yaml, jsonpath and -l).
type item struct {
	namespace, name string
	api             any
	kube            any // a kubeObject, or a ConfigMap's or Secret's declared JSON
	labels          map[string]string
}

// listing is one kind's items, with the revision's objects the wide
// tables read.
type listing struct {
	kind  string
	items []item
	objs  revObjects
}

// list reads a kind's objects, and what shaping them takes.
func list(ctx context.Context, c *api.Client, kind string) (listing, error) {
	var v any
	var err error
	s := &shaper{}
	switch kind {
	case "nodes":
		v, err = c.Nodes(ctx)
	case "pods":
		var nodes []state.Node
		if nodes, err = c.Nodes(ctx); err == nil {
			s.nodes = map[string]state.Node{}
			for _, n := range nodes {
				s.nodes[n.Name] = n
			}
			v, _, err = c.Pods(ctx, "", nil)
		}
	case "deployments":
		if s.pods, _, err = c.Pods(ctx, "", nil); err == nil {
			v, err = c.Deployments(ctx)
		}
	case "services":
		v, _, err = c.Services(ctx, nil)
	case "revisions":
		v, err = c.Revisions(ctx)
	case "daemonsets":
		v, err = c.DaemonSets(ctx)
	case "statefulsets":
		v, err = c.StatefulSets(ctx)
	case "claims":
		v, err = c.Claims(ctx)
	case "jobs":
		v, err = c.Jobs(ctx)
	case "cronjobs":
		v, err = c.CronJobs(ctx)
	case "namespaces":
		var st api.Status
		st, err = c.Status(ctx)
		s.terminating = st.TerminatingNamespaces
	}
	if err != nil {
		return listing{}, err
	}
	if kind != "nodes" && kind != "revisions" {
		raws, err := c.Objects(ctx, "")
		if err != nil {
			return listing{}, err
		}
		if s.objs, err = indexObjects(raws); err != nil {
			return listing{}, err
		}
		if v == nil {
			v = raws
		}
	}
	return listing{kind: kind, items: s.items(kind, v), objs: s.objs}, nil
}

// items makes the items of what the API listed for kind (for configmaps,
// secrets and namespaces, the applied revision's objects).
func (s *shaper) items(kind string, v any) []item {
	var out []item
	add := func(namespace, name string, api any, k kubeObject) {
		out = append(out, item{namespace: namespace, name: name, api: api, kube: k, labels: k.Metadata.Labels})
	}
	switch kind {
	case "nodes":
		for _, n := range v.([]state.Node) {
			add("", n.Name, n, s.node(n))
		}
	case "pods":
		for _, p := range v.([]state.Pod) {
			add(p.Namespace, p.Name, p, s.pod(p))
		}
	case "deployments":
		for _, d := range v.([]apiDeployment) {
			add(d.Namespace, d.Name, d, s.deployment(d))
		}
	case "daemonsets":
		for _, d := range v.([]api.DaemonSetStatus) {
			add(d.Namespace, d.Name, d, s.daemonSet(d))
		}
	case "statefulsets":
		for _, d := range v.([]api.StatefulSetStatus) {
			add(d.Namespace, d.Name, d, s.statefulSet(d))
		}
	case "services":
		for _, d := range v.([]apiService) {
			add(d.Namespace, d.Name, d, s.service(d))
		}
	case "jobs":
		for _, d := range v.([]state.Job) {
			add(d.Namespace, d.Name, d, s.job(d))
		}
	case "cronjobs":
		for _, d := range v.([]api.CronJobStatus) {
			add(d.Namespace, d.Name, d, s.cronJob(d))
		}
	case "claims":
		for _, d := range v.([]api.ClaimStatus) {
			add(d.Namespace, d.Name, d, s.claim(d))
		}
	case "revisions":
		for _, d := range v.([]apiRevision) {
			add("", d.Commit, d, s.revision(d))
		}
	case "namespaces":
		// Those declared, and those objects are in without one.
		names := map[string]bool{}
		for _, o := range s.objs {
			names[o.Metadata.Namespace] = true
			if o.Kind == "Namespace" {
				names[o.Metadata.Name] = true
			}
		}
		delete(names, "")
		phases := map[string]string{}
		for n := range names {
			phases[n] = "Active"
		}
		for _, n := range s.terminating {
			if phases[n] == "" {
				phases[n] = "Terminating"
			}
		}
		for _, n := range slices.Sorted(maps.Keys(phases)) {
			ns := apiNamespace{Name: n, Phase: phases[n]}
			add("", n, ns, s.namespace(ns))
		}
	case "configmaps", "secrets":
		want := map[string]string{"configmaps": "ConfigMap", "secrets": "Secret"}[kind]
		for _, raw := range v.([]json.RawMessage) {
			var o revObject
			if json.Unmarshal(raw, &o) != nil || o.Kind != want {
				continue
			}
			out = append(out, item{namespace: o.Metadata.Namespace, name: o.Metadata.Name, api: raw, kube: raw, labels: o.Metadata.Labels})
		}
	}
	return out
}

// selectItems keeps the items named (all when names is empty) in
// namespace (every one when "") whose labels sel matches, and says which
// names were not found, as kubectl does. A revision is named by its commit
// or a prefix of it.
func selectItems(items []item, names []string, namespace string, sel labels.Selector) ([]item, []string) {
	var out []item
	found := map[string]bool{}
	for _, it := range items {
		if namespace != "" && it.namespace != "" && it.namespace != namespace || !sel.Matches(labels.Set(it.labels)) {
			continue
		}
		if len(names) > 0 {
			_, isRev := it.api.(apiRevision)
			match := slices.IndexFunc(names, func(n string) bool {
				return n == it.name || isRev && n != "" && strings.HasPrefix(it.name, n)
			})
			if match < 0 {
				continue
			}
			found[names[match]] = true
		}
		out = append(out, it)
	}
	var missing []string
	for _, n := range names {
		if !found[n] {
			missing = append(missing, n)
		}
	}
	return out, missing
}

// printer writes listings in one output format.
type printer struct {
	format string // "", wide, json, yaml, name, jsonpath
	jp     *jsonpath.JSONPath
}

func newPrinter(output string) (*printer, error) {
	p := &printer{format: output}
	if tmpl, ok := strings.CutPrefix(output, "jsonpath="); ok {
		// As kubectl's --allow-missing-template-keys, true by default.
		p.format, p.jp = "jsonpath", jsonpath.New("output").AllowMissingKeys(true)
		if err := p.jp.Parse(tmpl); err != nil {
			return nil, &exitError{2, fmt.Errorf("--output jsonpath: %w", err)}
		}
		return p, nil
	}
	switch output {
	case "", "wide", "json", "yaml", "name":
		return p, nil
	}
	return nil, &exitError{2, fmt.Errorf("unknown --output %q (want wide, json, yaml, name or jsonpath=TEMPLATE)", output)}
}

// print writes the listings; one is an object asked for by its name,
// which the structured formats write alone rather than in a List.
func (p *printer) print(w io.Writer, lists []listing, one bool) error {
	switch p.format {
	case "name":
		for _, l := range lists {
			kind := nameKinds[l.kind]
			if l.kind == "events" { // listed by get's events command, not by get KIND
				kind = "event"
			}
			for _, it := range l.items {
				fmt.Fprintf(w, "%s/%s\n", kind, it.name)
			}
		}
		return nil
	case "json", "yaml", "jsonpath":
		var items []any
		for _, l := range lists {
			for _, it := range l.items {
				items = append(items, it.kube)
			}
		}
		var v any = map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]string{"resourceVersion": ""}, "items": items}
		if items == nil {
			v.(map[string]any)["items"] = []any{}
		}
		if one && len(items) == 1 {
			v = items[0]
		}
		return p.structured(w, v)
	}
	printed := 0
	for _, l := range lists {
		if len(lists) > 1 && len(l.items) == 0 {
			continue // get all shows the kinds that have objects
		}
		if printed++; printed > 1 {
			fmt.Fprintln(w)
		}
		if err := printTable(w, l, p.format == "wide", true, len(lists) > 1); err != nil {
			return err
		}
	}
	return nil
}

func (p *printer) structured(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	switch p.format {
	case "yaml":
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "jsonpath":
		// As kubectl, the template runs over the JSON, not Go's types.
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		if err := p.jp.Execute(w, generic); err != nil {
			return &exitError{1, fmt.Errorf("--output jsonpath: %w", err)}
		}
		return nil
	}
	var out strings.Builder
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "    ") // kubectl's indent
	if err := enc.Encode(json.RawMessage(b)); err != nil {
		return err
	}
	_, err = io.WriteString(w, out.String())
	return err
}

// age prints a duration the way kubectl does: 45s, 12m, 3h, 5d.
func age(t time.Time) string { return api.Age(t, time.Now()) }

// Local names for the API's list types, to keep the printers short.
type (
	apiDeployment = api.DeploymentStatus
	apiService    = reconcile.ServiceView
	apiRevision   = api.RevisionSummary
)

// apiNamespace is a namespace the applied revision declares or uses
// (Active), or one whose Namespace left it while its pods stop
// (Terminating), as Kubernetes' phases.
type apiNamespace struct{ Name, Phase string }
