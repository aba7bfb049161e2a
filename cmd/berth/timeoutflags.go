package main

import (
	"github.com/spf13/cobra"

	"github.com/berth/berth/reconcile"
)

// addNodeTimeoutFlags adds the node lifecycle's timeouts to a master's
// command (docs/workloads.md says what the defaults trade).
func addNodeTimeoutFlags(cmd *cobra.Command, t *reconcile.NodeTimeouts) {
	cmd.Flags().DurationVar(&t.Grace, "node-grace", reconcile.DefaultNodeTimeouts.Grace, "how long a node may go without a heartbeat before it is NotReady")
	cmd.Flags().DurationVar(&t.Eviction, "node-eviction", reconcile.DefaultNodeTimeouts.Eviction, "how long a node stays NotReady before its Deployments' pods are replaced on other nodes")
}
