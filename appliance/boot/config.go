// Package boot is the appliance's init: as PID 1 in the initramfs it mounts
// the kernel file systems, loads the kernel modules, reads the boot
// configuration, brings up the network, finds or formats the data disk,
// starts the master, and shows a status screen on the console instead of a
// login prompt. There is no shell: the API is the only way in.
package boot

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the boot configuration, from the kernel command line
// (berth.KEY=VALUE) and/or master.yaml on a volume labelled BERTHCFG.
type Config struct {
	Repo   string `yaml:"repo"`
	Branch string `yaml:"branch"`
	Path   string `yaml:"path"`
	Poll   string `yaml:"poll"`
	// RepoUsername and RepoPassword authenticate to an http(s) Repo (basic
	// auth; a token goes in RepoPassword). Keep the password on the config
	// disk: the kernel command line is readable by every process.
	RepoUsername string `yaml:"repo-username"`
	RepoPassword string `yaml:"repo-password"`
	// WebhookSecret checks the push webhook's calls (see apiserver.WebhookConfig);
	// like the password, it belongs on the config disk. WebhookAllowUnsigned
	// accepts calls without a signature.
	WebhookSecret        string `yaml:"webhook-secret"`
	WebhookAllowUnsigned bool   `yaml:"webhook-allow-unsigned"`
	// Bootstrap starts a new one-member cluster (the default when Join is
	// empty).
	Bootstrap bool `yaml:"bootstrap"`
	// Join is an existing master's URL, Token its master join token and
	// CAHash the fingerprint of the cluster CA to trust. With Bootstrap,
	// Token is the new cluster's admin token instead of a generated one.
	Join   string `yaml:"join"`
	Token  string `yaml:"token"`
	CAHash string `yaml:"ca-hash"`
	// Name is the master's name in the cluster (default: from its address).
	Name string `yaml:"name"`
	// IP is "ADDR/PREFIX[,GATEWAY[,DNS...]]" or "dhcp" (the default).
	IP string `yaml:"ip"`
	// Data names the data disk (e.g. /dev/vdb); by default the volume
	// labelled BERTHDATA, else the first blank disk.
	Data string `yaml:"data"`
	// Listen is the API address (default :7443).
	Listen string `yaml:"listen"`
}

// Static is a parsed static address.
type Static struct {
	Addr    netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
}

// keys maps berth.KEY to its field.
func (c *Config) keys() map[string]*string {
	return map[string]*string{"repo": &c.Repo, "branch": &c.Branch, "path": &c.Path, "poll": &c.Poll,
		"repo-username": &c.RepoUsername, "repo-password": &c.RepoPassword, "webhook-secret": &c.WebhookSecret,
		"join": &c.Join, "token": &c.Token, "ca-hash": &c.CAHash, "name": &c.Name, "ip": &c.IP, "data": &c.Data, "listen": &c.Listen}
}

// ParseCmdline reads the berth.* parameters of a kernel command line into
// c, over whatever c holds (the command line wins over the config disk:
// it is the more specific, per-boot setting). Unknown berth.* keys are
// errors, so a typo does not silently boot a master without its repo.
func (c *Config) ParseCmdline(cmdline string) error {
	keys := c.keys()
	for _, f := range splitCmdline(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		name, ok := strings.CutPrefix(k, "berth.")
		if !ok {
			continue
		}
		switch name {
		case "bootstrap":
			c.Bootstrap = cmdlineBool(v)
			continue
		case "webhook-allow-unsigned":
			c.WebhookAllowUnsigned = cmdlineBool(v)
			continue
		}
		p, ok := keys[name]
		if !ok {
			return fmt.Errorf("kernel command line: unknown parameter %s (known: berth.repo, branch, path, poll, repo-username, repo-password, webhook-secret, webhook-allow-unsigned, bootstrap, join, token, ca-hash, name, ip, data, listen)", k)
		}
		*p = v
	}
	return c.check()
}

// cmdlineBool reads a flag parameter: berth.KEY alone, or =1, true, yes.
func cmdlineBool(v string) bool { return v == "" || v == "1" || v == "true" || v == "yes" }

// splitCmdline splits on spaces outside double quotes, as the kernel does.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == '"':
			quoted = !quoted
		case (r == ' ' || r == '\n' || r == '\t') && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// ParseYAML reads master.yaml into c; unknown keys are errors.
func (c *Config) ParseYAML(b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		return fmt.Errorf("master.yaml: %v", err)
	}
	return c.check()
}

func (c *Config) check() error {
	if c.Poll != "" {
		if _, err := time.ParseDuration(c.Poll); err != nil {
			return fmt.Errorf("poll: %v", err)
		}
	}
	if _, err := c.StaticIP(); err != nil {
		return err
	}
	if c.Join != "" && c.Bootstrap {
		return fmt.Errorf("bootstrap and join are exclusive: a master either starts a cluster or joins one")
	}
	if c.Join != "" && (c.Token == "" || c.CAHash == "") {
		return fmt.Errorf("join needs the master join token (berth.token) and the CA fingerprint (berth.ca-hash)")
	}
	return nil
}

// StaticIP parses IP; nil means DHCP.
func (c *Config) StaticIP() (*Static, error) {
	if c.IP == "" || c.IP == "dhcp" {
		return nil, nil
	}
	parts := strings.Split(c.IP, ",")
	addr, err := netip.ParsePrefix(parts[0])
	if err != nil || !addr.Addr().Is4() {
		return nil, fmt.Errorf("ip: want ADDR/PREFIX[,GATEWAY[,DNS...]] with an IPv4 address, or dhcp; got %q", c.IP)
	}
	s := &Static{Addr: addr}
	if len(parts) > 1 && parts[1] != "" {
		if s.Gateway, err = netip.ParseAddr(parts[1]); err != nil {
			return nil, fmt.Errorf("ip: gateway: %v", err)
		}
	}
	for _, d := range parts[min(2, len(parts)):] {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("ip: dns: %v", err)
		}
		s.DNS = append(s.DNS, a)
	}
	return s, nil
}
