package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the applied commit, the sync state and the last error",
		Args:  cobra.NoArgs,
	}
	client := clientFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		st, err := c.Status(cmd.Context())
		if err != nil {
			return &exitError{1, err}
		}
		printStatus(cmd.OutOrStdout(), st)
		return nil
	}
	return cmd
}

func newDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show one object in full: a node, pod, deployment, daemonset, statefulset, job, cronjob, service, pvc or revision",
		Long: `describe shows one object and what relates to it. NAME may be
namespace/name; a bare name is looked up in every namespace. A revision is
named by a prefix of its commit.`,
		Args: cobra.ExactArgs(2),
	}
	client := clientFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kind, err := resourceKind(args[0])
		if err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		obj, related, err := find(cmd, c, kind, args[1])
		if err != nil {
			return err
		}
		if err := describe(cmd.OutOrStdout(), obj, related); err != nil {
			return err
		}
		return describeEvents(cmd.Context(), cmd.OutOrStdout(), c, kind, obj)
	}
	return cmd
}

// matches reports whether a user's NAME (name or namespace/name) names it.
func matches(arg, namespace, name string) bool {
	if ns, n, ok := strings.Cut(arg, "/"); ok {
		return ns == namespace && n == name
	}
	return arg == name
}

// find fetches one object and, for the kinds that have them, its pods.
func find(cmd *cobra.Command, c *api.Client, kind, arg string) (any, any, error) {
	ctx := cmd.Context()
	pods, _, err := c.Pods(ctx, "", nil)
	if err != nil {
		return nil, nil, &exitError{1, err}
	}
	var found, related any
	switch kind {
	case "nodes":
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, n := range nodes {
			if n.Name == arg {
				found = n
				var on []string
				for _, p := range pods {
					if p.NodeName == n.Name {
						on = append(on, p.Namespace+"/"+p.Name)
					}
				}
				related = map[string][]string{"pods": on}
			}
		}
	case "pods":
		for _, p := range pods {
			if matches(arg, p.Namespace, p.Name) {
				found = p
			}
		}
	case "deployments":
		deps, err := c.Deployments(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, d := range deps {
			if matches(arg, d.Namespace, d.Name) {
				found, related = d, ownedPods(pods, "", d.Namespace, d.Name)
			}
		}
	case "daemonsets":
		dss, err := c.DaemonSets(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, d := range dss {
			if matches(arg, d.Namespace, d.Name) {
				found, related = d, ownedPods(pods, reconcile.KindDaemonSet, d.Namespace, d.Name)
			}
		}
	case "statefulsets":
		sss, err := c.StatefulSets(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, s := range sss {
			if matches(arg, s.Namespace, s.Name) {
				found, related = s, ownedPods(pods, reconcile.KindStatefulSet, s.Namespace, s.Name)
			}
		}
	case "claims":
		claims, err := c.Claims(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, cl := range claims {
			if matches(arg, cl.Namespace, cl.Name) {
				found = cl
			}
		}
	case "jobs":
		jobs, err := c.Jobs(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, j := range jobs {
			if matches(arg, j.Namespace, j.Name) {
				found, related = j, ownedPods(pods, reconcile.KindJob, j.Namespace, j.Name)
			}
		}
	case "cronjobs":
		cjs, err := c.CronJobs(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, cj := range cjs {
			if matches(arg, cj.Namespace, cj.Name) {
				found = cj
			}
		}
	case "services":
		svcs, _, err := c.Services(ctx, nil)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, s := range svcs {
			if matches(arg, s.Namespace, s.Name) {
				found = s
			}
		}
	case "revisions":
		revs, err := c.Revisions(ctx)
		if err != nil {
			return nil, nil, &exitError{1, err}
		}
		for _, r := range revs {
			if strings.HasPrefix(r.Commit, arg) {
				found = r
				break
			}
		}
	}
	if found == nil {
		return nil, nil, &exitError{1, fmt.Errorf("%s %q not found", strings.TrimSuffix(kind, "s"), arg)}
	}
	return found, related, nil
}

// ownedPods lists the pods of the kind's ("" a Deployment's) owner.
func ownedPods(pods []state.Pod, kind, namespace, name string) map[string][]string {
	var mine []string
	for _, p := range pods {
		if p.Namespace == namespace && p.OwnerKind == kind && p.Deployment == name {
			mine = append(mine, fmt.Sprintf("%s (%s, template %s, node %s)", p.Name, podStatusWord(p), p.TemplateHash, orNone(p.NodeName)))
		}
	}
	return map[string][]string{"pods": mine}
}

func describe(w io.Writer, obj, related any) error {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	w.Write(b)
	if related != nil {
		b, err := yaml.Marshal(related)
		if err != nil {
			return err
		}
		w.Write(b)
	}
	return nil
}
