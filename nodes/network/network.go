// Package network gives pods their network: a network namespace per pod,
// attached by the standard CNI plugins (bridge + host-local IPAM, optional
// portmap, loopback) as Debian's containernetworking-plugins ships them,
// driven through libcni. Every pod on a node gets an address from the
// node's pod CIDR on one Linux bridge, whose address is the pods' gateway.
// Traffic from pods to the world outside the cluster is masqueraded by one
// nftables rule for the whole node (nat.go), not per pod.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// cniVersion is the newest spec version the plugins of
// containernetworking-plugins 1.1.1 (Debian bookworm) implement.
const cniVersion = "1.0.0"

// Defaults for Config's empty fields.
const (
	DefaultBridge    = "berth0"
	DefaultName      = "berth"
	DefaultPluginDir = "/usr/lib/cni"
	DefaultDataDir   = "/var/lib/berth/cni"
	DefaultNetNSDir  = "/var/run/netns"
)

// Config describes the node's pod network.
type Config struct {
	// PodCIDR is the node's share of the cluster's pod addresses, e.g.
	// 10.244.0.0/24. The bridge takes its first address as the gateway.
	PodCIDR string
	// BridgeName is the Linux bridge the pods attach to (at most 15 bytes).
	BridgeName string
	// NetworkName names the CNI network; it keys libcni's result cache.
	NetworkName string
	// PluginDirs are searched for the CNI plugin binaries.
	PluginDirs []string
	// DataDir holds ConfDir, CacheDir and StateDir when they are empty.
	DataDir string
	// ConfDir gets the conflist berth uses, for people and tools to read.
	ConfDir string
	// CacheDir is libcni's result cache (what DEL is given).
	CacheDir string
	// StateDir holds host-local's address leases. It must be private to
	// this Network: two networks sharing it would hand out each other's IPs.
	StateDir string
	// NetNSDir is where named network namespaces are bind-mounted, as
	// `ip netns add` does.
	NetNSDir string
	// MTU of the pods' interfaces; 0 lets the bridge plugin choose.
	MTU int
	// ClusterCIDR covers the pod CIDRs of every node, e.g. 10.244.0.0/16.
	// Pod traffic to addresses outside it is masqueraded; traffic to other
	// pods keeps its source address. Empty means the pod CIDR alone.
	ClusterCIDR string
	// MasqTable names the nftables table (family ip) holding the node's
	// masquerade rule; default NetworkName + "-masq".
	MasqTable string
	// NoMasquerade turns off SNAT of traffic leaving the cluster. Leave it
	// off unless the network routes pod addresses itself.
	NoMasquerade bool
	// PortMap adds the portmap plugin so pods can have hostPorts.
	PortMap bool
}

// PortMapping is a hostPort: traffic to HostPort on the node goes to
// ContainerPort in the pod.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp or udp
	HostIP        string `json:"hostIP,omitempty"`
}

// Network attaches pods to the node's pod network.
type Network struct {
	cfg Config
	cni *libcni.CNIConfig
	// list is the chain of pods without hostPorts, portList (the same
	// network name, so the same libcni cache entries) that of pods with.
	list     *libcni.NetworkConfigList
	portList *libcni.NetworkConfigList
	loopback *libcni.NetworkConfigList
	gateway  net.IP

	podPrefix netip.Prefix // the pod CIDR
	outside   netip.Prefix // traffic to addresses outside it is masqueraded

	masqMu   sync.Mutex
	masqDone bool // the masquerade table is written
}

