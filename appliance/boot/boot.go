package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/retry"
)

// Paths in the initramfs (written by images/appliance).
const (
	moduleList = "/lib/modules/berth.load"
	mke2fs     = "/sbin/mke2fs"
	dataMount  = "/var/lib/berth"
	cfgMount   = "/run/berth/config"
)

// Run is PID 1. It returns only on a setup error so grave that nothing
// can be shown (the caller then lets the kernel panic and reboot).
func Run(version string) error {
	if err := mountKernelFS(); err != nil {
		fmt.Fprintln(os.Stderr, "berth: mounts:", err)
	}
	screen := NewScreen()
	log := newLogger(screen)
	slog.SetDefault(log)
	facts := &Facts{Version: version, Listen: ":7443", Storage: "(looking for the data disk)"}
	ctx := context.Background()
	go screen.Run(ctx, facts)
	// PID 1 adopts orphans; reap them so none linger as zombies.
	go reaper.Loop()

	n, err := loadModules(moduleList, log)
	log.Info("kernel modules loaded", "count", n, "err", err)

	var cfg Config
	var problems []string
	if err := readConfigDisk(&cfg, log); err != nil {
		problems = append(problems, err.Error())
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if err := cfg.ParseCmdline(string(cmdline)); err != nil {
		problems = append(problems, err.Error())
	}
	if cfg.Listen != "" {
		facts.update(func(f *Facts) { f.Listen = cfg.Listen })
	}

	if err := upLoopback(); err != nil {
		log.Error("loopback", "err", err)
	}
	netReady := make(chan struct{})
	if st, _ := cfg.StaticIP(); st != nil {
		if _, err := configureStatic(st, log); err != nil {
			problems = append(problems, "network: "+err.Error())
		}
		close(netReady)
	} else {
		go runDHCP(ctx, log, netReady)
	}
	go func() {
		for {
			a := addresses()
			facts.update(func(f *Facts) { f.Addresses = a })
			time.Sleep(2 * time.Second)
		}
	}()

	host, dataDir, err := prepareData(cfg.Data, log)
	if err != nil {
		problems = append(problems, err.Error())
	}
	facts.update(func(f *Facts) {
		f.RAM = host.Storage == "ram"
		f.Storage = strings.TrimSpace(host.Storage + " " + host.DataDevice)
		if f.RAM {
			f.Storage = ramBanner
		}
		f.Problem = strings.Join(problems, "; ")
	})
	if host.Storage == "ram" {
		log.Warn(ramBanner)
	}

	// The repo is usually reached over the network: give DHCP a moment
	// before the first fetch (the sync retries anyway).
	select {
	case <-netReady:
	case <-time.After(30 * time.Second):
		log.Warn("no network address after 30s; starting anyway")
	}

	// A token the master makes up itself can only be read on the console.
	_, statErr := os.Stat(filepath.Join(dataDir, "admin.conf"))
	generated := cfg.Token == "" && statErr != nil && cfg.Join == ""
	var poll time.Duration
	if cfg.Poll != "" {
		poll, _ = time.ParseDuration(cfg.Poll)
	}
	pw := &power{log: log}
	listen := facts.snapshot().Listen
	var m *appliance.Master
	err = retry.Until(ctx, retry.Backoff{Base: 10 * time.Second, Max: 10 * time.Second}, func() (err error) {
		mc := masterConfig(cfg, listen, addresses())
		mc.DataDir, mc.Logger, mc.Host, mc.Power = dataDir, log, &host, pw.request
		mc.Repo, mc.Branch, mc.Path, mc.Poll = cfg.Repo, cfg.Branch, cfg.Path, poll
		mc.RepoUsername, mc.RepoPassword = cfg.RepoUsername, cfg.RepoPassword
		mc.WebhookSecret, mc.WebhookAllowUnsigned = []byte(cfg.WebhookSecret), cfg.WebhookAllowUnsigned
		m, err = appliance.Start(ctx, mc)
		return err
	}, func(err error, next time.Duration) {
		facts.update(func(f *Facts) { f.Problem = "master: " + err.Error() })
		log.Error("master did not start; retrying", "err", err, "in", next)
	})
	if err != nil {
		return err
	}
	pw.set(m, host.Storage == "disk")
	facts.update(func(f *Facts) {
		if generated {
			// The console is the only place an operator can read a token
			// the master made up itself.
			f.Token = m.AdminToken()
		}
		f.CAHash = m.CAHash()
		f.Status = statusFunc(m)
	})
	log.Info("master started", "listen", listen, "repo", cfg.Repo, "storage", host.Storage)
	// PID 1 must not exit: a master that met a command of a newer berth
	// stops serving and says so on the console until it is upgraded.
	<-m.Store.Halted()
	m.Close()
	log.Error("master stopped", "err", m.Store.HaltError())
	facts.update(func(f *Facts) { f.Problem = "master stopped: " + m.Store.HaltError().Error() })
	select {}
}

// reaper reaps PID 1's orphans; every command PID 1 runs goes through it.
var reaper Reaper

// readConfigDisk reads master.yaml from the volume labelled BERTHCFG.
func readConfigDisk(cfg *Config, log *slog.Logger) error {
	// virtio disks exist once their module is loaded; AHCI and NVMe
	// controllers scan in the background, so give them a moment when no
	// disk has shown up yet.
	for i := 0; i < 20 && len(BlockDevices()) == 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	var vol *Volume
	for _, d := range BlockDevices() {
		if v, err := Probe(d); err == nil && v.Label == ConfigLabel {
			vol = &v
		}
	}
	if vol == nil {
		return nil
	}
	os.MkdirAll(cfgMount, 0o755)
	if err := unix.Mount(vol.Dev, cfgMount, vol.FS, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("config disk %s: %v", vol.Dev, err)
	}
	defer unix.Unmount(cfgMount, 0)
	b, err := os.ReadFile(filepath.Join(cfgMount, "master.yaml"))
	if err != nil {
		return fmt.Errorf("config disk %s: %v", vol.Dev, err)
	}
	log.Info("config disk", "device", vol.Dev)
	return cfg.ParseYAML(b)
}

// prepareData finds, formats if blank, and mounts the data disk, and
// returns the master's data directory on it; with no disk, a directory in
// RAM.
func prepareData(named string, log *slog.Logger) (api.HostStatus, string, error) {
	ram := api.HostStatus{Storage: "ram", Warning: "no data disk: all cluster state is lost on reboot"}
	ramDir := "/run/berth/master"
	var vols []Volume
	for _, d := range BlockDevices() {
		if v, err := Probe(d); err == nil {
			vols = append(vols, v)
		}
	}
	vol, format, err := FindData(named, vols)
	if err != nil || vol.Dev == "" {
		return ram, ramDir, err
	}
	if format {
		log.Warn("formatting the data disk", "device", vol.Dev, "label", DataLabel)
		// lazy init: the kernel zeroes inode tables in the background, so a
		// large disk formats in seconds.
		var out bytes.Buffer
		cmd := exec.Command(mke2fs, "-q", "-F", "-t", "ext4", "-L", DataLabel,
			"-E", "lazy_itable_init=1,lazy_journal_init=1", vol.Dev)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := reaper.Run(cmd); err != nil {
			return ram, ramDir, fmt.Errorf("mke2fs %s: %v: %s", vol.Dev, err, out.Bytes())
		}
	}
	os.MkdirAll(dataMount, 0o755)
	if err := unix.Mount(vol.Dev, dataMount, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return ram, ramDir, fmt.Errorf("mount %s: %v", vol.Dev, err)
	}
	log.Info("data disk mounted", "device", vol.Dev, "formatted", format)
	return api.HostStatus{Storage: "disk", DataDevice: vol.Dev}, filepath.Join(dataMount, "master"), nil
}

// statusFunc reads the master's own /v1/status for the screen, so the
// console shows exactly what the API says.
func statusFunc(m *appliance.Master) func(ctx context.Context) (string, string, string, error) {
	return func(ctx context.Context) (string, string, string, error) {
		role := "follower"
		if m.Store.IsLeader() {
			role = "leader (one-member cluster: this machine)"
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", m.URL()+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+m.AdminToken())
		resp, err := m.HTTPClient().Do(req)
		if err != nil {
			return role, "", "", err
		}
		defer resp.Body.Close()
		var st api.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return role, "", "", err
		}
		rev := st.Commit
		if rev == "" {
			rev = "(none)"
		}
		sync := st.Sync.State
		if st.Sync.Repo != "" {
			sync += " " + st.Sync.Repo
		}
		if st.Sync.LastError != "" {
			sync += ": " + st.Sync.LastError
		}
		return role, rev, sync, nil
	}
}

// power carries out API reboot/poweroff requests: it answers first, then
// stops the master (so Raft's files are closed), syncs and unmounts the
// data disk, and asks the kernel.
type power struct {
	mu      sync.Mutex
	m       *appliance.Master
	unmount bool
	busy    bool
	log     *slog.Logger
}

func (p *power) set(m *appliance.Master, unmount bool) {
	p.mu.Lock()
	p.m, p.unmount = m, unmount
	p.mu.Unlock()
}

func (p *power) request(action string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy {
		return errors.New("already going down")
	}
	p.busy = true
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if action == "poweroff" {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	go func() {
		p.log.Warn("going down", "action", action)
		// Let the API answer the request first.
		time.Sleep(500 * time.Millisecond)
		p.mu.Lock()
		m, unmount := p.m, p.unmount
		p.mu.Unlock()
		if m != nil {
			if err := m.Close(); err != nil {
				p.log.Error("stopping the master", "err", err)
			}
		}
		unix.Sync()
		if unmount {
			if err := unix.Unmount(dataMount, 0); err != nil {
				p.log.Error("unmounting the data disk", "err", err)
			}
		}
		if err := unix.Reboot(cmd); err != nil {
			p.log.Error(action, "err", err)
		}
	}()
	return nil
}

// masterConfig places the master on the network: other masters reach its
// API and Raft at its first address (a cluster of appliances wants static
// addresses, as etcd does). With no address yet, a bootstrapping master
// runs Raft on loopback: alone, it only talks to itself.
func masterConfig(cfg Config, listen string, addrs []string) appliance.Config {
	mc := appliance.Config{Name: cfg.Name, Listen: listen, Bootstrap: cfg.Join == "", Join: cfg.Join, Token: cfg.Token, CAHash: cfg.CAHash,
		RaftListen: "127.0.0.1:7444"}
	if len(addrs) > 0 {
		_, port, _ := net.SplitHostPort(listen)
		mc.Advertise = net.JoinHostPort(addrs[0], port)
		mc.RaftListen, mc.RaftAdvertise = ":7444", net.JoinHostPort(addrs[0], "7444")
	}
	if mc.Name == "" {
		mc.Name = "berth-" + strings.ReplaceAll(strings.Join(addrs[:min(1, len(addrs))], ""), ".", "-")
	}
	return mc
}
