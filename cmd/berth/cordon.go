package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

// newSchedulingCmd is berth cordon, uncordon or drain: what each sets.
func newSchedulingCmd(use, done, short, long string, set state.NodeScheduling) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{Use: use + " NODE", Short: short, Long: long, Args: cobra.ExactArgs(1)}
	client := clientFlag(cmd)
	if set.Drain {
		cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the node's pods to move (0: do not wait)")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		set.Name = args[0]
		if _, err := c.SetNodeScheduling(cmd.Context(), set); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %q %s\n", set.Name, done)
		if !set.Drain || timeout == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		if err := waitDrained(ctx, c, set.Name, cmd.OutOrStdout()); err != nil {
			return &exitError{1, fmt.Errorf("node %q not drained: %w", set.Name, err)}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %q drained\n", set.Name)
		return nil
	}
	return cmd
}

func newCordonCmds() []*cobra.Command {
	return []*cobra.Command{
		newSchedulingCmd("cordon", "cordoned", "Mark a node unschedulable: no new pod goes there", "", state.NodeScheduling{Unschedulable: true}),
		newSchedulingCmd("uncordon", "uncordoned", "Mark a node schedulable again (ends a cordon or a drain)", "", state.NodeScheduling{}),
		newSchedulingCmd("drain", "cordoned and draining", "Cordon a node and move its pods to the other nodes",
			`drain cordons the node, then the masters replace its Deployments' pods on
the other nodes as a rolling update replaces old pods: at most maxSurge extra
pods at a time, and never more than maxUnavailable of a Deployment's pods
unavailable (so a Deployment with maxUnavailable 0 first starts a replacement,
then stops the drained pod once it is ready); a Job's running pods stop and
start again elsewhere; DaemonSet pods stay. It waits until no running pod
but those is left on the node, printing how many remain. 'berth uncordon' ends it.`, state.NodeScheduling{Drain: true}),
	}
}

// waitDrained follows the node's pods until none is left.
func waitDrained(ctx context.Context, c *api.Client, node string, out io.Writer) error {
	var index uint64
	last := -1
	for {
		pods, idx, err := c.Pods(ctx, node, &api.Watch{Index: index, Wait: 10 * time.Second})
		if ctx.Err() != nil {
			return fmt.Errorf("%d pods left: %w", last, ctx.Err())
		}
		if err != nil {
			return err
		}
		left := 0
		for _, p := range pods {
			// A Job's finished pods hold nothing; DaemonSet pods belong to
			// the node (kubectl drain --ignore-daemonsets).
			if !p.Finished() && p.OwnerKind != reconcile.KindDaemonSet {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if left != last {
			fmt.Fprintf(out, "%d pods left on %s\n", left, node)
			last = left
		}
		index = idx
	}
}
