package main

import (
	"github.com/berth/berth/appliance/state"
	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance"
)

// networkFlags size a new cluster's pod network, for `berth master
// --bootstrap` and `berth up`, with kube-controller-manager's names.
type networkFlags struct {
	cidr     string
	nodeMask int
}

func (f *networkFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cidr, "cluster-cidr", state.DefaultPodNetwork.CIDR, "pod address range of a new cluster (fixed once the cluster exists)")
	cmd.Flags().IntVar(&f.nodeMask, "node-cidr-mask-size", state.DefaultPodNetwork.NodeMaskBits, "prefix length of each node's share of --cluster-cidr: /24 gives 256 nodes of a /16 up to 254 pods each")
}

// apply sets cfg's pod network, checked here so that a typo fails at once.
func (f *networkFlags) apply(cfg *appliance.Config) error {
	cfg.PodNetwork = state.PodNetwork{CIDR: f.cidr, NodeMaskBits: f.nodeMask}
	if err := cfg.PodNetwork.Check(); err != nil {
		return &exitError{2, err}
	}
	return nil
}