// New checks cfg, fills its defaults, writes the conflist to ConfDir and
// returns a Network ready to Setup pods. It does not touch the host's
// network: the bridge plugin creates the bridge on the first Setup.
func New(cfg Config) (*Network, error) {
	if cfg.PodCIDR == "" {
		return nil, errors.New("network: PodCIDR is required")
	}
	ip, ipnet, err := net.ParseCIDR(cfg.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("network: PodCIDR: %w", err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("network: PodCIDR %s: only IPv4 is supported", cfg.PodCIDR)
	}
	if ones, bits := ipnet.Mask.Size(); bits-ones < 2 {
		return nil, fmt.Errorf("network: PodCIDR %s is too small", cfg.PodCIDR)
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridge
	}
	if len(cfg.BridgeName) > 15 {
		return nil, fmt.Errorf("network: bridge name %q is longer than 15 bytes", cfg.BridgeName)
	}
	if cfg.NetworkName == "" {
		cfg.NetworkName = DefaultName
	}
	podPrefix := netip.MustParsePrefix(ipnet.String())
	outside := podPrefix
	if cfg.ClusterCIDR != "" {
		p, err := netip.ParsePrefix(cfg.ClusterCIDR)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("network: ClusterCIDR %q: not an IPv4 prefix", cfg.ClusterCIDR)
		}
		outside = p.Masked()
		if !outside.Contains(podPrefix.Addr()) || outside.Bits() > podPrefix.Bits() {
			return nil, fmt.Errorf("network: ClusterCIDR %s does not contain PodCIDR %s", outside, podPrefix)
		}
	}
	if cfg.MasqTable == "" {
		cfg.MasqTable = cfg.NetworkName + "-masq"
	}
	if len(cfg.MasqTable) > 255 {
		return nil, fmt.Errorf("network: nftables table name %q is too long", cfg.MasqTable)
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{DefaultPluginDir, "/opt/cni/bin"}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.ConfDir == "" {
		cfg.ConfDir = filepath.Join(cfg.DataDir, "net.d")
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.DataDir, "cache")
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.DataDir, "state")
	}
	if cfg.NetNSDir == "" {
		cfg.NetNSDir = DefaultNetNSDir
	}
	for _, d := range []string{cfg.ConfDir, cfg.CacheDir, cfg.StateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}

	list, err := newConfList(conflist(cfg, ipnet, false))
	if err != nil {
		return nil, err
	}
	// Pods with hostPorts run the chain with portmap; the others skip it:
	// it executes iptables even when it has no mapping to add.
	full := list
	if cfg.PortMap {
		if full, err = newConfList(conflist(cfg, ipnet, true)); err != nil {
			return nil, err
		}
	}
	// Loopback is its own network, as CRI runtimes do: it runs on "lo" and
	// has no result to chain into the bridge's.
	lo, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(
		`{"cniVersion":%q,"name":%q,"plugins":[{"type":"loopback"}]}`, cniVersion, cfg.NetworkName+"-loopback")))
	if err != nil {
		return nil, fmt.Errorf("network: loopback conflist: %w", err)
	}
	confFile := filepath.Join(cfg.ConfDir, "10-"+cfg.NetworkName+".conflist")
	if err := os.WriteFile(confFile, append(full.Bytes, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	gw := make(net.IP, 4)
	copy(gw, ipnet.IP.To4())
	gw[3]++
	return &Network{
		cfg:       cfg,
		cni:       libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.CacheDir, nil),
		list:      list,
		portList:  full,
		loopback:  lo,
		gateway:   gw,
		podPrefix: podPrefix,
		outside:   outside,
	}, nil
}

func newConfList(conf map[string]any) (*libcni.NetworkConfigList, error) {
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("network: conflist: %w", err)
	}
	return list, nil
}

func conflist(cfg Config, ipnet *net.IPNet, portMap bool) map[string]any {
	bridge := map[string]any{
		"type":      "bridge",
		"bridge":    cfg.BridgeName,
		"isGateway": true,
		// The node's one nftables rule masquerades (see nat.go); the
		// plugin's own ipMasq would run iptables for every pod.
		"ipMasq":      false,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": ipnet.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": cfg.StateDir,
		},
	}
	if cfg.MTU > 0 {
		bridge["mtu"] = cfg.MTU
	}
	plugins := []any{bridge}
	if portMap {
		plugins = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]bool{"portMappings": true},
			"snat":         true,
		})
	}
	return map[string]any{"cniVersion": cniVersion, "name": cfg.NetworkName, "plugins": plugins}
}

// Config returns the configuration with its defaults filled in.
func (n *Network) Config() Config { return n.cfg }

// Gateway is the bridge's address, the pods' default route.
func (n *Network) Gateway() net.IP { return n.gateway }

// ConfList returns the CNI conflist the bridge network runs with, the one
// written to ConfDir; pods without hostPorts run it without portmap.
func (n *Network) ConfList() []byte { return n.portList.Bytes }

// listFor is the chain a pod with ports runs.
func (n *Network) listFor(ports []PortMapping) *libcni.NetworkConfigList {
	if len(ports) > 0 {
		return n.portList
	}
	return n.list
}

func (n *Network) rtConf(podID, netnsPath string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: podID, NetNS: netnsPath, IfName: "eth0"}
	if len(ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	return rt
}

