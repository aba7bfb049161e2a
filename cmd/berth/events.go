package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

// eventKinds are the kinds of the objects describe shows, as events name
// them.
var eventKinds = map[string]string{
	"nodes": "Node", "pods": "Pod", "deployments": "Deployment", "daemonsets": "DaemonSet", "statefulsets": "StatefulSet",
	"jobs": "Job", "cronjobs": "CronJob", "services": "Service", "claims": "PersistentVolumeClaim", "revisions": "Revision",
	"configmaps": "ConfigMap", "secrets": "Secret", "namespaces": "Namespace",
}

func newGetEventsCmd() *cobra.Command {
	var namespace, of, output string
	var all, watch bool
	cmd := &cobra.Command{
		Use:     "events",
		Aliases: []string{"event", "ev"},
		Short:   "List the recent events, oldest first, as kubectl get events does",
		Long: `events lists what controllers, agents and the gitops syncer recorded:
scheduling, rollouts, pulls, starts, failed probes, back-offs, evictions,
applied and rejected commits. Repeats are one event with a count, shown as
"(x3 over 2m)". The log is bounded (see docs/events.md): old events drop out.`,
		Args: cobra.NoArgs,
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace's events (default: every namespace's)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace's events (the default; as kubectl's -A)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after the list, print events as they are recorded or repeat, until interrupted")
	cmd.Flags().StringVar(&of, "for", "", "only the events of one object, KIND/NAME (pod/web-1), as kubectl events --for")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json, yaml (v1 Events, in a List), name or jsonpath=TEMPLATE")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		p, err := newPrinter(output)
		if err != nil {
			return err
		}
		if all && namespace != "" {
			return &exitError{2, fmt.Errorf("--namespace and --all-namespaces ask for different things: give one")}
		}
		f := api.EventFilter{Namespace: namespace}
		if of != "" {
			kind, name, ok := strings.Cut(of, "/")
			k, err := resourceKind(kind)
			if !ok || name == "" || err != nil {
				return &exitError{2, fmt.Errorf("--for %q: want KIND/NAME, such as pod/web-1 or deployment/web", of)}
			}
			f.Kind, f.Name = eventKinds[k], name
		}
		c, err := client()
		if err != nil {
			return err
		}
		return getEvents(cmd.Context(), cmd.OutOrStdout(), c, f, p, watch)
	}
	return cmd
}

// getEvents prints the events f selects (every namespace's when it names
// none), and with watch each event recorded or repeated since, until ctx
// ends.
func getEvents(ctx context.Context, w io.Writer, c *api.Client, f api.EventFilter, p *printer, watch bool) error {
	namespace := f.Namespace
	events, index, err := c.Events(ctx, f, nil)
	if err != nil {
		return &exitError{1, err}
	}
	t := newTable(w)
	header := []any{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}
	if namespace == "" {
		header = append([]any{"NAMESPACE"}, header...)
	}
	seen := map[string]int{} // each event's count as printed
	first := true
	print := func(events []state.Event) error {
		var fresh []state.Event
		for _, e := range events {
			key := eventKey(&e)
			if seen[key] != e.Count {
				seen[key] = e.Count
				fresh = append(fresh, e)
			}
		}
		if p.format != "" && p.format != "wide" {
			// As kubectl -w -o json: a List first, then each change alone.
			l := listing{kind: "events"}
			for i := range fresh {
				l.items = append(l.items, item{namespace: fresh[i].Object.Namespace, name: kubeEventName(&fresh[i]), kube: kubeEvent(&fresh[i])})
			}
			wasFirst := first
			first = false
			if !wasFirst {
				for _, it := range l.items {
					if err := p.print(w, []listing{{kind: "events", items: []item{it}}}, true); err != nil {
						return err
					}
				}
				return nil
			}
			return p.print(w, []listing{l}, false)
		}
		for _, e := range fresh {
			cols := []any{lastSeen(&e), e.Type, e.Reason, strings.ToLower(e.Object.Kind) + "/" + e.Object.Name, oneLine(e.Message)}
			if namespace == "" {
				cols = append([]any{orNone(e.Object.Namespace)}, cols...)
			}
			t.row(cols...)
		}
		return t.flush()
	}
	if p.format == "" || p.format == "wide" {
		t.row(header...)
	}
	if err := print(events); err != nil {
		return err
	}
	for watch {
		events, index, err = c.Events(ctx, f, &api.Watch{Index: index, Wait: watchWait})
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil // interrupted, as -w ends
		}
		if err != nil {
			return &exitError{1, err}
		}
		if err := print(events); err != nil {
			return err
		}
	}
	return nil
}

// kubeEvent is e as the Kubernetes API's v1 Event, for -o json|yaml.
func kubeEvent(e *state.Event) map[string]any {
	obj := map[string]any{"kind": e.Object.Kind, "name": e.Object.Name}
	if e.Object.Namespace != "" {
		obj["namespace"] = e.Object.Namespace
	}
	meta := map[string]any{"name": kubeEventName(e), "creationTimestamp": e.FirstTimestamp.UTC().Format(time.RFC3339)}
	if e.Object.Namespace != "" {
		meta["namespace"] = e.Object.Namespace
	}
	source := map[string]any{"component": e.Source.Component}
	if e.Source.Host != "" {
		source["host"] = e.Source.Host
	}
	return map[string]any{
		"apiVersion": "v1", "kind": "Event", "metadata": meta, "involvedObject": obj,
		"type": e.Type, "reason": e.Reason, "message": e.Message, "count": e.Count, "source": source,
		"firstTimestamp": e.FirstTimestamp.UTC().Format(time.RFC3339), "lastTimestamp": e.LastTimestamp.UTC().Format(time.RFC3339),
	}
}

// kubeEventName names an event as Kubernetes does, its object's name and
// a suffix: here a digest of what makes it one event in the log.
func kubeEventName(e *state.Event) string {
	sum := sha256.Sum256([]byte(eventKey(e)))
	return e.Object.Name + "." + hex.EncodeToString(sum[:8])
}

// eventKey identifies an event across answers, as the log aggregates it.
func eventKey(e *state.Event) string {
	return strings.Join([]string{e.Object.String(), e.Type, e.Reason, e.Source.Component, e.Source.Host, e.Message, e.FirstTimestamp.String()}, "\x00")
}

// lastSeen is kubectl's "5s", or "5s (x3 over 2m)" for a repeated event.
func lastSeen(e *state.Event) string { return api.LastSeen(e, time.Now()) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// describeEvents ends describe's output with the events of the object of
// kind (as berth get names kinds), namespace and name in kubectl's layout,
// or "Events: <none>".
func describeEvents(ctx context.Context, w io.Writer, c *api.Client, kind, namespace, name string) error {
	events, _, err := c.Events(ctx, api.EventFilter{Kind: eventKinds[kind], Namespace: namespace, Name: name}, nil)
	if err != nil {
		return &exitError{1, err}
	}
	printEventsSection(w, events)
	return nil
}

func printEventsSection(w io.Writer, events []state.Event) {
	if len(events) == 0 {
		fmt.Fprintln(w, "Events:  <none>")
		return
	}
	fmt.Fprintln(w, "Events:")
	t := newTable(w)
	t.row("  Type", "Reason", "Age", "From", "Message")
	t.row("  ----", "------", "----", "----", "-------")
	for _, e := range events {
		t.row("  "+e.Type, e.Reason, lastSeen(&e), e.Source.Component, oneLine(e.Message))
	}
	t.flush()
}
