package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// This file and describepod.go write `berth describe` in kubectl
// describe's layout: the objects `berth get` lists (its list, the API's
// records and the Kubernetes-shaped objects of kube.go, with the applied
// revision's declared specs) through a prefix writer as kubectl's.

func newDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "describe KIND NAME",
		Short: "Show one object in full, as kubectl describe: a node, pod, deployment, daemonset, statefulset, job, cronjob, " +
			"service, pvc, configmap, secret, namespace or revision",
		Long: `describe shows one object in kubectl describe's layout, what relates to it
(a node's pods, a Deployment's replica sets by template hash, a Service's
endpoints) and, last, its events. NAME may be namespace/name; a bare name is
looked up in every namespace. A revision is named by a prefix of its commit.
A Secret's values are never shown, only each key's size, as kubectl does.`,
		Args: cobra.ExactArgs(2),
	}
	client := clientFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		return runDescribe(cmd.Context(), c, cmd.OutOrStdout(), args[0], args[1])
	}
	return cmd
}

// runDescribe writes the object of kind named arg, then its events.
func runDescribe(ctx context.Context, c *api.Client, w io.Writer, kindArg, arg string) error {
	kind, err := resourceKind(kindArg)
	if err != nil {
		return err
	}
	if kind == "all" {
		return &exitError{2, fmt.Errorf("describe takes one kind, not all")}
	}
	l, it, err := find(ctx, c, kind, arg)
	if err != nil {
		return err
	}
	d := &describer{ctx: ctx, c: c, w: newPrefixWriter(w), objs: l.objs}
	if err := describers[kind](d, it); err != nil {
		return &exitError{1, err}
	}
	if err := d.w.flush(); err != nil {
		return err
	}
	return describeEvents(ctx, w, c, kind, it.namespace, it.name)
}

// matches reports whether a user's NAME (name or namespace/name) names it.
func matches(arg, namespace, name string) bool {
	if ns, n, ok := strings.Cut(arg, "/"); ok {
		return ns == namespace && n == name
	}
	return arg == name
}

// find lists kind as berth get does and picks the item arg names: a
// revision by a prefix of its commit, others by name or namespace/name.
// A bare name in two namespaces, or a prefix of two commits, is refused.
func find(ctx context.Context, c *api.Client, kind, arg string) (listing, item, error) {
	l, err := list(ctx, c, kind)
	if err != nil {
		return l, item{}, &exitError{1, err}
	}
	var found []item
	for _, it := range l.items {
		if kind == "revisions" && arg != "" && strings.HasPrefix(it.name, arg) || kind != "revisions" && matches(arg, it.namespace, it.name) {
			found = append(found, it)
		}
	}
	switch {
	case len(found) == 0:
		return l, item{}, &exitError{1, fmt.Errorf("%s %q not found", nameKinds[kind], arg)}
	case len(found) > 1 && kind == "revisions":
		return l, item{}, &exitError{1, fmt.Errorf("%q is a prefix of %d commits: give more of it", arg, len(found))}
	case len(found) > 1:
		var where []string
		for _, it := range found {
			where = append(where, it.namespace+"/"+it.name)
		}
		return l, item{}, &exitError{1, fmt.Errorf("%s %q is in more than one namespace: name one of %s", nameKinds[kind], arg, strings.Join(where, ", "))}
	}
	return l, found[0], nil
}

// prefixWriter is kubectl describe's: each line at an indentation level
// (two spaces a level), its tabs aligned by one tabwriter over the whole
// description.
type prefixWriter struct{ tw *tabwriter.Writer }

// kubectl's LEVEL_0 to LEVEL_3.
const (
	level0 = iota
	level1
	level2
	level3
)

func newPrefixWriter(w io.Writer) *prefixWriter {
	return &prefixWriter{tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)} // kubectl's settings
}

func (p *prefixWriter) write(level int, format string, a ...any) {
	fmt.Fprintf(p.tw, strings.Repeat("  ", level)+format, a...)
}