// Setup attaches the network namespace at netnsPath to the pod network as
// podID and returns the pod's IPv4 address. Calling it again for the same
// podID and namespace returns the address it already has.
func (n *Network) Setup(ctx context.Context, podID, netnsPath string, ports ...PortMapping) (string, error) {
	rt := n.rtConf(podID, netnsPath, ports)
	if _, cachedRT, err := n.cni.GetNetworkListCachedConfig(n.list, rt); err == nil && cachedRT != nil {
		if cachedRT.NetNS == netnsPath {
			if res, err := n.cni.GetNetworkListCachedResult(n.list, rt); err == nil && res != nil {
				if ip, err := resultIP(res); err == nil {
					return ip, nil
				}
			}
		}
		// A previous attachment of this pod to another namespace (or one
		// that half failed): release it first so its lease is not leaked.
		if err := n.Teardown(ctx, podID, cachedRT.NetNS); err != nil {
			return "", err
		}
	}

	if err := n.ensureMasq(); err != nil {
		return "", err
	}
	lo := &libcni.RuntimeConf{ContainerID: podID, NetNS: netnsPath, IfName: "lo"}
	if _, err := n.cni.AddNetworkList(ctx, n.loopback, lo); err != nil {
		return "", fmt.Errorf("network: pod %s: loopback: %w", podID, err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.listFor(ports), rt)
	if err != nil {
		// Undo what the chain did before failing: the address lease above
		// all, or host-local runs out after enough failures.
		_ = n.Teardown(context.WithoutCancel(ctx), podID, netnsPath)
		return "", fmt.Errorf("network: pod %s: %w", podID, err)
	}
	ip, err := resultIP(res)
	if err != nil {
		_ = n.Teardown(context.WithoutCancel(ctx), podID, netnsPath)
		return "", fmt.Errorf("network: pod %s: %w", podID, err)
	}
	return ip, nil
}

// IP returns the address Setup gave podID, from libcni's cache, or "" if
// the pod is not attached.
func (n *Network) IP(podID string) string {
	res, err := n.cni.GetNetworkListCachedResult(n.list, n.rtConf(podID, "", nil))
	if err != nil || res == nil {
		return ""
	}
	ip, _ := resultIP(res)
	return ip
}

func resultIP(res cnitypes.Result) (string, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return "", err
	}
	for _, ipc := range r.IPs {
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			return ip4.String(), nil
		}
	}
	return "", errors.New("CNI result has no IPv4 address")
}

// Teardown detaches podID: it removes the pod's interface and NAT rules and
// releases its address. It succeeds when there is nothing left to remove,
// including when the namespace is already gone, so callers can repeat it.
//
// The plugins run for DEL are those that ran for ADD (portmap only for a
// pod with hostPorts), with the port mappings Setup was given, both from
// libcni's cache: a pod attached by an earlier berth (whose bridge plugin
// masqueraded per pod) gets its rules removed by that configuration. ports
// is only used when the cache is gone.
func (n *Network) Teardown(ctx context.Context, podID, netnsPath string, ports ...PortMapping) error {
	if netnsPath != "" && !IsNetNS(netnsPath) {
		// The plugins skip the in-namespace work for an empty path but still
		// release the lease and the portmap rules.
		netnsPath = ""
	}
	rt := n.rtConf(podID, netnsPath, ports)
	list := n.listFor(ports)
	if conf, cached, err := n.cni.GetNetworkListCachedConfig(n.list, rt); err == nil && cached != nil {
		if cached.CapabilityArgs != nil {
			// portmap deletes only the mappings it is told about.
			rt.CapabilityArgs = cached.CapabilityArgs
		}
		if l, err := libcni.ConfListFromBytes(conf); err == nil && l.Name == n.list.Name {
			list = l
		}
	}
	var orphanIP string
	if netnsPath == "" && bridgeMasq(list) {
		orphanIP = n.IP(podID)
	}
	var errs []error
	if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
		errs = append(errs, fmt.Errorf("network: pod %s: %w", podID, err))
	}
	if orphanIP != "" {
		// bridge 1.1.1 learns which masquerade rule to delete from the
		// addresses inside the namespace; without one the rule would stay.
		// Only pods attached with the bridge's ipMasq (by berth before the
		// node-level rule) have one.
		n.teardownMasq(ctx, podID, orphanIP)
	}
	lo := &libcni.RuntimeConf{ContainerID: podID, NetNS: netnsPath, IfName: "lo"}
	if err := n.cni.DelNetworkList(ctx, n.loopback, lo); err != nil {
		errs = append(errs, fmt.Errorf("network: pod %s: loopback: %w", podID, err))
	}
	return errors.Join(errs...)
}

// bridgeMasq tells whether list's bridge plugin masquerades per pod, as
// berth's conflist did before the node-level masquerade rule.
func bridgeMasq(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		if p.Network.Type != "bridge" {
			continue
		}
		var conf struct {
			IPMasq bool `json:"ipMasq"`
		}
		if json.Unmarshal(p.Bytes, &conf) == nil && conf.IPMasq {
			return true
		}
	}
	return false
}
