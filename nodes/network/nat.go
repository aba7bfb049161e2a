package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The node's masquerade is one nftables table (family ip) per Network:
//
//	table ip <MasqTable> {
//		chain postrouting {
//			type nat hook postrouting priority srcnat;
//			ip saddr <PodCIDR> ip daddr != <ClusterCIDR> ip daddr != 224.0.0.0/4 masquerade
//		}
//	}
//
// It replaces the bridge plugin's ipMasq, which adds a chain and two rules
// per pod by executing iptables three or more times on every set-up and
// tear-down, serialized on the xtables lock: half the cost of a pod's
// network. One rule for the whole pod CIDR does the same for every pod,
// and costs nothing per pod.
const masqChain = "postrouting"

// nftTimeout bounds one netlink transaction.
const nftTimeout = 10 * time.Second

func nftConn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error {
		return c.SetDeadline(time.Now().Add(nftTimeout))
	}))
	if err != nil {
		return nil, fmt.Errorf("network: nftables: %w", err)
	}
	return c, nil
}

// ensureMasq writes the masquerade table once per Network (per process):
// in one transaction it creates, deletes and recreates the table, so an
// existing one (from an earlier agent, perhaps with another cluster CIDR)
// is replaced atomically, with no moment in which pods lose their NAT.
func (n *Network) ensureMasq() error {
	if n.cfg.NoMasquerade {
		return nil
	}
	n.masqMu.Lock()
	defer n.masqMu.Unlock()
	if n.masqDone {
		return nil
	}
	c, err := nftConn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: n.cfg.MasqTable}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{
		Name: masqChain, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	var exprs []expr.Any
	exprs = append(exprs, addrIn(12, n.podPrefix, true)...)
	exprs = append(exprs, addrIn(16, n.outside, false)...)
	exprs = append(exprs, addrIn(16, netip.MustParsePrefix("224.0.0.0/4"), false)...)
	exprs = append(exprs, &expr.Masq{})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment,
			fmt.Sprintf("berth: masquerade pods of %s leaving %s", n.podPrefix, n.outside))})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: masquerade table %s: %w", n.cfg.MasqTable, err)
	}
	n.masqDone = true
	return nil
}

// Close removes what the Network put on the node for all its pods: the
// masquerade table. Pods still attached lose their access to the world
// outside the cluster; `berth down` calls it once every pod is torn down.
// It succeeds when there is nothing to remove, and can be repeated. The
// Network stays usable: the next Setup writes the table again.
func (n *Network) Close() error {
	n.masqMu.Lock()
	defer n.masqMu.Unlock()
	n.masqDone = false
	c, err := nftConn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: n.cfg.MasqTable}
	// Adding first makes the delete succeed when there is no table.
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: delete masquerade table %s: %w", n.cfg.MasqTable, err)
	}
	return nil
}

// addrIn matches the IPv4 address at offset off of the network header
// (12: source, 16: destination) inside pfx, or outside it when in is
// false: `ip saddr 10.244.0.0/24`, `ip daddr != 10.244.0.0/16`.
func addrIn(off uint32, pfx netip.Prefix, in bool) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-pfx.Bits()))
	op := expr.CmpOpEq
	if !in {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Payload{DestRegister: unix.NFT_REG_1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: unix.NFT_REG_1, DestRegister: unix.NFT_REG_1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: unix.NFT_REG_1, Data: pfx.Masked().Addr().AsSlice()},
	}
}
