package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

func newTopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top nodes|pods",
		Short: "Show the CPU and memory use of nodes or pods",
		Long: `Show CPU (cores, averaged over one second) and memory (working set) as
kubectl top does, from the containers' cgroup statistics, which each node's
agent reads when asked. A node's figures are the sum of its pods'
containers, not of the whole machine.`,
	}
	cmd.AddCommand(newTopNodesCmd(), newTopPodsCmd())
	return cmd
}

func newTopNodesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "nodes",
		Aliases: []string{"node", "no"},
		Short:   "Show the CPU and memory use of each node's pods",
		Args:    cobra.NoArgs,
	}
	client := clientFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		usage, err := c.Top(cmd.Context())
		if err != nil {
			return &exitError{1, err}
		}
		nodes, err := c.Nodes(cmd.Context())
		if err != nil {
			return &exitError{1, err}
		}
		return writeTopNodes(cmd.OutOrStdout(), cmd.ErrOrStderr(), usage, nodes)
	}
	return cmd
}

func writeTopNodes(out, errs io.Writer, usage []api.NodeUsage, nodes []state.Node) error {
	capacity := map[string]state.Node{}
	for _, n := range nodes {
		capacity[n.Name] = n
	}
	t := newTable(out)
	t.row("NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)")
	for _, u := range usage {
		if u.Error != "" {
			fmt.Fprintf(errs, "berth: node %s: %s\n", u.Node, u.Error)
			t.row(u.Node, "<unknown>", "<unknown>", "<unknown>", "<unknown>")
			continue
		}
		var cpu, mem int64
		for _, c := range u.Containers {
			cpu, mem = cpu+c.CPUMilli, mem+c.MemoryBytes
		}
		n := capacity[u.Node]
		t.row(u.Node, millicores(cpu), percent(cpu, n.CPUMilli), mebi(mem), percent(mem, n.MemoryBytes))
	}
	return t.flush()
}

func newTopPodsCmd() *cobra.Command {
	var (
		namespace  string
		all        bool
		containers bool
	)
	cmd := &cobra.Command{
		Use:     "pods",
		Aliases: []string{"pod", "po"},
		Short:   "Show the CPU and memory use of pods",
		Args:    cobra.NoArgs,
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pods' namespace")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "pods of every namespace")
	cmd.Flags().BoolVar(&containers, "containers", false, "a line per container")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if all && cmd.Flags().Changed("namespace") {
			return &exitError{2, fmt.Errorf("give -n or -A, not both")}
		}
		c, err := client()
		if err != nil {
			return err
		}
		usage, err := c.Top(cmd.Context())
		if err != nil {
			return &exitError{1, err}
		}
		if !all {
			for i := range usage {
				usage[i].Containers = slices.DeleteFunc(usage[i].Containers, func(c api.ContainerUsage) bool { return c.Namespace != namespace })
			}
		}
		return writeTopPods(cmd.OutOrStdout(), cmd.ErrOrStderr(), usage, all, containers)
	}
	return cmd
}

func writeTopPods(out, errs io.Writer, usage []api.NodeUsage, all, perContainer bool) error {
	var rows []api.ContainerUsage
	for _, u := range usage {
		if u.Error != "" {
			fmt.Fprintf(errs, "berth: node %s: %s (its pods are left out)\n", u.Node, u.Error)
		}
		for _, c := range u.Containers {
			if !perContainer {
				c.Container = ""
			}
			i := slices.IndexFunc(rows, func(r api.ContainerUsage) bool {
				return r.Namespace == c.Namespace && r.Pod == c.Pod && r.Container == c.Container
			})
			if i < 0 {
				rows = append(rows, c)
				continue
			}
			rows[i].CPUMilli += c.CPUMilli
			rows[i].MemoryBytes += c.MemoryBytes
		}
	}
	slices.SortFunc(rows, func(a, b api.ContainerUsage) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Container, b.Container))
	})
	t := newTable(out)
	head := []any{"NAME"}
	if perContainer {
		head = []any{"POD", "NAME"}
	}
	if all {
		head = append([]any{"NAMESPACE"}, head...)
	}
	t.row(append(head, "CPU(cores)", "MEMORY(bytes)")...)
	for _, r := range rows {
		cols := []any{r.Pod}
		if perContainer {
			cols = append(cols, r.Container)
		}
		if all {
			cols = append([]any{r.Namespace}, cols...)
		}
		t.row(append(cols, millicores(r.CPUMilli), mebi(r.MemoryBytes))...)
	}
	return t.flush()
}

// millicores, mebi and percent format as kubectl top does: 12m (also
// 1000m, where a quantity says 1), 34Mi, 5%.
func millicores(m int64) string { return fmt.Sprintf("%dm", m) }

func mebi(b int64) string { return fmt.Sprintf("%dMi", b>>20) }

func percent(v, of int64) string {
	if of <= 0 {
		return "<unknown>"
	}
	return fmt.Sprintf("%d%%", v*100/of)
}
