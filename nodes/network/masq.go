package network

import (
	"context"
	"crypto/sha512"
	"fmt"
	"os/exec"
)

// teardownMasq removes the bridge plugin's SNAT rule for a pod whose network
// namespace is already gone, naming the chain and comment the way the
// plugins' utils.FormatChainName and FormatComment do. It is best effort:
// after a reboot the rules are gone already.
func (n *Network) teardownMasq(ctx context.Context, podID, ip string) {
	sum := sha512.Sum512([]byte(n.cfg.NetworkName + podID))
	chain := fmt.Sprintf("CNI-%x", sum)[:28]
	comment := fmt.Sprintf("name: %q id: %q", n.cfg.NetworkName, podID)
	for _, args := range [][]string{
		{"-t", "nat", "-D", "POSTROUTING", "-s", ip + "/32", "-m", "comment", "--comment", comment, "-j", chain},
		{"-t", "nat", "-F", chain},
		{"-t", "nat", "-X", chain},
	} {
		_ = exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).Run()
	}
}