func (p *prefixWriter) flush() error { return p.tw.Flush() }

// describer is one description: where it writes, and what it reads
// beyond the listing: all pods, read once when first needed.
type describer struct {
	ctx  context.Context
	c    *api.Client
	w    *prefixWriter
	objs revObjects
	pods []state.Pod
}

func (d *describer) allPods() ([]state.Pod, error) {
	if d.pods == nil {
		pods, _, err := d.c.Pods(d.ctx, "", nil)
		if err != nil {
			return nil, err
		}
		d.pods = append([]state.Pod{}, pods...)
	}
	return d.pods, nil
}

// declared decodes the applied revision's object of kind into v (a
// schemas/objects type); an object the revision does not have leaves v
// as it is.
func (d *describer) declared(kind, namespace, name string, v any) {
	if o, ok := d.objs[kind+"/"+namespace+"/"+name]; ok {
		raw, _ := json.Marshal(o) // decoded from JSON once already
		json.Unmarshal(raw, v)
	}
}

var describers = map[string]func(*describer, item) error{
	"pods": (*describer).pod, "deployments": (*describer).deployment, "daemonsets": (*describer).daemonSet,
	"statefulsets": (*describer).statefulSet, "jobs": (*describer).job, "cronjobs": (*describer).cronJob,
	"services": (*describer).service, "claims": (*describer).claim, "nodes": (*describer).node,
	"configmaps": (*describer).configMap, "secrets": (*describer).secret, "namespaces": (*describer).namespace,
	"revisions": (*describer).revision,
}

// header writes Name, Namespace, Labels and Annotations, which every kind
// but nodes and revisions starts with.
func (d *describer) header(m kubeMeta) {
	d.w.write(level0, "Name:\t%s\n", m.Name)
	if m.Namespace != "" {
		d.w.write(level0, "Namespace:\t%s\n", m.Namespace)
	}
	d.labels(level0, "Labels", m.Labels)
	d.annotations(level0, "Annotations", m.Annotations)
}

// labels writes a map one key=value a line, aligned, as kubectl's
// printLabelsMultiline.
func (d *describer) labels(level int, title string, m map[string]string) {
	d.multiline(level, title, m, "%s=%s\n")
}

// lastApplied is kubectl's annotation of the whole object as applied,
// which describe leaves out as kubectl does (a Secret's would hold its
// values).
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

func (d *describer) annotations(level int, title string, m map[string]string) {
	if _, ok := m[lastAppliedAnnotation]; ok {
		m = maps.Clone(m)
		delete(m, lastAppliedAnnotation)
	}
	d.multiline(level, title, m, "%s: %s\n")
}

func (d *describer) multiline(level int, title string, m map[string]string, format string) {
	d.w.write(level, "%s:\t", title)
	if len(m) == 0 {
		d.w.write(level0, "<none>\n")
		return
	}
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			d.w.write(level, "\t")
		}
		d.w.write(level0, format, k, m[k])
	}
}

