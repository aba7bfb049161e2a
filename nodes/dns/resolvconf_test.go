package dns

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth/berth/schemas/objects"
)

func TestReadResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(path, []byte(`# generated
nameserver 127.0.0.53
search old.example
nameserver 192.0.2.1 # second
nameserver
options rotate
search corp.example. example.
options edns0 trust-ad ndots:2
`), 0o644)
	got, err := ReadResolvConf(path)
	if err != nil {
		t.Fatal(err)
	}
	want := ResolvConf{
		Nameservers: []string{"127.0.0.53", "192.0.2.1"},
		Search:      []string{"corp.example", "example"},
		Options:     []string{"edns0", "trust-ad", "ndots:2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ReadResolvConf(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing file must fail")
	}
}

func TestPodResolvConf(t *testing.T) {
	host := ResolvConf{
		Nameservers: []string{"192.0.2.1", "192.0.2.2"},
		Search:      []string{"corp.example"},
		Options:     []string{"edns0", "ndots:1"},
	}
	cluster := []string{"10.96.0.10"}
	two := "2"
	for _, c := range []struct {
		what string
		pod  PodDNS
		want string
	}{
		{"ClusterFirst", PodDNS{Namespace: "shop"}, `search shop.svc.cluster.local svc.cluster.local cluster.local corp.example
nameserver 10.96.0.10
options ndots:5
`},
		{"ClusterFirst on the host network is Default", PodDNS{Namespace: "shop", Policy: "ClusterFirst", HostNetwork: true}, `search corp.example
nameserver 192.0.2.1
nameserver 192.0.2.2
options edns0 ndots:1
`},
		{"ClusterFirstWithHostNet", PodDNS{Namespace: "shop", Policy: "ClusterFirstWithHostNet", HostNetwork: true}, `search shop.svc.cluster.local svc.cluster.local cluster.local corp.example
nameserver 10.96.0.10
options ndots:5
`},
		{"Default", PodDNS{Namespace: "shop", Policy: "Default"}, `search corp.example
nameserver 192.0.2.1
nameserver 192.0.2.2
options edns0 ndots:1
`},
		{"None", PodDNS{Namespace: "shop", Policy: "None", Config: &objects.PodDNSConfig{
			Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"},
			Options: []objects.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}}, `search a.example
nameserver 1.1.1.1
options ndots:2 edns0
`},
		{"None, empty", PodDNS{Policy: "None"}, ""},
		{"ClusterFirst merged with dnsConfig", PodDNS{Namespace: "shop", Config: &objects.PodDNSConfig{
			Nameservers: []string{"10.96.0.10", "1.1.1.1", "8.8.8.8", "9.9.9.9"},
			Searches:    []string{"cluster.local", "b.example"},
			Options:     []objects.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "single-request"}}}},
			`search shop.svc.cluster.local svc.cluster.local cluster.local corp.example b.example
nameserver 10.96.0.10
nameserver 1.1.1.1
nameserver 8.8.8.8
options ndots:2 single-request
`},
	} {
		if got := string(PodResolvConf(c.pod, "cluster.local.", cluster, host)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.what, got, c.want)
		}
	}
	// Without a cluster nameserver, ClusterFirst falls back to Default.
	if got, want := PodResolvConf(PodDNS{Namespace: "shop"}, "cluster.local", nil, host),
		PodResolvConf(PodDNS{Policy: "Default"}, "cluster.local", nil, host); string(got) != string(want) {
		t.Errorf("no cluster DNS: %q, want %q", got, want)
	}
}

func TestPodResolvConfLimits(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("d%d.example", i))
	}
	search := func(pod PodDNS) []string {
		line, _, _ := strings.Cut(string(PodResolvConf(pod, "cluster.local", []string{"10.96.0.10"}, ResolvConf{})), "\n")
		return strings.Fields(line)[1:]
	}
	got := search(PodDNS{Namespace: "n", Config: &objects.PodDNSConfig{Searches: many}})
	if len(got) != 32 || got[31] != "d28.example" {
		t.Errorf("32 domains at most: %d, last %q", len(got), got[len(got)-1])
	}
	long := strings.Repeat("a", 254)
	got = search(PodDNS{Namespace: "n", Config: &objects.PodDNSConfig{Searches: []string{long, "ok.example"}}})
	if strings.Contains(strings.Join(got, " "), long) || got[len(got)-1] != "ok.example" {
		t.Errorf("a domain over 253 characters is dropped: %q", got)
	}
	var wide []string
	for i := range 20 {
		wide = append(wide, fmt.Sprintf("%s%02d", strings.Repeat("w", 150), i))
	}
	got = search(PodDNS{Namespace: "n", Config: &objects.PodDNSConfig{Searches: wide}})
	if n := len(strings.Join(got, " ")); n > 2048 || n < 2048-160 {
		t.Errorf("search line of %d characters, want the most under 2048", n)
	}
}
