package main

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/schemas/report"
)

// completionTimeout bounds what a completion asks a master: a shell waits
// on it at every TAB.
const completionTimeout = 3 * time.Second

// addCompletions gives the commands that name cluster objects their
// shells' completions (cobra's completion command writes the scripts):
// kinds and object names (asked of the master, nothing without one) for
// get and describe, namespaces for -n, and every -o's values.
func addCompletions(root *cobra.Command) {
	outputs := map[string][]string{"get": getOutputs, "diff": diffOutputs}
	for _, cmd := range root.Commands() {
		switch cmd.Name() {
		case "get", "describe":
			cmd.ValidArgsFunction = completeObjects
		}
		if cmd.Flags().Lookup("namespace") != nil {
			cmd.RegisterFlagCompletionFunc("namespace", completeNamespaces)
		}
		if values := outputs[cmd.Name()]; values != nil {
			cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
		if cmd.Name() == "validate" {
			cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(report.Formats, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

// completeObjects completes a kind, then names of that kind: bare names
// for get (in -n's namespace when given), namespace/name for describe,
// which takes either and finds a bare name in any namespace.
func completeObjects(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return slices.Sorted(maps.Keys(nameKinds)), cobra.ShellCompDirectiveNoFileComp
	}
	if cmd.Name() == "describe" && len(args) > 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	kind, err := resourceKind(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	namespace, _ := cmd.Flags().GetString("namespace")
	var out []string
	listed(cmd, func(ctx context.Context, c *api.Client) {
		l, err := list(ctx, c, kind)
		if err != nil {
			return
		}
		for _, it := range l.items {
			switch {
			case namespace != "" && it.namespace != "" && it.namespace != namespace:
			case it.namespace != "" && cmd.Name() == "describe":
				out = append(out, it.namespace+"/"+it.name)
			case !slices.Contains(args[1:], it.name):
				out = append(out, it.name)
			}
		}
	})
	slices.Sort(out)
	return slices.Compact(out), cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces lists the applied revision's namespaces: its
// Namespace objects and every namespace its objects are in.
func completeNamespaces(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	seen := map[string]bool{}
	listed(cmd, func(ctx context.Context, c *api.Client) {
		applied, err := c.AppliedObjects(ctx)
		if err != nil {
			return
		}
		for _, o := range applied.Objects {
			if o.ID.Kind == "Namespace" {
				seen[o.ID.Name] = true
			} else if o.ID.Namespace != "" {
				seen[o.ID.Namespace] = true
			}
		}
	})
	var out []string
	for ns := range seen {
		if strings.HasPrefix(ns, toComplete) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// listed calls f with the client of cmd's --config, bounded in time; it
// quietly does nothing without a config: completions then offer nothing.
func listed(cmd *cobra.Command, f func(ctx context.Context, c *api.Client)) {
	path, _ := cmd.Flags().GetString("config")
	c, err := newClient(path)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	f(ctx, c)
}
