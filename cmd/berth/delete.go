package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delete node NAME", Short: "Remove cluster objects that the config repository does not own"}
	node := &cobra.Command{
		Use:     "node NAME",
		Aliases: []string{"nodes"},
		Short:   "Remove a node; its pods are recreated on the other nodes",
		Long: `delete node removes a node from the cluster (admin token) and deletes the pods
bound to it, which their Deployments then recreate on the other nodes.

An agent that still runs on that machine registers its node again at its next
heartbeat, as a kubelet does: to retire a machine, stop its agent first
(berth down on it), then delete its node.`,
		Args: cobra.ExactArgs(1),
	}
	client := clientFlag(node)
	node.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.DeleteNode(cmd.Context(), args[0]); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %q deleted\n", args[0])
		return nil
	}
	cmd.AddCommand(node)
	return cmd
}
