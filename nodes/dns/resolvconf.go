package dns

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth/berth/schemas/objects"
)

// ResolvConf is a resolver configuration, as resolv.conf holds it.
type ResolvConf struct {
	Nameservers []string
	Search      []string // without trailing dots
	Options     []string // as written: "ndots:5", "edns0"
}

// maxResolvConf bounds what ReadResolvConf reads, as the kubelet does.
const maxResolvConf = 10 << 20

// ReadResolvConf reads the host's resolver configuration (normally
// /etc/resolv.conf): its nameservers are the Server's upstreams, and the
// base of pods' resolv.conf. It parses as the kubelet does: nameserver
// lines add up (one without an address is skipped, where the kubelet
// fails), the last search and options lines win, '#' comments.
func ReadResolvConf(path string) (ResolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolvConf{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf+1))
	if err != nil {
		return ResolvConf{}, err
	}
	if len(b) > maxResolvConf {
		return ResolvConf{}, fmt.Errorf("%s: larger than %d bytes", path, maxResolvConf)
	}
	var c ResolvConf
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "nameserver" && len(f) > 1:
			c.Nameservers = append(c.Nameservers, f[1])
		case f[0] == "search":
			c.Search = nil
			for _, s := range f[1:] {
				c.Search = append(c.Search, strings.TrimSuffix(s, "."))
			}
		case f[0] == "options":
			c.Options = f[1:]
		}
	}
	return c, nil
}

// PodDNS is what a pod's spec says of its resolver.
type PodDNS struct {
	Namespace string
	// Policy is spec.dnsPolicy: ClusterFirst (also when empty or
	// unknown), ClusterFirstWithHostNet, Default or None.
	Policy      string
	HostNetwork bool
	Config      *objects.PodDNSConfig // spec.dnsConfig
}

// Limits of the kubelet (Kubernetes' validation, ExpandedDNSConfig).
const (
	maxNameservers = 3
	maxSearches    = 32
	maxSearchChars = 2048
	maxSearchLen   = 253
)

// PodResolvConf is the /etc/resolv.conf the kubelet gives a pod, as
// containerd writes it. ClusterFirst: search <ns>.svc.<domain>
// svc.<domain> <domain> and the host's search list, the cluster's
// nameservers (clusterDNS), options ndots:5; with no clusterDNS, or a
// hostNetwork pod with ClusterFirst, it is Default: the host's
// configuration. None starts empty. spec.dnsConfig is then merged in
// (nameservers and searches appended without duplicates, options
// overriding by name), and the result cut to the kubelet's limits: 3
// nameservers, 32 search domains of at most 253 characters, 2048 in all.
func PodResolvConf(pod PodDNS, domain string, clusterDNS []string, host ResolvConf) []byte {
	domain = strings.TrimSuffix(domain, ".")
	var c ResolvConf
	switch {
	case pod.Policy == "None":
	case pod.Policy == "Default" || len(clusterDNS) == 0 ||
		pod.HostNetwork && pod.Policy != "ClusterFirstWithHostNet":
		c = ResolvConf{
			Nameservers: append([]string(nil), host.Nameservers...),
			Search:      append([]string(nil), host.Search...),
			Options:     append([]string(nil), host.Options...),
		}
	default:
		c.Nameservers = append([]string(nil), clusterDNS...)
		c.Search = unique(append([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}, host.Search...))
		c.Options = []string{"ndots:5"}
	}
	if d := pod.Config; d != nil {
		c.Nameservers = unique(append(c.Nameservers, d.Nameservers...))
		c.Search = unique(append(c.Search, d.Searches...))
		c.Options = mergeOptions(c.Options, d.Options)
	}
	c.Nameservers = c.Nameservers[:min(len(c.Nameservers), maxNameservers)]
	c.Search = fitSearch(c.Search)

	var b bytes.Buffer
	if len(c.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(c.Search, " "))
	}
	for _, ns := range c.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(c.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(c.Options, " "))
	}
	return b.Bytes()
}

func unique(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mergeOptions sets each of add by name over opts, in place or appended
// (the kubelet's order is a map's; this one is stable).
func mergeOptions(opts []string, add []objects.PodDNSConfigOption) []string {
	out := append([]string(nil), opts...)
	for _, o := range add {
		s := o.Name
		if o.Value != nil && *o.Value != "" {
			s += ":" + *o.Value
		}
		i := 0
		for i < len(out) && strings.SplitN(out[i], ":", 2)[0] != o.Name {
			i++
		}
		if i == len(out) {
			out = append(out, s)
		} else {
			out[i] = s
		}
	}
	return out
}

// fitSearch applies the kubelet's search limits: the first 32 domains,
// without those longer than 253 characters, then the last ones dropped
// until the line is at most 2048 characters.
func fitSearch(search []string) []string {
	search = search[:min(len(search), maxSearches)]
	out := search[:0]
	for _, s := range search {
		if len(s) <= maxSearchLen {
			out = append(out, s)
		}
	}
	for len(strings.Join(out, " ")) > maxSearchChars {
		out = out[:len(out)-1]
	}
	return out
}
