package boot

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCmdline(t *testing.T) {
	var c Config
	err := c.ParseCmdline(`BOOT_IMAGE=/boot/vmlinuz console=ttyS0 quiet berth.repo=http://10.0.2.2:8080/c.git berth.branch=prod berth.bootstrap=1 berth.token=t0k berth.path="clusters/a b" berth.data=/dev/vdb berth.poll=10s`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Repo: "http://10.0.2.2:8080/c.git", Branch: "prod", Bootstrap: true, Token: "t0k", Path: "clusters/a b", Data: "/dev/vdb", Poll: "10s"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	for _, bad := range []string{"berth.rpo=x", "berth.poll=often", "berth.ip=10.0.0.1", "berth.bootstrap=1 berth.join=http://m:7443", "berth.join=https://m:7443 berth.token=abcdef.0123456789abcdef"} {
		var c Config
		if err := c.ParseCmdline(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestStaticIP(t *testing.T) {
	c := Config{IP: "192.168.1.10/24,192.168.1.1,1.1.1.1,9.9.9.9"}
	s, err := c.StaticIP()
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != netip.MustParsePrefix("192.168.1.10/24") || s.Gateway != netip.MustParseAddr("192.168.1.1") || len(s.DNS) != 2 {
		t.Fatalf("%+v", s)
	}
	for _, ip := range []string{"", "dhcp"} {
		if s, err := (&Config{IP: ip}).StaticIP(); s != nil || err != nil {
			t.Errorf("%q: %v %v", ip, s, err)
		}
	}
}

// The command line overrides master.yaml from the config disk.
func TestYAMLThenCmdline(t *testing.T) {
	var c Config
	if err := c.ParseYAML([]byte("repo: https://git.example/c.git\nbranch: main\nip: 10.1.0.5/16,10.1.0.1\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.ParseCmdline("berth.branch=hotfix"); err != nil {
		t.Fatal(err)
	}
	if c.Repo != "https://git.example/c.git" || c.Branch != "hotfix" || c.IP != "10.1.0.5/16,10.1.0.1" {
		t.Fatalf("%+v", c)
	}
	if err := c.ParseCmdline("berth.webhook-allow-unsigned"); err != nil || !c.WebhookAllowUnsigned {
		t.Fatalf("webhook-allow-unsigned: %v %+v", err, c)
	}
	var y Config
	if err := y.ParseYAML([]byte("webhook-secret: s3cret\nwebhook-allow-unsigned: false\n")); err != nil || y.WebhookSecret != "s3cret" || y.WebhookAllowUnsigned {
		t.Fatalf("webhook keys in master.yaml: %v %+v", err, y)
	}
	if err := c.ParseYAML([]byte("repository: x\n")); err == nil || !strings.Contains(err.Error(), "repository") {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestMasterConfig: a joining appliance advertises its first address for
// the API and Raft; a bootstrapping one with no address keeps Raft on
// loopback.
func TestMasterConfig(t *testing.T) {
	var c Config
	if err := c.ParseCmdline("berth.join=https://10.0.0.1:7443 berth.token=abcdef.0123456789abcdef berth.ca-hash=sha256:00 berth.name=m2"); err != nil {
		t.Fatal(err)
	}
	mc := masterConfig(c, ":7443", []string{"10.0.0.2"})
	if mc.Bootstrap || mc.Join != "https://10.0.0.1:7443" || mc.CAHash != "sha256:00" || mc.Name != "m2" ||
		mc.Advertise != "10.0.0.2:7443" || mc.RaftAdvertise != "10.0.0.2:7444" || mc.RaftListen != ":7444" {
		t.Errorf("join: %+v", mc)
	}
	alone := masterConfig(Config{Bootstrap: true}, ":7443", nil)
	if !alone.Bootstrap || alone.RaftListen != "127.0.0.1:7444" || alone.Advertise != "" || alone.Name == "" {
		t.Errorf("bootstrap without an address: %+v", alone)
	}
}

// FuzzBootConfig: whatever the kernel command line and master.yaml hold,
// parsing gives a config or an error, never a panic, and a config it
// accepts has a usable address setting and poll interval.
func FuzzBootConfig(f *testing.F) {
	f.Add("console=ttyS0 berth.repo=http://10.0.2.2/c.git berth.poll=10s berth.ip=10.0.2.15/24,10.0.2.2", []byte("repo: http://h/c.git\nname: m1\n"))
	f.Add(`berth.path="a b" berth.bootstrap berth.token=abcdef.0123456789abcdef`, []byte("join: https://m:7443\ntoken: t\nca-hash: sha256:00\n"))
	f.Add(`berth.repo="unterminated`, []byte("a: &a [*a, *a]\n"))
	f.Add("berth.ip=dhcp berth.repo-username=x berth.repo-password=y", []byte("- not\n- a map\n"))
	f.Fuzz(func(t *testing.T, cmdline string, yaml []byte) {
		var c Config
		if c.ParseYAML(yaml) != nil || c.ParseCmdline(cmdline) != nil {
			return
		}
		if _, err := c.StaticIP(); err != nil {
			t.Fatalf("accepted %+v with an unusable address: %v", c, err)
		}
	})
}