// describeTime is kubectl's: RFC 1123 with the zone's offset.
func describeTime(t time.Time) string {
	if t.IsZero() {
		return "<unset>"
	}
	return t.Format(time.RFC1123Z)
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// conditions writes a kube.go object's conditions as kubectl's table;
// columns are the condition's fields to show after Type and Status.
func (d *describer) conditions(cs []condition, reason, times bool) {
	d.w.write(level0, "Conditions:\n")
	head, rule := "Type\tStatus", "----\t------"
	if times {
		head, rule = head+"\tLastTransitionTime", rule+"\t------------------"
	}
	if reason {
		head, rule = head+"\tReason", rule+"\t------"
	}
	if times {
		head, rule = head+"\tMessage", rule+"\t-------"
	}
	d.w.write(level1, "%s\n", head)
	d.w.write(level1, "%s\n", rule)
	for _, c := range cs {
		row := c.Type + " \t" + c.Status
		if times {
			t := "<unknown>"
			if c.LastTransitionTime != nil {
				t = describeTime(time.Time(*c.LastTransitionTime))
			}
			row += " \t" + t
		}
		if reason {
			row += " \t" + c.Reason
		}
		if times {
			row += " \t" + c.Message
		}
		d.w.write(level1, "%s\n", row)
	}
}

// status is a kube.go object's status map.
func status(k any) map[string]any {
	m, _ := k.(kubeObject).Status.(map[string]any)
	return m
}

// podsStatus writes kubectl's "Pods Status:" of a workload's pods.
func (d *describer) podsStatus(kind, namespace, name string) error {
	pods, err := d.owned(kind, namespace, name)
	if err != nil {
		return err
	}
	count := map[state.PodPhase]int{}
	for _, p := range pods {
		count[podPhase(p)]++
	}
	d.w.write(level0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n",
		count[state.PodRunning], count[state.PodPending], count[state.PodSucceeded], count[state.PodFailed])
	return nil
}

// selectorHeader is a workload's header in kubectl's order for
// DaemonSets, StatefulSets and Jobs: Name, Namespace, Selector, the lines
// given, Labels, Annotations.
func (d *describer) selectorHeader(m kubeMeta, selector string, lines ...string) {
	d.w.write(level0, "Name:\t%s\n", m.Name)
	d.w.write(level0, "Namespace:\t%s\n", m.Namespace)
	d.w.write(level0, "Selector:\t%s\n", orNone(selector))
	for _, l := range lines {
		d.w.write(level0, "%s\n", l)
	}
	d.labels(level0, "Labels", m.Labels)
	d.annotations(level0, "Annotations", m.Annotations)
}

// owned are the pods of the owner of kind ("" a Deployment), as
// ownedBy in the API: namespace, OwnerKind and the owner's name.
func (d *describer) owned(kind, namespace, name string) ([]state.Pod, error) {
	pods, err := d.allPods()
	if err != nil {
		return nil, err
	}
	var out []state.Pod
	for _, p := range pods {
		if p.Namespace == namespace && p.OwnerKind == kind && p.Deployment == name {
			out = append(out, p)
		}
	}
	return out, nil
}

func (d *describer) deployment(it item) error {
	st := it.api.(apiDeployment)
	var dep objects.Deployment
	d.declared("Deployment", st.Namespace, st.Name, &dep)
	k := it.kube.(kubeObject)
	d.header(k.Metadata)
	d.w.write(level0, "Selector:\t%s\n", orNone(labelSelector(dep.Spec.Selector)))
	s := status(k)
	d.w.write(level0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		st.Replicas, s["updatedReplicas"], s["replicas"], s["availableReplicas"], s["unavailableReplicas"])
	d.w.write(level0, "StrategyType:\t%s\n", dep.Spec.Strategy.Type)
	d.w.write(level0, "MinReadySeconds:\t%d\n", dep.Spec.MinReadySeconds)
	if ru := dep.Spec.Strategy.RollingUpdate; ru != nil {
		d.w.write(level0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", ru.MaxUnavailable, ru.MaxSurge)
	}
	d.podTemplate(dep.Spec.Template)
	d.conditions(s["conditions"].([]condition), true, false)
	// berth has no ReplicaSets: pods of one template hash are one.
	pods, err := d.owned("", st.Namespace, st.Name)
	if err != nil {
		return err
	}
	byHash := map[string]int{}
	for _, p := range pods {
		if !p.Terminating {
			byHash[p.TemplateHash]++
		}
	}
	var old []string
	for _, h := range slices.Sorted(maps.Keys(byHash)) {
		if h != st.TemplateHash {
			old = append(old, fmt.Sprintf("%s-%s (%d/%d replicas created)", st.Name, h, byHash[h], byHash[h]))
		}
	}
	d.w.write(level0, "OldReplicaSets:\t%s\n", orNone(strings.Join(old, ", ")))
	d.w.write(level0, "NewReplicaSet:\t%s-%s (%d/%d replicas created)\n", st.Name, st.TemplateHash, byHash[st.TemplateHash], st.Replicas)
	return nil
}

func (d *describer) daemonSet(it item) error {
	st := it.api.(api.DaemonSetStatus)
	var ds objects.DaemonSet
	d.declared("DaemonSet", st.Namespace, st.Name, &ds)
	d.selectorHeader(it.kube.(kubeObject).Metadata, labelSelector(ds.Spec.Selector), "Node-Selector:\t"+orNone(showSelector(st.NodeSelector)))
	d.w.write(level0, "Desired Number of Nodes Scheduled: %d\n", st.Desired)
	d.w.write(level0, "Current Number of Nodes Scheduled: %d\n", st.Current)
	d.w.write(level0, "Number of Nodes Scheduled with Up-to-date Pods: %d\n", st.UpToDate)
	d.w.write(level0, "Number of Nodes Scheduled with Available Pods: %d\n", st.Ready)
	d.w.write(level0, "Number of Nodes Misscheduled: 0\n")
	if err := d.podsStatus(reconcile.KindDaemonSet, st.Namespace, st.Name); err != nil {
		return err
	}
	d.podTemplate(ds.Spec.Template)
	return nil
}

func (d *describer) statefulSet(it item) error {
	st := it.api.(api.StatefulSetStatus)
	var ss objects.StatefulSet
	d.declared("StatefulSet", st.Namespace, st.Name, &ss)
	d.selectorHeader(it.kube.(kubeObject).Metadata, labelSelector(ss.Spec.Selector))
	d.w.write(level0, "Replicas:\t%d desired | %d total\n", st.Replicas, st.Current)
	d.w.write(level0, "Update Strategy:\t%s\n", ss.Spec.UpdateStrategy.Type)
	if ru := ss.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		d.w.write(level1, "Partition:\t%d\n", ru.Partition)
	}
	if err := d.podsStatus(reconcile.KindStatefulSet, st.Namespace, st.Name); err != nil {
		return err
	}
	d.podTemplate(ss.Spec.Template)
	if len(ss.Spec.VolumeClaimTemplates) == 0 {
		d.w.write(level0, "Volume Claims:\t<none>\n")
		return nil
	}
	d.w.write(level0, "Volume Claims:\n")
	for _, t := range ss.Spec.VolumeClaimTemplates {
		d.w.write(level1, "Name:\t%s\n", t.Metadata.Name)
		d.w.write(level1, "StorageClass:\t%s\n", storageClass(t.Spec.StorageClassName))
		d.labels(level1, "Labels", t.Metadata.Labels)
		d.annotations(level1, "Annotations", t.Metadata.Annotations)
		d.w.write(level1, "Capacity:\t%s\n", orNone(string(t.Spec.Resources.Requests.Storage)))
		d.w.write(level1, "Access Modes:\t%s\n", accessModes(t.Spec.AccessModes))
	}
	return nil
}

func storageClass(s *string) string {
	if s == nil {
		return "local-path" // berth's only one, as get pvc shows it
	}
	return *s
}

// accessModes are kubectl's short names: RWO, ROX, RWX, RWOP.
func accessModes(modes []string) string {
	short := map[string]string{"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
	var out []string
	for _, m := range modes {
		out = append(out, cmp.Or(short[m], m))
	}
	return strings.Join(out, ",")
}

func (d *describer) job(it item) error {
	j := it.api.(state.Job)
	k := it.kube.(kubeObject)
	// As Kubernetes selects a Job's pods (and as berth get -o wide shows it).
	d.selectorHeader(k.Metadata, "batch.kubernetes.io/job-name="+j.Name)
	if j.CronJob != "" {
		d.w.write(level0, "Controlled By:\tCronJob/%s\n", j.CronJob)
	}
	d.w.write(level0, "Parallelism:\t%d\n", j.Spec.Parallelism)
	d.w.write(level0, "Completions:\t%d\n", j.Spec.Completions)
	d.w.write(level0, "Backoff Limit:\t%d\n", j.Spec.BackoffLimit)
	d.w.write(level0, "Start Time:\t%s\n", describeTime(j.Status.Start))
	if j.Status.Condition == state.JobComplete {
		d.w.write(level0, "Completed At:\t%s\n", describeTime(j.Status.Finished))
	}
	if j.Status.Done() && !j.Status.Start.IsZero() {
		d.w.write(level0, "Duration:\t%s\n", api.Age(j.Status.Start, j.Status.Finished))
	}
	if j.Spec.ActiveDeadlineSeconds != nil {
		d.w.write(level0, "Active Deadline Seconds:\t%ds\n", *j.Spec.ActiveDeadlineSeconds)
	}
	pods, err := d.owned(reconcile.KindJob, j.Namespace, j.Name)
	if err != nil {
		return err
	}
	active := 0
	for _, p := range pods {
		if !p.Finished() {
			active++
		}
	}
	d.w.write(level0, "Pods Statuses:\t%d Active / %d Succeeded / %d Failed\n", active, j.Status.Succeeded, j.Status.Failed)
	d.podTemplate(j.Spec.Template)
	if cs, ok := status(k)["conditions"].([]condition); ok {
		d.conditions(cs, true, false)
	}
	return nil
}

func (d *describer) cronJob(it item) error {
	st := it.api.(api.CronJobStatus)
	var cj objects.CronJob
	d.declared("CronJob", st.Namespace, st.Name, &cj)
	d.header(it.kube.(kubeObject).Metadata)
	s := cj.Spec
	d.w.write(level0, "Schedule:\t%s\n", s.Schedule)
	if s.TimeZone != "" {
		d.w.write(level0, "Time Zone:\t%s\n", s.TimeZone)
	}
	d.w.write(level0, "Concurrency Policy:\t%s\n", s.ConcurrencyPolicy)
	d.w.write(level0, "Suspend:\t%s\n", boolWord(st.Suspend))
	d.w.write(level0, "Successful Job History Limit:\t%d\n", s.SuccessfulJobsHistoryLimit)
	d.w.write(level0, "Failed Job History Limit:\t%d\n", s.FailedJobsHistoryLimit)
	if s.StartingDeadlineSeconds != nil {
		d.w.write(level0, "Starting Deadline Seconds:\t%ds\n", *s.StartingDeadlineSeconds)
	} else {
		d.w.write(level0, "Starting Deadline Seconds:\t<unset>\n")
	}
	js := s.JobTemplate.Spec
	d.w.write(level0, "Parallelism:\t%d\n", js.Parallelism)
	d.w.write(level0, "Completions:\t%d\n", js.Completions)
	d.podTemplate(js.Template)
	d.w.write(level0, "Last Schedule Time:\t%s\n", describeTime(st.LastSchedule))
	jobs, err := d.c.Jobs(d.ctx)
	if err != nil {
		return err
	}
	var active []string
	for _, j := range jobs {
		if j.Namespace == st.Namespace && j.CronJob == st.Name && !j.Status.Done() {
			active = append(active, j.Name)
		}
	}
	d.w.write(level0, "Active Jobs:\t%s\n", orNone(strings.Join(active, ", ")))
	return nil
}

func (d *describer) service(it item) error {
	v := it.api.(apiService)
	var svc objects.Service
	d.declared("Service", v.Namespace, v.Name, &svc)
	d.header(it.kube.(kubeObject).Metadata)
	d.w.write(level0, "Selector:\t%s\n", orNone(showSelector(svc.Spec.Selector)))
	d.w.write(level0, "Type:\t%s\n", v.Type)
	if v.Type == "ExternalName" {
		d.w.write(level0, "External Name:\t%s\n", v.ExternalName)
	} else {
		d.w.write(level0, "IP:\t%s\n", orNone(v.ClusterIP))
		d.w.write(level0, "IPs:\t%s\n", orNone(v.ClusterIP))
	}
	if len(v.Ingress) > 0 {
		d.w.write(level0, "LoadBalancer Ingress:\t%s\n", strings.Join(v.Ingress, ", "))
	}
	for _, p := range v.Ports {
		d.w.write(level0, "Port:\t%s\t%d/%s\n", cmp.Or(p.Name, "<unset>"), p.Port, p.Protocol)
		if i := slices.IndexFunc(svc.Spec.Ports, func(sp objects.ServicePort) bool { return sp.Port == p.Port && sp.Protocol == p.Protocol }); i >= 0 && svc.Spec.Ports[i].TargetPort != nil {
			d.w.write(level0, "TargetPort:\t%s/%s\n", svc.Spec.Ports[i].TargetPort, p.Protocol)
		}
		if p.NodePort != 0 {
			d.w.write(level0, "NodePort:\t%s\t%d/%s\n", cmp.Or(p.Name, "<unset>"), p.NodePort, p.Protocol)
		}
		var eps []string
		for _, e := range p.Endpoints {
			eps = append(eps, fmt.Sprintf("%s:%d", e.IP, e.Port))
		}
		d.w.write(level0, "Endpoints:\t%s\n", strings.Join(eps, ","))
	}
	affinity := "None"
	if v.AffinityTimeout > 0 {
		affinity = "ClientIP"
	}
	d.w.write(level0, "Session Affinity:\t%s\n", affinity)
	if v.Type == "NodePort" || v.Type == "LoadBalancer" {
		d.w.write(level0, "External Traffic Policy:\t%s\n", cmp.Or(v.ExternalTrafficPolicy, "Cluster"))
	}
	d.w.write(level0, "Internal Traffic Policy:\t%s\n", cmp.Or(v.InternalTrafficPolicy, "Cluster"))
	return nil
}

func (d *describer) claim(it item) error {
	c := it.api.(api.ClaimStatus)
	k := it.kube.(kubeObject)
	d.w.write(level0, "Name:\t%s\n", c.Name)
	d.w.write(level0, "Namespace:\t%s\n", c.Namespace)
	d.w.write(level0, "StorageClass:\tlocal-path\n")
	d.w.write(level0, "Status:\t%s\n", c.Phase)
	d.w.write(level0, "Node:\t%s\n", orNone(c.NodeName)) // where its data live: berth's own line
	d.labels(level0, "Labels", k.Metadata.Labels)
	d.annotations(level0, "Annotations", k.Metadata.Annotations)
	capacity := ""
	if c.Phase == "Bound" {
		capacity = bytesQuantity(c.Bytes)
	}
	d.w.write(level0, "Capacity:\t%s\n", capacity)
	d.w.write(level0, "Access Modes:\t%s\n", accessModes(c.AccessModes))
	d.w.write(level0, "VolumeMode:\tFilesystem\n")
	if c.StatefulSet != "" {
		d.w.write(level0, "Controlled By:\tStatefulSet/%s\n", c.StatefulSet)
	}
	d.w.write(level0, "Used By:\t%s\n", orNone(strings.Join(c.Pods, ", ")))
	return nil
}

func (d *describer) node(it item) error {
	n := it.api.(state.Node)
	k := it.kube.(kubeObject)
	var roles []string
	for l := range n.Labels {
		if r, ok := strings.CutPrefix(l, "node-role.kubernetes.io/"); ok {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	d.w.write(level0, "Name:\t%s\n", n.Name)
	d.w.write(level0, "Roles:\t%s\n", orNone(strings.Join(roles, ",")))
	d.labels(level0, "Labels", n.Labels)
	d.annotations(level0, "Annotations", nil)
	// The taints Kubernetes would put on the node for what berth does.
	var taints []string
	if !n.Ready {
		taints = append(taints, "node.kubernetes.io/not-ready:NoSchedule")
	}
	if n.DiskPressure {
		taints = append(taints, "node.kubernetes.io/disk-pressure:NoSchedule")
	}
	if n.Unschedulable {
		taints = append(taints, "node.kubernetes.io/unschedulable:NoSchedule")
	}
	d.list(level0, "Taints", taints)
	d.w.write(level0, "Unschedulable:\t%t\n", n.Unschedulable)
	if n.Draining {
		d.w.write(level0, "Draining:\ttrue\n")
	}
	s := status(k)
	d.conditions(s["conditions"].([]condition), true, true)
	d.w.write(level0, "Addresses:\n")
	if addrs, ok := s["addresses"].([]map[string]string); ok {
		for _, a := range addrs {
			d.w.write(level1, "%s:\t%s\n", a["type"], a["address"])
		}
	}
	for _, title := range []string{"Capacity", "Allocatable"} {
		d.w.write(level0, "%s:\n", title)
		res := s[strings.ToLower(title)].(map[string]string)
		for _, r := range slices.Sorted(maps.Keys(res)) {
			d.w.write(level1, "%s:\t%s\n", r, res[r])
		}
	}
	d.w.write(level0, "PodCIDR:\t%s\n", n.PodCIDR)
	d.w.write(level0, "PodCIDRs:\t%s\n", n.PodCIDR)
	pods, err := d.allPods()
	if err != nil {
		return err
	}
	var on []state.Pod
	for _, p := range pods {
		if p.NodeName == n.Name && !p.Finished() {
			on = append(on, p)
		}
	}
	d.w.write(level0, "Non-terminated Pods:\t(%d in total)\n", len(on))
	d.w.write(level1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
	d.w.write(level1, "---------\t----\t------------\t----------\t---------------\t-------------\t---\n")
	var reqCPU, reqMem, limCPU, limMem int64
	share := func(v, of int64, q func(int64) string) string {
		pct := int64(0)
		if of > 0 {
			pct = v * 100 / of
		}
		return fmt.Sprintf("%s (%d%%)", q(v), pct)
	}
	for _, p := range on {
		rc, rm, lc, lm := reconcile.PodResources(&p.Spec)
		reqCPU, reqMem, limCPU, limMem = reqCPU+rc, reqMem+rm, limCPU+lc, limMem+lm
		d.w.write(level1, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name, share(rc, n.CPUMilli, milli), share(lc, n.CPUMilli, milli),
			share(rm, n.MemoryBytes, bytesQuantity), share(lm, n.MemoryBytes, bytesQuantity), age(p.Created))
	}
	d.w.write(level0, "Allocated resources:\n")
	d.w.write(level1, "(Total limits may be over 100 percent, i.e., overcommitted.)\n")
	d.w.write(level1, "Resource\tRequests\tLimits\n")
	d.w.write(level1, "--------\t--------\t------\n")
	d.w.write(level1, "cpu\t%s\t%s\n", share(reqCPU, n.CPUMilli, milli), share(limCPU, n.CPUMilli, milli))
	d.w.write(level1, "memory\t%s\t%s\n", share(reqMem, n.MemoryBytes, bytesQuantity), share(limMem, n.MemoryBytes, bytesQuantity))
	return nil
}

// list writes items one a line, aligned, or <none>.
func (d *describer) list(level int, title string, items []string) {
	d.w.write(level, "%s:\t", title)
	if len(items) == 0 {
		d.w.write(level0, "<none>\n")
	}
	for i, s := range items {
		if i > 0 {
			d.w.write(level, "\t")
		}
		d.w.write(level0, "%s\n", s)
	}
}

func (d *describer) configMap(it item) error {
	var cm objects.ConfigMap
	if err := json.Unmarshal(it.api.(json.RawMessage), &cm); err != nil {
		return err
	}
	d.header(kubeMeta{Name: cm.Metadata.Name, Namespace: cm.Metadata.Namespace, Labels: cm.Metadata.Labels, Annotations: cm.Metadata.Annotations})
	// As kubectl: each key, a rule, its value as is.
	d.w.write(level0, "\nData\n====\n")
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		d.w.write(level0, "%s:\n----\n%s\n\n", k, cm.Data[k])
	}
	d.w.write(level0, "\nBinaryData\n====\n")
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		d.w.write(level0, "%s: %d bytes\n", k, base64Len(cm.BinaryData[k]))
	}
	d.w.write(level0, "\n")
	return nil
}

// base64Len is the length of what s encodes.
func base64Len(s string) int {
	n := len(s) / 4 * 3
	return n - strings.Count(s[max(0, len(s)-2):], "=")
}

// secret writes a Secret as kubectl does: each key with its size, never
// its value. The API gives values to admin tokens only, so a read-only
// token cannot know the sizes either: its keys say so.
func (d *describer) secret(it item) error {
	var sec objects.Secret
	if err := json.Unmarshal(it.api.(json.RawMessage), &sec); err != nil {
		return err
	}
	who, err := d.c.WhoAmI(d.ctx)
	if err != nil {
		return err
	}
	d.header(kubeMeta{Name: sec.Metadata.Name, Namespace: sec.Metadata.Namespace, Labels: sec.Metadata.Labels, Annotations: sec.Metadata.Annotations})
	d.w.write(level0, "\nType:\t%s\n", sec.Type)
	d.w.write(level0, "\nData\n====\n")
	for _, k := range slices.Sorted(maps.Keys(sec.Data)) {
		if who.Role != auth.RoleAdmin {
			d.w.write(level0, "%s:\t<size shown to admin tokens only>\n", k)
			continue
		}
		d.w.write(level0, "%s:\t%d bytes\n", k, base64Len(sec.Data[k]))
	}
	return nil
}

func (d *describer) namespace(it item) error {
	d.header(it.kube.(kubeObject).Metadata)
	d.w.write(level0, "Status:\t%s\n", it.api.(apiNamespace).Phase)
	d.w.write(level0, "\nNo resource quota.\n\nNo LimitRange resource.\n")
	return nil
}

// revision is berth's own kind, in the same layout.
func (d *describer) revision(it item) error {
	r := it.api.(apiRevision)
	d.w.write(level0, "Commit:\t%s\n", r.Commit)
	d.w.write(level0, "Author:\t%s\n", r.Author)
	d.w.write(level0, "Time:\t%s\n", describeTime(r.Time))
	d.w.write(level0, "Status:\t%s\n", r.Status)
	d.w.write(level0, "Message:\n")
	for _, l := range strings.Split(strings.TrimRight(r.Message, "\n"), "\n") {
		if l == "" {
			d.w.write(level0, "\n")
			continue
		}
		d.w.write(level1, "%s\n", l)
	}
	d.w.write(level0, "Objects:\t%d\n", r.Objects)
	d.w.write(level0, "Seen:\t%s\n", describeTime(r.Seen))
	d.w.write(level0, "Committed:\t%s\n", describeTime(r.Committed))
	d.w.write(level0, "Seen→Committed:\t%s\n", api.SeenToCommitted(r.RevisionTiming))
	d.w.write(level0, "Converged:\t%s\n", api.Converged(r.RevisionTiming, r.Status))
	if r.Outcome != "" {
		d.w.write(level0, "Outcome:\t%s\n", r.Outcome)
		d.w.write(level0, "Settled:\t%s\n", describeTime(r.Settled))
		if r.Detail != "" {
			d.w.write(level0, "Detail:\t%s\n", r.Detail)
		}
	}
	if len(r.Diagnostics) == 0 {
		d.w.write(level0, "Diagnostics:\t<none>\n")
		return nil
	}
	d.w.write(level0, "Diagnostics:\n")
	for _, diag := range r.Diagnostics {
		d.w.write(level1, "%s\n", diag.String())
	}
	return nil
}
